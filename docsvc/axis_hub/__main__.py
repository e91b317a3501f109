"""``python -m docsvc.axis_hub [OPTIONS]``: the same as ``docsvc axis-hub``."""

import typer

from docsvc.axis_hub.cli import hub_command

if __name__ == "__main__":
    typer.run(hub_command)
