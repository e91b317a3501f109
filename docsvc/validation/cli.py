"""``docsvc verify FILE.pdf [--json]``: validate a signed PDF from the command line with the same
trust as the service (development PKI root and/or ``DOCSVC_SIGNING__TRUST_ROOTS``).

Exit status: 0 only when the file has signatures and every one is TOTAL-PASSED; 1 when any is
not, or there are none; 2 when the file cannot be read as a PDF."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated

import typer

EXIT_PASSED, EXIT_NOT_PASSED, EXIT_UNREADABLE = 0, 1, 2


def verify_command(
    file: Annotated[Path, typer.Argument(help="The PDF to validate.", show_default=False)],
    json: Annotated[bool, typer.Option("--json", help="Print the JSON report (summary and detail).")] = False,
) -> None:
    """Validate every signature in FILE; exit 0 only if all pass (1 otherwise, 2 if unreadable)."""
    from docsvc import errors
    from docsvc.settings import get_settings
    from docsvc.validation.service import validate_stream
    from signing.report import render_text

    get_settings.cache_clear()  # read the environment now, as every other command does
    settings = get_settings()
    try:
        with open(file, "rb") as stream:
            report = validate_stream(settings, stream)
    except OSError as exc:
        typer.secho(f"cannot read {file}: {exc.strerror}", fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_UNREADABLE) from exc
    except (errors.NotAPdfError, errors.PdfUnreadableError) as exc:
        typer.secho(f"{file}: {exc.message} [{exc.code}]", fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_UNREADABLE) from exc
    passed = bool(report.signatures) and all(s.indication == "TOTAL-PASSED" for s in report.signatures)
    if json:
        typer.echo(jsonlib.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(render_text(report, document_name=str(file)))
        colour = typer.colors.GREEN if passed else typer.colors.RED
        verdict = report.indication + (f" ({report.sub_indication})" if report.sub_indication else "")
        typer.secho(f"Kết quả / Result: {verdict}", fg=colour, bold=True)
    raise typer.Exit(EXIT_PASSED if passed else EXIT_NOT_PASSED)
