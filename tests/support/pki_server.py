"""Serve the development PKI's TSA, OCSP, CRLs and CA certificates on loopback, for tests.

Certificates embed their OCSP/CRL/caIssuers URLs when issued, so the port must be known before
the PKI is created. :class:`PkiHttpServer` binds a free loopback port when constructed; create
the PKI with its ``base_url``, then serve::

    server = PkiHttpServer()
    pki = DevPki.init(tmp_path / "pki", base_url=server.base_url)
    with server.serving(pki) as base_url:
        ...  # pyHanko's HTTPTimeStamper(f"{base_url}/pki/tsa"), ValidationContext(allow_fetching=True)

:func:`serve_pki` re-serves an existing PKI on the port its ``base_url`` names.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from signing.devpki import DevPki
from signing.pki_services import PkiServices, ocsp_request_from_get

MAX_REQUEST_BYTES = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: _PkiHttpd

    def do_GET(self) -> None:
        services = self.server.services
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/pki/ocsp/"):
            request = ocsp_request_from_get(path.removeprefix("/pki/ocsp/"))
            return self._reply(services.ocsp.respond(request), "application/ocsp-response")
        routes: dict[str, tuple[Callable[[], bytes], str]] = {
            "/pki/crl": (lambda: services.crl("issuing"), "application/pkix-crl"),
            "/pki/root-ca.crl": (lambda: services.crl("root"), "application/pkix-crl"),
            "/pki/issuing-ca.crt": (lambda: services.ca_certificate("issuing"), "application/pkix-cert"),
            "/pki/root-ca.crt": (lambda: services.ca_certificate("root"), "application/pkix-cert"),
        }
        if path not in routes:
            return self.send_error(404)
        produce, content_type = routes[path]
        self._reply(produce(), content_type)

    def do_POST(self) -> None:
        services = self.server.services
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            return self.send_error(413)
        body = self.rfile.read(length)
        path = urllib.parse.urlsplit(self.path).path
        if path == "/pki/tsa":
            return self._reply(services.tsa.respond(body), "application/timestamp-reply")
        if path == "/pki/ocsp":
            return self._reply(services.ocsp.respond(body), "application/ocsp-response")
        self.send_error(404)

    def _reply(self, body: bytes, content_type: str) -> None:
        self.server.hits.append(urllib.parse.urlsplit(self.path).path)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 — keep test output quiet
        pass


class _PkiHttpd(ThreadingHTTPServer):
    daemon_threads = True
    services: PkiServices
    hits: list[str]


class PkiHttpServer:
    """A loopback HTTP server for one PKI. Binds at construction, so :attr:`base_url` is known
    before the PKI (whose certificates embed it) is created."""

    def __init__(self, port: int = 0) -> None:
        self._httpd = _PkiHttpd(("127.0.0.1", port), _Handler, bind_and_activate=True)
        self._httpd.hits = []
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def hits(self) -> list[str]:
        """Paths answered so far, in order (lets tests prove a client really fetched)."""
        return self._httpd.hits

    @contextmanager
    def serving(self, pki: DevPki, *, clock: Callable[[], datetime] | None = None) -> Iterator[str]:
        """Serve ``pki`` until the block ends; yields the base URL. ``clock`` makes the TSA,
        OCSP responder and CRLs act at another time (a callable, so a test can move it)."""
        if pki.urls.base_url != self.base_url:
            raise ValueError(f"PKI certificates point at {pki.urls.base_url}, server is {self.base_url}")
        self._httpd.services = PkiServices(pki, clock=clock)
        thread = threading.Thread(target=self._httpd.serve_forever, name="pki-http", daemon=True)
        thread.start()
        try:
            yield self.base_url
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            thread.join(timeout=5)


@contextmanager
def serve_pki(pki: DevPki, *, clock: Callable[[], datetime] | None = None) -> Iterator[str]:
    """Serve an existing PKI on the loopback port its ``base_url`` names; yields the base URL."""
    parts = urllib.parse.urlsplit(pki.urls.base_url)
    if parts.hostname != "127.0.0.1" or not parts.port:
        raise ValueError(f"serve_pki needs a http://127.0.0.1:<port> PKI, not {pki.urls.base_url}")
    with PkiHttpServer(parts.port).serving(pki, clock=clock) as base_url:
        yield base_url
