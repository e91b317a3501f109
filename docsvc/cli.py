"""The ``docsvc`` command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from docsvc.axis_hub.cli import add_agency_command, hub_command
from docsvc.pki.cli import pki_app, sign_command
from docsvc.validation.cli import verify_command
from inter_axis.cli import axis_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="docsvc: documents, dossiers, signing.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log.")
jobs_app = typer.Typer(no_args_is_help=True, help="Background jobs.")
app.add_typer(audit_app, name="audit")
app.add_typer(jobs_app, name="jobs")
app.add_typer(pki_app, name="pki")
app.add_typer(axis_app, name="axis")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Overrides DOCSVC_DATA_DIR.")]


def _runtime(data_dir: Path | None = None):
    # Settings are read here, once per command; --data-dir goes through the environment so
    # that the worker processes this command starts see the same directory.
    if data_dir is not None:
        os.environ["DOCSVC_DATA_DIR"] = str(data_dir.resolve())
    from docsvc.runtime import Runtime
    from docsvc.settings import get_settings

    get_settings.cache_clear()
    return Runtime(get_settings())


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Create or upgrade the database schema."""
    from docsvc.db import migrate as m

    m.upgrade(_runtime(data_dir).engine)
    typer.echo("database is up to date")


@app.command("bootstrap")
def bootstrap_command(data_dir: DataDir = None) -> None:
    """Migrate, create the root organisation and the first admin (password printed once)."""
    from docsvc.bootstrap import bootstrap

    result = bootstrap(_runtime(data_dir))
    typer.echo(f"database is up to date; root organisation {result.root.organ_id}")
    _announce_admin(result.admin_password)


def _announce_admin(password: str | None) -> None:
    if password:
        typer.secho("\nFirst start: an administrator was created. This password is shown only once:",
                    fg=typer.colors.YELLOW)
        typer.secho(f"    username: admin\n    password: {password}\n", bold=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = None,
    worker: Annotated[bool, typer.Option(help="Start an embedded Celery worker (with beat).")] = True,
) -> None:
    """Migrate, create the first admin if needed, start the worker, and serve the API."""
    import uvicorn

    from docsvc.app import create_app
    from docsvc.bootstrap import bootstrap

    runtime = _runtime(data_dir)
    _announce_admin(bootstrap(runtime).admin_password)
    proc = _start_worker(runtime.settings.data_dir) if worker and runtime.settings.start_worker else None
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; make it a SystemExit so the
    # worker below is stopped too instead of this process dying on the spot.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    try:
        uvicorn.run(create_app(runtime.settings), host=host, port=port, log_level="info")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _start_worker(data_dir: Path) -> subprocess.Popen:
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "celery", "-A", "docsvc.jobs.worker", "worker", "--beat",
           "--schedule", str(data_dir / "celerybeat-schedule"), "--concurrency", "2",
           "--loglevel", "INFO", "--hostname", f"embedded@{os.uname().nodename}"]
    return subprocess.Popen(cmd, env=os.environ.copy(), preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """In the worker: ask Linux to send SIGTERM if ``serve`` is killed without cleaning up."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@app.command("create-org")
def create_org(
    organ_id: Annotated[str, typer.Argument(help="Mã định danh, e.g. 000.00.12.H41")],
    name: Annotated[str, typer.Argument()],
    short_name: Annotated[str, typer.Option(help="Abbreviation used in symbols, e.g. STTTT")],
    level: Annotated[str, typer.Option(help="province|department|district|commune|other")] = "department",
    parent: Annotated[str | None, typer.Option(help="Parent's mã định danh")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an organisation."""
    from pydantic import ValidationError

    from docsvc.errors import DocsvcError
    from docsvc.organisations import service
    from docsvc.organisations.schemas import OrganisationCreate
    from docsvc.principal import SERVICE_ACTOR

    runtime = _runtime(data_dir)
    with runtime.sessions() as session:
        parent_org = service.by_organ_id(session, parent) if parent else None
        if parent and parent_org is None:
            _fail(f"no organisation with organ_id {parent}")
        try:
            data = OrganisationCreate(organ_id=organ_id, name=name, short_name=short_name, level=level,
                                      parent_id=parent_org.id if parent_org else None)
            org = service.create(session, SERVICE_ACTOR, data)
        except (DocsvcError, ValidationError) as exc:
            _fail(f"refused: {exc}")
    typer.echo(f"created organisation {org.id} {org.organ_id} {org.name}")


@app.command("create-user")
def create_user(
    username: Annotated[str, typer.Argument()],
    full_name: Annotated[str, typer.Argument()],
    organ_id: Annotated[str, typer.Option("--org", help="Organisation's mã định danh")],
    role: Annotated[list[str], typer.Option("--role", help="clerk|specialist|leader|archivist|admin (repeatable)")],
    position: Annotated[str | None, typer.Option()] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a user; a password is generated and printed once."""
    from pydantic import ValidationError

    from docsvc.errors import DocsvcError
    from docsvc.organisations import service as orgs
    from docsvc.principal import SERVICE_ACTOR
    from docsvc.users import service
    from docsvc.users.schemas import UserCreate

    runtime = _runtime(data_dir)
    with runtime.sessions() as session:
        org = orgs.by_organ_id(session, organ_id)
        if org is None:
            _fail(f"no organisation with organ_id {organ_id}")
        try:
            data = UserCreate(username=username, full_name=full_name, position=position,
                              organisation_id=org.id, roles=role)
            user, password = service.create_user(session, SERVICE_ACTOR, data)
        except (DocsvcError, ValidationError) as exc:
            _fail(f"refused: {exc}")
    typer.echo(f"created user {user.id} {user.username}; password (shown once): {password}")


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None) -> None:
    """Exit 0 if the hash chain is intact; otherwise name the first bad event and exit 1."""
    from docsvc.audit.service import verify_chain

    runtime = _runtime(data_dir)
    with runtime.sessions() as session:
        report = verify_chain(session)
    if report.ok:
        typer.echo(f"audit chain intact: {report.checked} events")
        return
    _fail(f"audit chain broken at event #{report.first_bad_seq} (row id {report.first_bad_id}): {report.reason}; "
          f"{report.checked} events before it are intact")


@jobs_app.command("relay")
def jobs_relay(data_dir: DataDir = None) -> None:
    """Send outbox messages that were committed but not yet handed to the broker."""
    sent = _runtime(data_dir).relay_outbox(min_age_seconds=0)
    typer.echo(f"sent {sent} pending job(s)")


@app.command()
def reconcile(data_dir: DataDir = None) -> None:
    """Compare database rows with stored objects now and print the drift (exit 1 if any)."""
    import json

    from docsvc.jobs.reconcile import find_drift

    runtime = _runtime(data_dir)
    with runtime.sessions() as session:
        report = find_drift(session, runtime.store)
    typer.echo(json.dumps(report.as_dict(), indent=2))
    if not report.clean:
        raise typer.Exit(1)


@app.command()
def demo(data_dir: DataDir = None) -> None:
    """Seed a demo province: organisations, users of every role, sample documents and dossiers."""
    from docsvc.bootstrap import bootstrap
    from docsvc.demo import seed

    runtime = _runtime(data_dir)
    bootstrap(runtime)
    for line in seed(runtime):
        typer.echo(line)


app.command("sign")(sign_command)
app.command("verify")(verify_command)
app.command("axis-hub")(hub_command)
app.command("axis-hub-agency")(add_agency_command)


def main() -> None:
    app()
