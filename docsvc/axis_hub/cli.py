"""``docsvc axis-hub`` (serve the hub) and ``docsvc axis-hub-agency`` (register an agency).

Both are plain typer command functions; ``docsvc/cli.py`` registers them."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_MAX_PACKAGE_BYTES = 300 * 1024**2


def hub_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Packages (and the default SQLite database).")] = Path(
        "./hub-data"),
    database_url: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL of the hub's own database; default SQLite (WAL) in the data dir.")] = None,
    agencies_file: Annotated[Path | None, typer.Option(
        help="JSON {\"agencies\": [{organ_id, name, secret_sha256}]}; loaded at start, agencies missing "
             "from it are deactivated.")] = None,
    max_package_bytes: Annotated[int, typer.Option(help="Largest package accepted.")] = DEFAULT_MAX_PACKAGE_BYTES,
    max_batch_packages: Annotated[int, typer.Option(help="Most packages in one send_many request.")] = 100,
    max_batch_bytes: Annotated[int, typer.Option(
        help="Most package bytes in one send_many request (a larger package is sent alone).")] = 32 * 1024**2,
) -> None:
    """Run an interlink-axis hub for the agencies of one province (and for tests)."""
    import uvicorn

    from docsvc.axis_hub.app import create_hub_app
    from docsvc.axis_hub.service import HubService, read_agencies_file
    from docsvc.axis_hub.storage import PackageStorage
    from docsvc.db.session import make_engine

    data_dir = data_dir.resolve()
    url = database_url or f"sqlite:///{data_dir / 'hub.sqlite3'}"
    try:
        agencies = read_agencies_file(agencies_file) if agencies_file else None
    except (OSError, ValueError, KeyError) as exc:
        typer.secho(f"cannot read the agencies file: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    service = HubService(durable_engine(make_engine(url)), PackageStorage(data_dir), max_package_bytes,
                         max_batch_packages=max_batch_packages, max_batch_bytes=max_batch_bytes)
    swept = service.prepare(agencies)
    if swept:
        typer.echo(f"removed {len(swept)} file(s) left by an interrupted upload: {', '.join(swept[:5])}")
    typer.echo(f"axis hub: {len(service.agencies())} agencies, packages in {data_dir}")
    _log_fetches()
    uvicorn.run(create_hub_app(service), host=host, port=port, log_level="info")


def _log_fetches() -> None:
    """The hub's per-package download lines go where uvicorn's own lines go (stderr)."""
    import logging

    from docsvc.axis_hub.batch import fetch_log

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("INFO:     %(message)s"))
    fetch_log.addHandler(handler)
    fetch_log.setLevel(logging.INFO)
    fetch_log.propagate = False


def durable_engine(engine):
    """The hub answers 2xx only after its commit: on SQLite that commit must reach the disk, so WAL
    runs with ``synchronous=FULL`` (docsvc's default NORMAL may lose the last commits on power loss,
    and with them packages the hub has acknowledged)."""
    if engine.dialect.name == "sqlite":
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _full_sync(dbapi_conn, _record) -> None:
            dbapi_conn.execute("PRAGMA synchronous=FULL")
    return engine


def add_agency_command(
    agencies_file: Annotated[Path, typer.Argument(help="The hub's agencies file (created if missing).")],
    organ_id: Annotated[str, typer.Argument(help="Mã định danh, e.g. 000.00.12.H41")],
    name: Annotated[str, typer.Argument()],
) -> None:
    """Add or re-key an agency in the agencies file; its new secret is printed once.

    Restart the hub (or start it) with ``--agencies-file`` to apply."""
    secret = add_agency(agencies_file, organ_id, name)
    typer.echo(f"agency {organ_id} registered; its secret (shown once): {secret}")


def add_agency(agencies_file: Path, organ_id: str, name: str) -> str:
    """Write ``organ_id`` with a fresh secret into the agencies file (atomically); returns the secret."""
    from docsvc.axis_hub.service import ORGAN_ID, hash_secret

    if not ORGAN_ID.match(organ_id) or len(organ_id) > 35:
        raise typer.BadParameter(f"{organ_id!r} is not an agency identifier")
    data = json.loads(agencies_file.read_text(encoding="utf-8")) if agencies_file.exists() else {"agencies": []}
    secret = secrets.token_urlsafe(32)
    entries = [a for a in data["agencies"] if a["organ_id"] != organ_id]
    entries.append({"organ_id": organ_id, "name": name, "secret_sha256": hash_secret(secret)})
    data["agencies"] = sorted(entries, key=lambda a: a["organ_id"])
    agencies_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=agencies_file.parent, prefix=".agencies-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, agencies_file)
    return secret
