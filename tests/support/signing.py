"""Helpers for signing tests: an app with the PKI and signing routers, a shared development
PKI (created once per session: CA keys are slow to make), keys, TOTP codes, Decree 30 PDFs."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from docsvc.app import create_app
from docsvc.pdfgen import AdministrativeDocument, render_document
from docsvc.pki.router import router as pki_router
from docsvc.pki.service import ensure_dev_pki
from docsvc.signatures.router import router as signatures_router
from docsvc.users.models import User
from tests.conftest import make_settings
from tests.support.factories import Person

PDF = {"Content-Type": "application/pdf"}
PIN = "246810"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Certificates embed the PKI's URLs; pdfsig (NSS) fetches OCSP from there, so tests serve the
#: PKI on this loopback port while pdfsig runs (see :func:`pdfsig`).
BASE_URL = f"http://127.0.0.1:{_free_port()}"


def include_signing_routes(app: FastAPI) -> FastAPI:
    """Add our routers unless app.py already does (once it includes them)."""
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/pki/crl" not in paths:
        app.include_router(pki_router)
    if "/signing/keys" not in paths:
        app.include_router(signatures_router)
    return app


@pytest.fixture(scope="session")
def shared_pki_dir(tmp_path_factory) -> Path:
    """One development PKI for the session; tests copy it (issuing writes into the directory)."""
    path = tmp_path_factory.mktemp("pki-template") / "pki"
    from docsvc.settings import Settings

    ensure_dev_pki(Settings(data_dir=path.parent, signing={"pki_dir": path, "public_base_url": BASE_URL}))
    return path


@pytest.fixture
def signing_client(tmp_path, database_url, shared_pki_dir) -> Iterator[TestClient]:
    pki_dir = tmp_path / "pki"
    shutil.copytree(shared_pki_dir, pki_dir)
    settings = make_settings(tmp_path, database_url, signing={"pki_dir": pki_dir, "public_base_url": BASE_URL,
                                                               "pin_max_failures": 3})
    app = include_signing_routes(create_app(settings, relay_outbox=False))
    with TestClient(app) as client:
        client.runtime = app.state.runtime
        yield client


def fresh_otp(client: TestClient, person: Person) -> str:
    """A TOTP code the server has not accepted yet (the step after the last accepted one)."""
    with client.runtime.sessions() as session:
        last = session.get(User, person.id).totp_last_step
    now = int(time.time()) // 30
    step = now if last is None or last < now else last + 1
    if step > now + 1:  # both usable steps are spent: wait for the clock
        time.sleep((step - 1) * 30 - time.time() + 0.5)
    return pyotp.TOTP(person.totp_secret).at(step * 30)


def enrol_key(client: TestClient, person: Person, pin: str = PIN) -> dict:
    response = client.post("/signing/keys", json={"pin": pin}, headers=person.headers)
    assert response.status_code == 201, response.text
    return response.json()


def decree30_pdf(signer: str = "Nguyễn Văn An", position: str = "GIÁM ĐỐC") -> bytes:
    return render_document(AdministrativeDocument(
        agency="Sở Thông tin và Truyền thông", parent_agency="UBND tỉnh Nghệ An", number_symbol="      /KH-STTTT",
        place_date="Nghệ An, ngày      tháng      năm 2026", title="Kế hoạch",
        subject="Chuyển đổi số năm 2026", paragraphs=["Nội dung kế hoạch chuyển đổi số."],
        signer_position=position, signer_name=signer, recipients=["Như trên", "Lưu: VT"]))


def new_document_with_version(client: TestClient, person: Person, pdf: bytes | None = None) -> int:
    body = {"direction": "outgoing", "doc_type": "ke_hoach", "subject": "Kế hoạch chuyển đổi số năm 2026"}
    doc = client.post("/documents", json=body, headers=person.headers).json()["id"]
    response = client.post(f"/documents/{doc}/versions?filename=ke-hoach.pdf", content=pdf or decree30_pdf(),
                           headers={**person.headers, **PDF})
    assert response.status_code == 201, response.text
    return doc


def version_bytes(client: TestClient, person: Person, doc: int, seq: int) -> bytes:
    response = client.get(f"/documents/{doc}/versions/{seq}/content", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.content


def today() -> date:
    return date.today()


def pdfsig(path: Path, nss_dir: Path, pki_dir: Path) -> str:
    """pdfsig's report of ``path``, trusting the CA certificates in the NSS database ``nss_dir``,
    with the PKI in ``pki_dir`` served on its loopback URL (NSS asks its OCSP responder)."""
    from signing.devpki import DevPki
    from tests.support.pki_server import serve_pki

    with serve_pki(DevPki.open(pki_dir)):
        result = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss_dir}", str(path)], capture_output=True, text=True,
                                timeout=120)
    return result.stdout + result.stderr


def nss_db_trusting(directory: Path, pki_dir: Path) -> Path:
    """An NSS database trusting the development PKI's root (and knowing its issuing CA), for pdfsig."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True, capture_output=True)
    for nick, name, trust in (("docsvc-dev-root", "root-ca.crt", "CT,C,C"), ("docsvc-dev-ca", "issuing-ca.crt", ",,")):
        subprocess.run(["certutil", "-A", "-d", f"sql:{directory}", "-n", nick, "-t", trust, "-i",
                        str(pki_dir / name)], check=True, capture_output=True)
    return directory
