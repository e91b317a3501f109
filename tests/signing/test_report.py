"""The readable validation reports: HTML (escaped, bilingual) and PDF, on real signed files."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from signing.interfaces import SignatureSpec
from signing.keys import FileKeyBackend
from signing.pades import sign_pdf
from signing.report import describe, render_html, render_pdf, render_text
from signing.validation import validate_pdf
from tests.support.pdfs import append_content_change, tiny_pdf

HOSTILE_CN = '<b>Lê</b> "Văn" <script>alert(1)</script> & Co'


class _Cells(HTMLParser):
    """Collects (label, value, tone) rows, script tags and verdict indications of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()
        self.indications: list[str] = []
        self._label, self._cell, self._where, self._tone = "", "", None, ""

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        if "data-indication" in attrs:
            self.indications.append(attrs["data-indication"])
        if tag in ("th", "td"):
            self._where, self._cell, self._tone = tag, "", attrs.get("class", "")

    def handle_endtag(self, tag):
        if tag == "th":
            self._label = self._cell
        elif tag == "td":
            self.rows.append((self._label, self._cell, self._tone))
        if tag in ("th", "td"):
            self._where = None

    def handle_data(self, data):
        if self._where:
            self._cell += data

    def value(self, label_start: str, nth: int = 0) -> tuple[str, str]:
        found = [(v, t) for label, v, t in self.rows if label.startswith(label_start)]
        return found[nth]


def _parse(page: str) -> _Cells:
    cells = _Cells()
    cells.feed(page)
    return cells


def _sign(tmp_path: Path, key, text: str = "Quyet dinh so 12") -> Path:
    src, out = tmp_path / "in.pdf", tmp_path / "signed.pdf"
    src.write_bytes(tiny_pdf(text))
    sign_pdf(src, out, key, SignatureSpec(reason="Phê duyệt"))
    return out


def _pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def test_valid_signature_html_names_signer_and_verdict(tmp_path, pki, rsa_key):
    report = validate_pdf(_sign(tmp_path, rsa_key), [pki.root.asn1])
    page = render_html(report, document_name="quyet-dinh.pdf")
    cells = _parse(page)
    assert cells.indications == ["TOTAL-PASSED", "TOTAL-PASSED"]  # summary, then the one signature
    assert cells.value("Người ký / Signer") == ("Nguyễn Văn An", "neutral")
    assert cells.value("Số hiệu chứng thư")[0] == format(pki.rsa_signer.cert.serial_number, "x")
    assert "Test Issuing CA Nghệ An" in cells.value("Tổ chức cấp chứng thư")[0]
    assert cells.value("Toàn vẹn / Integrity") == ("Nguyên vẹn / Intact", "ok")
    assert cells.value("Phạm vi ký / Coverage") == ("Toàn bộ tệp / The whole file", "ok")
    assert cells.value("Mức PAdES")[0] == "B-B"
    assert cells.value("Tệp / File")[0] == "quyet-dinh.pdf"
    assert page.startswith("<!DOCTYPE html>") and 'lang="vi"' in page and "script" not in cells.tags


def test_one_changed_byte_reads_total_failed(tmp_path, pki, rsa_key):
    signed = _sign(tmp_path, rsa_key)
    data = bytearray(signed.read_bytes())
    data[data.index(b"Quyet dinh so 12")] ^= 0x01
    signed.write_bytes(bytes(data))
    report = validate_pdf(signed, [pki.root.asn1])
    cells = _parse(render_html(report))
    assert cells.indications == ["TOTAL-FAILED", "TOTAL-FAILED"]
    assert cells.value("Toàn vẹn / Integrity") == ("Đã bị thay đổi / Altered", "bad")
    assert "HASH_FAILURE" in cells.value("Kết quả chung")[0]
    text = _pdf_text(render_pdf(report), tmp_path)
    assert "TOTAL-FAILED" in text and "HASH_FAILURE" in text


def test_content_change_after_signing_reads_suspicious(tmp_path, pki, rsa_key):
    signed = _sign(tmp_path, rsa_key)
    append_content_change(signed)
    cells = _parse(render_html(validate_pdf(signed, [pki.root.asn1])))
    value, tone = cells.value("Thay đổi sau khi ký")
    assert tone == "bad" and "đáng ngờ / suspicious" in value
    assert cells.value("Phạm vi ký / Coverage")[0].startswith("Phiên bản 2/3")
    assert cells.indications[0] != "TOTAL-PASSED"


def test_hostile_signer_name_is_escaped(tmp_path, pki):
    key = rsa.generate_private_key(65537, 2048)
    backend = FileKeyBackend(key, pki.issue_signer(key.public_key(), HOSTILE_CN), pki.chain_asn1)
    report = validate_pdf(_sign(tmp_path, backend), [pki.root.asn1])
    assert report.signatures[0].signer.name == HOSTILE_CN
    page = render_html(report)
    cells = _parse(page)
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert cells.tags.isdisjoint({"script", "b"})
    assert cells.value("Người ký / Signer")[0] == HOSTILE_CN  # shown literally, not interpreted
    assert HOSTILE_CN in render_text(report)


def test_unsigned_pdf_report(tmp_path):
    path = tmp_path / "plain.pdf"
    path.write_bytes(tiny_pdf())
    report = validate_pdf(path, [])
    cells = _parse(render_html(report))
    assert cells.indications == ["INDETERMINATE"]
    assert "NO_SIGNATURE_FOUND" in cells.value("Kết quả chung")[0]
    assert cells.value("Số chữ ký / Signatures")[0] == "0"


def test_pdf_report_carries_vietnamese_text(tmp_path, pki, rsa_key):
    report = validate_pdf(_sign(tmp_path, rsa_key), [pki.root.asn1])
    moment = datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
    data = render_pdf(report, document_name="quyết định.pdf", generated_at=moment)
    assert data.startswith(b"%PDF-")
    assert render_pdf(report, document_name="quyết định.pdf", generated_at=moment) == data  # reproducible
    text = _pdf_text(data, tmp_path)
    for expected in ("Kết quả kiểm tra chữ ký số", "TOTAL-PASSED", "Nguyễn Văn An", "Người ký / Signer",
                     "quyết định.pdf", "2024-03-05T08:30:00+00:00", format(pki.rsa_signer.cert.serial_number, "x")):
        assert expected in text, expected


def test_describe_lists_every_signature(tmp_path, pki, rsa_key, ec_key):
    once = _sign(tmp_path, rsa_key)
    twice = tmp_path / "twice.pdf"
    sign_pdf(once, twice, ec_key, SignatureSpec())
    sections = describe(validate_pdf(twice, [pki.root.asn1]))
    assert [s.indication for s in sections] == ["TOTAL-PASSED"] * 3
    assert [s.title for s in sections[1:]] == ["1. Chữ ký số / Signature: Nguyễn Văn An",
                                               "2. Chữ ký số / Signature: Trần Thị Bích Ngọc"]
    later = dict((line.label, line.value) for line in sections[1].lines)["Thay đổi sau khi ký / Changes after signing"]
    assert "Form filling, later signatures" in later and "permitted" in later


def test_chain_and_revocation_are_separate_lines(tmp_path, pki, rsa_key):
    """The test PKI publishes no OCSP or CRL: the chain is trusted, revocation is unknown, and the
    page says both instead of one "trusted" verdict; with a foreign root there is no chain."""
    signed = _sign(tmp_path, rsa_key)
    cells = _parse(render_html(validate_pdf(signed, [pki.root.asn1])))
    chain, tone = cells.value("Chuỗi chứng thư / Certificate chain")
    assert tone == "ok" and "Chains to a trusted root" in chain and "Test Root CA Việt Nam" in chain
    revocation, tone = cells.value("Tình trạng thu hồi / Revocation status", 1)  # 0 is the summary's
    assert tone == "warn" and "Unknown" in revocation and "no data" in revocation
    assert cells.value("Tình trạng thu hồi / Revocation status")[0].startswith("chưa thu hồi / good: 0")

    foreign = validate_pdf(signed, [pki.other_root.asn1])
    cells = _parse(render_html(foreign))
    assert cells.value("Chuỗi chứng thư / Certificate chain") == (
        "Không dẫn đến CA gốc tin cậy / Does not chain to a trusted root", "bad")
    assert cells.value("Dẫn đến CA gốc tin cậy / Chain to a trusted root") == ("0/1", "bad")
    revocation, tone = cells.value("Tình trạng thu hồi / Revocation status", 1)
    assert tone == "neutral" and "Not checked" in revocation
    text = _pdf_text(render_pdf(foreign), tmp_path)
    assert "Chuỗi chứng thư / Certificate chain" in text and "Does not chain to a trusted root" in text
    assert "Không kiểm tra (không có chuỗi tin cậy" in text  # the PDF table wraps the English half


@pytest.mark.parametrize("value", ["Tên\x00với\x1bký tự điều khiển"])
def test_control_characters_are_dropped(value):
    from signing.report import clean_text

    assert clean_text(value) == "Tênvớiký tự điều khiển"
