"""``python -m docsvc``: the command line."""

from docsvc.cli import main

main()
