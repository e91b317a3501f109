"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

from docsvc import http_errors
from docsvc.admin.router import router as admin_router
from docsvc.audit.router import router as audit_router
from docsvc.axis.router import router as axis_router
from docsvc.documents.router import router as documents_router
from docsvc.dossiers.router import router as dossiers_router
from docsvc.organisations.router import router as organisations_router
from docsvc.pki.router import router as pki_router
from docsvc.runtime import Runtime
from docsvc.settings import Settings, get_settings
from docsvc.signatures.router import router as signatures_router
from docsvc.users.router import router as users_router
from docsvc.validation.router import router as validation_router

log = logging.getLogger(__name__)


def _relay_loop(runtime: Runtime, stop: threading.Event, every: float = 10.0) -> None:
    """Send outbox messages whose after-commit send failed (e.g. the broker was down)."""
    while not stop.wait(every):
        try:
            runtime.relay_outbox()
        except Exception:  # keep relaying; the next round retries
            log.exception("outbox relay round failed")


def create_app(settings: Settings | None = None, *, relay_outbox: bool = True) -> FastAPI:
    runtime = Runtime(settings or get_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        stop = threading.Event()
        if relay_outbox:
            threading.Thread(target=_relay_loop, args=(runtime, stop), daemon=True, name="outbox-relay").start()
        yield
        stop.set()
        runtime.dispose()

    app = FastAPI(title="docsvc", version="0.1.0", lifespan=lifespan,
                  description="Document management and digital signing for Vietnamese government agencies.")
    app.state.runtime = runtime
    http_errors.install(app)
    for router in (admin_router, users_router, organisations_router, documents_router, dossiers_router,
                   audit_router, validation_router, pki_router, signatures_router, axis_router):
        app.include_router(router)
    return app
