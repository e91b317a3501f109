"""``docsvc verify FILE.pdf [--json]``: validate a signed PDF from the command line with the same
trust as the service (development PKI root and/or ``DOCSVC_SIGNING__TRUST_ROOTS``).

Exit status: 0 only when the file has signatures and every one is TOTAL-PASSED; 1 when any is
not, or there are none; 2 when the file cannot be read as a PDF, or when the trust configuration
is unusable (a distinct message: the file is not to blame)."""

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
    """Validate every signature in FILE; exit 0 only if all pass (1 otherwise, 2 if unreadable or misconfigured)."""
    from docsvc import errors
    from docsvc.settings import get_settings
    from docsvc.validation.service import validate_stream
    from signing.report import render_text

    get_settings.cache_clear()  # read the environment now, as every other command does
    settings = get_settings()
    # An OSError from opening FILE is about FILE. One raised while validating may concern another
    # file (a trust root, the development PKI), so it is reported with the file it names.
    try:
        stream = open(file, "rb")  # closed by the ``with`` below
    except OSError as exc:
        typer.secho(f"cannot read {file}: {exc.strerror}", fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_UNREADABLE) from exc
    with stream:
        try:
            report = validate_stream(settings, stream)
        except (errors.NotAPdfError, errors.PdfUnreadableError) as exc:
            typer.secho(f"{file}: {exc.message} [{exc.code}]", fg=typer.colors.RED, err=True)
            raise typer.Exit(EXIT_UNREADABLE) from exc
        except errors.SigningUnavailableError as exc:
            cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
            typer.secho(f"configuration error: {exc.message}{cause} [{exc.code}]", fg=typer.colors.RED, err=True)
            raise typer.Exit(EXIT_UNREADABLE) from exc
        except OSError as exc:
            where = f"cannot read {exc.filename}" if exc.filename else f"I/O error while validating {file}"
            typer.secho(f"{where}: {exc.strerror or exc}", fg=typer.colors.RED, err=True)
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
