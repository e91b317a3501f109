"""The report states, per signature, the chain to a trusted root and the revocation status apart:
what the status is, the moment it is about and whether it rests on data embedded in the
document or fetched online. Real signatures from the development PKI, whose TSA, OCSP responder
and CRLs are served on loopback."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from signing.interfaces import SignatureSpec
from signing.keys import FileKeyBackend
from signing.pades import sign_pdf
from signing.report import render_html, render_text
from signing.trust import TrustServices, dev_trust
from signing.validation import validate_pdf
from tests.support.pdfs import tiny_pdf

ORG = "Sở Nội vụ tỉnh Hà Tĩnh"


@pytest.fixture(scope="module")
def trust(dev_pki, dev_pki_served, tmp_path_factory) -> TrustServices:
    """Validation that fetches OCSP/CRL answers from the loopback PKI."""
    return TrustServices(dev_trust(dev_pki, tmp_path_factory.mktemp("revocation-cache")))


@pytest.fixture(scope="module")
def offline(dev_pki) -> TrustServices:
    """The same trust, but nothing is fetched: only what the document carries counts."""
    return TrustServices(replace(dev_trust(dev_pki), fetch_revocation=False))


def _key(dev_pki, name: str, personal_id: str) -> tuple[FileKeyBackend, int]:
    issued = dev_pki.issue_personal(name, personal_id, ORG)
    return FileKeyBackend(issued.private_key, issued.certificate, issued.chain), issued.serial


def _sign(tmp_path: Path, key, level: str, trust: TrustServices) -> Path:
    src, out = tmp_path / f"in-{level}.pdf", tmp_path / f"signed-{level}.pdf"
    src.write_bytes(tiny_pdf("Cong van ve thu hoi"))
    sign_pdf(src, out, key, SignatureSpec(level=level), timestamper=trust.timestamper(),
             validation_context=trust.signing_validation_context() if level in ("B-LT", "B-LTA") else None)
    return out


class _Rows(HTMLParser):
    """(label, value, tone) of every row of a report page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, str]] = []
        self._label, self._cell, self._tone, self._in = "", "", "", None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag in ("th", "td"):
            self._in, self._cell, self._tone = tag, "", dict(attrs).get("class", "")

    def handle_endtag(self, tag):
        if tag == "th":
            self._label = self._cell
        elif tag == "td":
            self.rows.append((self._label, self._cell, self._tone))
        self._in = None if tag in ("th", "td") else self._in

    def handle_data(self, data):
        if self._in:
            self._cell += data

    def values(self, label_start: str) -> list[tuple[str, str]]:
        return [(value, tone) for label, value, tone in self.rows if label.startswith(label_start)]


def test_lt_signature_offline_rests_on_embedded_data(dev_pki, tmp_path, trust, offline, dev_server):
    key, _ = _key(dev_pki, "Đỗ Minh Châu", "001203009101")
    out = _sign(tmp_path, key, "B-LT", trust)
    hits = len(dev_server.hits)

    report = validate_pdf(out, trust=offline)

    assert len(dev_server.hits) == hits, "fetching is off: nobody may be asked"
    sig = report.signatures[0]
    assert (report.indication, sig.pades_level) == ("TOTAL-PASSED", "B-LT")
    assert sig.chain_trusted and "Root CA phát triển docsvc" in sig.trust_root
    assert (sig.revocation.status, sig.revocation.source) == ("good", "embedded")
    assert sig.revocation.checked_at == sig.timestamp_time  # as of the signing time the timestamp proves
    body = report.to_dict()
    assert body["signatures"][0]["revocation"] == {"status": "good", "checked_at": sig.timestamp_time,
                                                   "source": "embedded", "revoked_at": None}
    assert body["summary"]["chains_trusted"] == 1 and body["summary"]["revocation"]["good"] == 1

    rows = _Rows(render_html(report, document_name="lt.pdf"))
    [(chain, chain_tone)] = rows.values("Chuỗi chứng thư / Certificate chain")
    assert chain_tone == "ok" and "Chains to a trusted root" in chain and "Root CA phát triển docsvc" in chain
    [(revocation, revocation_tone)] = rows.values("Tình trạng thu hồi / Revocation status")[1:]  # [0]: summary
    assert revocation_tone == "ok"
    assert "Not revoked" in revocation and "embedded in the document" in revocation
    assert sig.timestamp_time in revocation


def test_bb_signature_is_checked_with_fetched_answers(dev_pki, tmp_path, trust, offline, dev_server):
    key, _ = _key(dev_pki, "Vũ Thị Hạnh", "001203009102")
    out = _sign(tmp_path, key, "B-B", trust)
    before = datetime.now(UTC)
    hits = len(dev_server.hits)

    fetched = validate_pdf(out, trust=trust).signatures[0]

    assert any(path.startswith("/pki/ocsp") for path in dev_server.hits[hits:])
    assert fetched.indication == "TOTAL-PASSED" and fetched.pades_level == "B-B"
    assert (fetched.revocation.status, fetched.revocation.source) == ("good", "fetched")
    # No timestamp proves a signing time, so the status is as of the validation itself.
    assert before <= datetime.fromisoformat(fetched.revocation.checked_at) <= datetime.now(UTC)
    assert "fetched online" in render_text(validate_pdf(out, trust=trust))

    # Without fetching the same file has no revocation data at all: said so, not passed off as good.
    alone = validate_pdf(out, trust=offline).signatures[0]
    assert alone.chain_trusted and (alone.revocation.status, alone.revocation.source) == ("unknown", "none")
    rows = _Rows(render_html(validate_pdf(out, trust=offline)))
    assert rows.values("Tình trạng thu hồi / Revocation status")[1][1] == "warn"


@pytest.mark.parametrize("level", ["B-B", "B-T"])
def test_revoked_certificate_reports_revoked(level, dev_pki, tmp_path, trust):
    key, serial = _key(dev_pki, "Lý Văn Hùng", "001203009103")
    dev_pki.revoke(serial, reason="key_compromise", at=datetime.now(UTC) - timedelta(hours=2))
    out = _sign(tmp_path, key, level, trust)

    report = validate_pdf(out, trust=trust)

    sig = report.signatures[0]
    assert sig.indication != "TOTAL-PASSED"
    assert sig.chain_trusted  # the chain itself is fine; the certificate is what was revoked
    assert (sig.revocation.status, sig.revocation.source) == ("revoked", "fetched")
    assert datetime.fromisoformat(sig.revocation.revoked_at) < datetime.fromisoformat(sig.revocation.checked_at)
    rows = _Rows(render_html(report))
    [(text, tone)] = rows.values("Tình trạng thu hồi / Revocation status")[1:]
    assert tone == "bad" and "Revoked" in text and sig.revocation.revoked_at in text



def test_a_look_alike_pki_is_not_a_trusted_chain(tmp_path):
    """Every development PKI names its CAs alike. A PDF signed under another one must not be
    reported as chaining to our root: pyHanko builds the path by names and keeps it when the
    signatures then fail, so the report checks every link against its issuer's key."""
    from signing.devpki import DevPki
    from signing.interfaces import SignatureSpec
    from signing.keys import FileKeyBackend
    from signing.pades import sign_pdf
    from signing.validation import validate_pdf
    from tests.support.pdfs import tiny_pdf

    ours = DevPki.init(tmp_path / "ours", base_url="http://127.0.0.1:9", ca_key_type="p256")
    theirs = DevPki.init(tmp_path / "theirs", base_url="http://127.0.0.1:9", ca_key_type="p256")
    assert ours.trust_root.subject == theirs.trust_root.subject  # same names, other keys
    issued = theirs.issue_personal("Nguyễn Văn An", "001090000001", "Ủy ban nhân dân tỉnh")
    (tmp_path / "in.pdf").write_bytes(tiny_pdf())
    sign_pdf(tmp_path / "in.pdf", tmp_path / "out.pdf",
             FileKeyBackend(issued.private_key, issued.certificate, issued.chain), SignatureSpec(level="B-B"))

    foreign = validate_pdf(tmp_path / "out.pdf", [ours.trust_root], other_certs=[ours.chain[0]])
    (signature,) = foreign.signatures
    assert signature.indication != "TOTAL-PASSED"
    assert (signature.chain_trusted, signature.trust_root) == (False, None)
    home = validate_pdf(tmp_path / "out.pdf", [theirs.trust_root], other_certs=[theirs.chain[0]])
    assert home.signatures[0].chain_trusted is True
