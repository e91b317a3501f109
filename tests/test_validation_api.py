"""Signature validation over HTTP: the public upload endpoint (size, rate, bad input) and the
stored-version endpoint (tenancy, integrity, audit), with PDFs signed by a real development PKI."""

from __future__ import annotations

import http.server
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from docsvc import errors
from docsvc.app import create_app
from docsvc.validation.intake import received_pdf
from docsvc.validation.ratelimit import SlidingWindowRateLimiter
from docsvc.validation.router import negotiate
from docsvc.validation.schemas import ReportFormat
from signing.devpki import DevPki
from signing.interfaces import SignatureSpec
from signing.keys import FileKeyBackend
from signing.pades import sign_pdf
from tests.conftest import make_settings
from tests.support.factories import build_province
from tests.support.pdfs import encrypted_pdf, tiny_pdf

PDF = {"Content-Type": "application/pdf"}
SIGNER = "Nguyễn Văn An"
ORGANISATION = "Sở Thông tin và Truyền thông tỉnh Nghệ An"
HOSTILE = 'Trần <b>Bình</b> <script>alert("x")</script>'
BODY_TEXT = "Quyet dinh so 12"


# --- signed files from a real development PKI ---------------------------------------------------

def sign_with_dev_pki(pki: DevPki, directory: Path, signer: str = SIGNER, text: str = BODY_TEXT, *,
                      embed_chain: bool = True) -> bytes:
    """A one-page PDF signed (PAdES B-B) with a fresh personal certificate of ``pki``."""
    issued = pki.issue_personal(signer, "001203004567", ORGANISATION)
    key = FileKeyBackend(issued.private_key, issued.certificate, issued.chain if embed_chain else [])
    src, out = directory / "unsigned.pdf", directory / "signed.pdf"
    src.write_bytes(tiny_pdf(text))
    sign_pdf(src, out, key, SignatureSpec(reason="Phê duyệt"))
    return out.read_bytes()


def tamper(data: bytes, text: str = BODY_TEXT) -> bytes:
    """Flip one bit of one byte inside the signed content."""
    changed = bytearray(data)
    changed[changed.index(text.encode())] ^= 0x01
    return bytes(changed)


@pytest.fixture(scope="module")
def dev_pki(tmp_path_factory) -> DevPki:
    return DevPki.init(tmp_path_factory.mktemp("pki"), base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def signed(dev_pki, tmp_path_factory) -> bytes:
    return sign_with_dev_pki(dev_pki, tmp_path_factory.mktemp("signed"))


def _settings(tmp_path, database_url, dev_pki, **signing):
    # No online revocation fetching: the PKI's OCSP URL is not served in these tests.
    return make_settings(tmp_path, database_url, signing={"pki_dir": dev_pki.directory, "fetch_revocation": False,
                                                          **signing})


def _client(settings) -> Iterator[TestClient]:
    app = create_app(settings, relay_outbox=False)
    with TestClient(app) as client:
        client.runtime = app.state.runtime
        yield client


@pytest.fixture
def public(tmp_path, sqlite_url, dev_pki) -> Iterator[TestClient]:
    """The app on SQLite: the public endpoint touches no database."""
    yield from _client(_settings(tmp_path, sqlite_url, dev_pki, validation_rate_per_minute=1000))


def _error(response) -> str:
    return response.json()["error"]["code"]


class _Verdicts(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.indications: list[str] = []
        self.tags: set[str] = set()
        self.text = ""
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if (value := dict(attrs).get("data-indication")) is not None:
            self.indications.append(value)

    def handle_data(self, data):
        self.text += data


# --- public upload ----------------------------------------------------------------------------

def test_signed_pdf_passes_with_json_report(public, signed, dev_pki):
    response = public.post("/validation", content=signed, headers=PDF)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"]["indication"] == "TOTAL-PASSED"
    assert (body["summary"]["signature_count"], body["summary"]["passed"]) == (1, 1)
    sig = body["signatures"][0]
    assert sig["signer"]["name"] == SIGNER and sig["signer"]["organisation"] == ORGANISATION
    assert dev_pki.record(int(sig["signer"]["serial"], 16)).kind == "personal"
    assert sig["intact"] and sig["valid"] and sig["trusted"] and sig["coverage"] == "ENTIRE_FILE"
    # Chain and revocation apart: fetching is off here and a B-B file carries no revocation data.
    assert sig["chain_trusted"] and sig["trust_root"]
    assert (sig["revocation"]["status"], sig["revocation"]["source"]) == ("unknown", "none")
    assert response.headers["cache-control"] == "no-store"


def test_multipart_upload_and_html_by_accept_header(public, signed):
    response = public.post("/validation", files={"file": ("quyết định.pdf", signed, "application/pdf")},
                           headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = _Verdicts(response.text)
    assert page.indications == ["TOTAL-PASSED", "TOTAL-PASSED"]
    assert "quyết định.pdf" in page.text and SIGNER in page.text


def test_one_changed_byte_fails_in_json_html_and_pdf(public, signed, tmp_path):
    bad = tamper(signed)
    body = public.post("/validation", content=bad, headers=PDF).json()
    assert (body["summary"]["indication"], body["summary"]["sub_indication"]) == ("TOTAL-FAILED", "HASH_FAILURE")
    assert body["signatures"][0]["intact"] is False
    page = public.post("/validation?format=html", content=bad, headers=PDF)
    assert _Verdicts(page.text).indications == ["TOTAL-FAILED", "TOTAL-FAILED"]
    printed = public.post("/validation", content=bad, headers={**PDF, "Accept": "application/pdf"})
    assert printed.headers["content-type"] == "application/pdf"
    assert "-validation.pdf" in printed.headers["content-disposition"]
    (tmp_path / "r.pdf").write_bytes(printed.content)
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "TOTAL-FAILED" in text and "HASH_FAILURE" in text


def test_html_report_escapes_hostile_signer_name(public, dev_pki, tmp_path):
    hostile = sign_with_dev_pki(dev_pki, tmp_path, signer=HOSTILE)
    response = public.post("/validation?format=html", content=hostile, headers=PDF)
    assert response.status_code == 200
    assert "<script" not in response.text and "<b>" not in response.text
    page = _Verdicts(response.text)
    assert page.tags.isdisjoint({"script", "b"}) and HOSTILE in page.text
    assert public.post("/validation", content=hostile, headers=PDF).json()["signatures"][0]["signer"]["name"] == HOSTILE


def test_unsigned_pdf_is_indeterminate(public):
    body = public.post("/validation", content=tiny_pdf(), headers=PDF).json()
    assert body["summary"] == {"indication": "INDETERMINATE", "sub_indication": "NO_SIGNATURE_FOUND",
                               "signature_count": 0, "revisions": 1, "passed": 0, "failed": 0, "indeterminate": 0,
                               "chains_trusted": 0,
                               "revocation": {"good": 0, "revoked": 0, "unknown": 0, "not_checked": 0}}


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def _count(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    do_GET = do_POST = _count

    def log_message(self, *args) -> None:  # keep test output clean
        pass


def test_anonymous_upload_never_makes_the_server_fetch_an_untrusted_certificates_urls(tmp_path, sqlite_url,
                                                                                       dev_pki):
    """SSRF guard: a certificate outside our trust carries OCSP/CRL/CA-issuer URLs of the uploader's
    choosing; validating it must not send a single request there, even with fetching enabled."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        stranger = DevPki.init(tmp_path / "stranger-pki", base_url=f"http://127.0.0.1:{server.server_port}")
        # No chain in the CMS: a validator allowed to fetch would chase the AIA caIssuers URL.
        forged = sign_with_dev_pki(stranger, tmp_path, embed_chain=False)
        settings = _settings(tmp_path, sqlite_url, dev_pki, fetch_revocation=True, validation_rate_per_minute=1000)
        for client in _client(settings):
            # Broken hash too: that verdict comes before trust and must not open the door either.
            for upload in (forged, tamper(forged)):
                body = client.post("/validation", content=upload, headers=PDF).json()
                assert body["summary"]["indication"] != "TOTAL-PASSED"
        assert _CountingHandler.hits == []
    finally:
        server.shutdown()


@pytest.mark.parametrize(("content", "headers", "status", "code"), [
    (b"just some text, long enough to look at" * 40, PDF, 415, "not_a_pdf"),
    (tiny_pdf(), {"Content-Type": "text/plain"}, 415, "not_a_pdf"),
    (tiny_pdf()[: len(tiny_pdf()) // 2], PDF, 422, "invalid_pdf"),
    (b"%PDF-1.7\n" + b"\x00garbage" * 200 + b"\n%%EOF\n", PDF, 422, "invalid_pdf"),
    (encrypted_pdf(), PDF, 422, "encrypted_pdf"),
    (b"", PDF, 415, "not_a_pdf"),
], ids=["text", "wrong-type", "truncated", "garbage", "encrypted", "empty"])
def test_bad_input_gets_a_stable_code(public, content, headers, status, code):
    response = public.post("/validation", content=content, headers=headers)
    assert (response.status_code, _error(response)) == (status, code), response.text


@pytest.mark.parametrize("content", [None, b"not a certificate at all"], ids=["missing", "garbage"])
def test_unusable_trust_root_answers_503_not_500(tmp_path, sqlite_url, dev_pki, signed, content):
    """A configured root file that is missing or not a certificate makes validation unavailable
    (503 signing_unavailable) for uploads and stored versions alike; the answer names the setting
    to fix but not the server's file path."""
    root = tmp_path / "etc" / "national-root.pem"
    if content is not None:
        root.parent.mkdir()
        root.write_bytes(content)
    settings = _settings(tmp_path, sqlite_url, dev_pki, trust_roots=[root], validation_rate_per_minute=1000)
    for client in _client(settings):
        response = client.post("/validation", content=signed, headers=PDF)
        assert (response.status_code, _error(response)) == (503, "signing_unavailable"), response.text
        assert "signing.trust_roots" in response.json()["error"]["message"]
        assert str(root) not in response.text
        province = build_province(client)
        doc = _document_with_version(client, province["clerk"], signed)
        stored = client.get(f"/documents/{doc}/versions/1/validation", headers=province["clerk"].headers)
        assert (stored.status_code, _error(stored)) == (503, "signing_unavailable")
        [event] = _events(client, province, "document.version_validated")
        assert event["detail"]["error"] == "signing_unavailable"


def test_signed_but_truncated_is_invalid_not_500(public, signed):
    response = public.post("/validation", content=signed[:-200], headers=PDF)
    assert (response.status_code, _error(response)) == (422, "invalid_pdf")


def test_unknown_report_format_is_refused(public, signed):
    response = public.post("/validation?format=xml", content=signed, headers=PDF)
    assert (response.status_code, _error(response)) == (422, "validation_failed")


def test_oversize_upload_is_refused(tmp_path, sqlite_url, dev_pki, signed):
    limit = len(signed) - 1
    for client in _client(_settings(tmp_path, sqlite_url, dev_pki, max_validation_upload_bytes=limit)):
        declared = client.post("/validation", content=signed, headers=PDF)
        assert (declared.status_code, _error(declared)) == (413, "payload_too_large")
        chunked = client.post("/validation", content=iter([signed[:1000], signed[1000:]]), headers=PDF)
        assert (chunked.status_code, _error(chunked)) == (413, "payload_too_large")
        multipart = client.post("/validation", files={"file": ("a.pdf", signed + b" " * (70 * 1024))})
        assert (multipart.status_code, _error(multipart)) == (413, "payload_too_large")
        slightly = client.post("/validation", files={"file": ("a.pdf", signed + b" " * 1024)})  # within overhead
        assert (slightly.status_code, _error(slightly)) == (413, "payload_too_large")
        fits = client.post("/validation", content=tiny_pdf(), headers=PDF)
        assert fits.status_code == 200


def test_oversize_body_is_cut_off_without_reading_it_all():
    anyio.run(_cut_off_without_reading_it_all)


async def _cut_off_without_reading_it_all():
    chunk, sent = b"%PDF-1.7\n" + b"x" * (64 * 1024 - 9), []

    async def receive():
        sent.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": len(sent) < 10_000}  # ~640 MB if read

    scope = {"type": "http", "method": "POST", "path": "/validation", "query_string": b"",
             "headers": [(b"content-type", b"application/pdf")]}
    with pytest.raises(errors.PayloadTooLargeError):
        async with received_pdf(Request(scope, receive), max_bytes=256 * 1024):
            pass
    assert len(sent) == 5  # four chunks fit; the fifth passes the limit and reading stops

    declared = {**scope, "headers": [(b"content-type", b"application/pdf"), (b"content-length", b"999999999")]}
    sent.clear()
    with pytest.raises(errors.PayloadTooLargeError):
        async with received_pdf(Request(declared, receive), max_bytes=256 * 1024):
            pass
    assert sent == []  # refused on the declared length alone


def test_rate_limit_answers_429_with_retry_after(tmp_path, sqlite_url, dev_pki):
    for client in _client(_settings(tmp_path, sqlite_url, dev_pki, validation_rate_per_minute=3)):
        first = time.monotonic()
        statuses = [client.post("/validation", content=tiny_pdf(), headers=PDF).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = client.post("/validation", content=tiny_pdf(), headers=PDF)
        elapsed = time.monotonic() - first
        assert (limited.status_code, _error(limited)) == (429, "rate_limited")
        # The window is a minute and the oldest of the three counted requests was made ``elapsed``
        # seconds ago: the client is told to wait for the rest of that minute, not some other figure.
        assert math.floor(60 - elapsed) <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"]["detail"]["limit"] == 3


def test_sliding_window_limiter_per_client_and_over_time():
    now = [1000.0]
    limiter = SlidingWindowRateLimiter(2, 60.0, clock=lambda: now[0], max_clients=3)
    assert limiter.hit("a") is None
    now[0] += 30
    assert limiter.hit("a") is None
    assert limiter.hit("a") == pytest.approx(30.0)  # the first hit leaves the window in 30 s
    assert limiter.hit("b") is None  # other clients are counted apart
    now[0] += 30.5
    assert limiter.hit("a") is None  # a sliding window: one slot is free again, not two
    assert limiter.hit("a") == pytest.approx(29.5)
    with pytest.raises(errors.RateLimitedError) as caught:
        limiter.check("a")
    assert caught.value.detail["retry_after_seconds"] == 30
    for key in ("c", "d", "e"):  # memory stays bounded by max_clients
        limiter.hit(key)
    assert len(limiter._hits) <= 3


@pytest.mark.parametrize(("explicit", "accept", "expected"), [
    (None, None, ReportFormat.JSON),
    (None, "*/*", ReportFormat.JSON),
    (None, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", ReportFormat.HTML),
    (None, "application/json;q=0.5, application/pdf", ReportFormat.PDF),
    (None, "text/html;q=0.2, application/json;q=0.9", ReportFormat.JSON),
    (ReportFormat.PDF, "text/html", ReportFormat.PDF),
])
def test_format_negotiation(explicit, accept, expected):
    assert negotiate(explicit, accept) is expected


# --- stored versions --------------------------------------------------------------------------

@pytest.fixture
def stored(tmp_path, database_url, dev_pki):
    """The app on SQLite and PostgreSQL, with a province."""
    for client in _client(_settings(tmp_path, database_url, dev_pki)):
        yield client, build_province(client)


def _document_with_version(client, clerk, content: bytes) -> int:
    doc = client.post("/documents", json={"direction": "outgoing", "doc_type": "quyet_dinh",
                                          "subject": "Quyết định phê duyệt kế hoạch"}, headers=clerk.headers)
    assert doc.status_code == 201, doc.text
    doc_id = doc.json()["id"]
    up = client.post(f"/documents/{doc_id}/versions?filename=quyet-dinh.pdf", content=content,
                     headers={**clerk.headers, **PDF})
    assert up.status_code == 201, up.text
    return doc_id


def _events(client, province, action: str) -> list[dict]:
    return client.get("/audit/events", params={"action": action}, headers=province["admin"].headers).json()


def test_stored_version_is_validated_and_audited(stored, signed):
    client, province = stored
    clerk = province["clerk"]
    doc = _document_with_version(client, clerk, signed)
    response = client.get(f"/documents/{doc}/versions/1/validation", headers=clerk.headers)
    assert response.status_code == 200, response.text
    assert response.json()["summary"]["indication"] == "TOTAL-PASSED"
    assert response.json()["signatures"][0]["signer"]["name"] == SIGNER
    [event] = _events(client, province, "document.version_validated")
    assert event["object_id"] == str(doc)
    assert (event["detail"]["indication"], event["detail"]["seq"]) == ("TOTAL-PASSED", 1)
    page = client.get(f"/documents/{doc}/versions/1/validation?format=html", headers=clerk.headers)
    assert _Verdicts(page.text).indications[0] == "TOTAL-PASSED"
    assert len(_events(client, province, "document.version_validated")) == 2


def test_stored_version_tenancy_and_auth(stored, signed):
    client, province = stored
    doc = _document_with_version(client, province["clerk"], signed)
    stranger = client.get(f"/documents/{doc}/versions/1/validation", headers=province["other_clerk"].headers)
    assert (stranger.status_code, _error(stranger)) == (404, "not_found")
    missing = client.get(f"/documents/{doc}/versions/9/validation", headers=province["clerk"].headers)
    assert (missing.status_code, _error(missing)) == (404, "not_found")
    anonymous = client.get(f"/documents/{doc}/versions/1/validation")
    assert anonymous.status_code == 401
    assert _events(client, province, "document.version_validated") == []


def test_stored_tampered_version_is_refused_before_validation(stored, signed):
    client, province = stored
    clerk = province["clerk"]
    doc = _document_with_version(client, clerk, signed)
    root = client.runtime.settings.objects_path / "sha256"
    [path] = [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".json")]
    path.chmod(0o644)
    path.write_bytes(tamper(signed))
    response = client.get(f"/documents/{doc}/versions/1/validation", headers=clerk.headers)
    assert (response.status_code, _error(response)) == (500, "file_integrity_failed")
    assert len(_events(client, province, "file.integrity_failed")) == 1
    assert _events(client, province, "document.version_validated") == []


def test_public_validation_checks_revocation_online_and_caches_the_answers(tmp_path, sqlite_url):
    """With fetching on, a trusted signer's OCSP/CRL is asked: a revoked certificate fails, and the
    answers land in the revocation cache so the next validation asks nobody."""
    from tests.support.pki_server import PkiHttpServer

    server = PkiHttpServer()
    pki = DevPki.init(tmp_path / "served-pki", base_url=server.base_url, ca_key_type="p256")
    with server.serving(pki):
        (tmp_path / "good").mkdir()
        good = sign_with_dev_pki(pki, tmp_path / "good", signer="Lê Thị Hoa")
        revoked_dir = tmp_path / "revoked"
        revoked_dir.mkdir()
        issued = pki.issue_personal("Trần Văn Bình", "001203004568", ORGANISATION)
        key = FileKeyBackend(issued.private_key, issued.certificate, issued.chain)
        (revoked_dir / "in.pdf").write_bytes(tiny_pdf(BODY_TEXT))
        sign_pdf(revoked_dir / "in.pdf", revoked_dir / "out.pdf", key, SignatureSpec())
        pki.revoke(issued.serial, at=datetime.now(UTC) - timedelta(hours=1))
        settings = _settings(tmp_path, sqlite_url, pki, fetch_revocation=True, validation_rate_per_minute=1000)
        for client in _client(settings):
            bad = client.post("/validation", content=(revoked_dir / "out.pdf").read_bytes(), headers=PDF).json()
            # B-B carries no proof of when it was signed, so EN 319 102-1 says REVOKED_NO_POE (not a pass).
            assert bad["summary"]["indication"] == "INDETERMINATE"
            assert bad["signatures"][0]["sub_indication"] == "REVOKED_NO_POE"
            assert bad["signatures"][0]["revocation"]["status"] == "revoked"
            assert bad["signatures"][0]["revocation"]["source"] == "fetched"
            first = client.post("/validation", content=good, headers=PDF).json()
            asked = len(server.hits)
            again = client.post("/validation", content=good, headers=PDF).json()
        assert first["summary"]["indication"] == again["summary"]["indication"] == "TOTAL-PASSED"
        assert first["signatures"][0]["revocation"]["status"] == again["signatures"][0]["revocation"]["status"] == "good"
        assert first["signatures"][0]["revocation"]["source"] == "fetched"  # a cached answer was still fetched
        assert asked > 0 and len(server.hits) == asked
        assert any(settings.revocation_cache_path.iterdir())
