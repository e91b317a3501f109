"""``docsvc axis build`` / ``docsvc axis parse`` through the CLI app: what the user reads and which
files are left behind."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from inter_axis.cli import axis_app
from tests.inter_axis.conftest import EXAMPLES

DOCUMENT_ID = "000.00.00.H41,2025/03/14,12/CT-UBND"
SUBJECT = "Về tăng cường công tác phòng, chống lụt bão"
MINIMAL_HEADER = {
    "from_org": {"organ_id": "000.00.00.H41", "organ_name": "UBND tỉnh Nghệ An"},
    "to": [{"organ_id": "000.00.00.G22", "organ_name": "Văn phòng Chính phủ"}],
    "code": {"number": "12", "notation": "CT-UBND"},
    "promulgation_date": "2025/03/14",
    "document_type": {"type": 1, "type_name": "Chỉ thị"},
    "subject": SUBJECT,
}
FULL_HEADER = {
    **MINIMAL_HEADER,
    "from_org": {"organ_id": "000.00.00.H41", "organ_name": "UBND tỉnh Nghệ An", "email": "vanthu@example.gov.vn"},
    "to": [
        {"organ_id": "000.00.00.G22", "organ_name": "Văn phòng Chính phủ"},
        {"organ_id": "000.00.00.H14", "organ_name": "UBND tỉnh Hà Tĩnh"},
    ],
    "promulgation_place": "Nghệ An",
    "content": "Tăng cường phòng, chống lụt bão mùa mưa 2025",
    "signer": {"competence": "KT. CHỦ TỊCH", "position": "PHÓ CHỦ TỊCH", "full_name": "Nguyễn Văn A"},
    "due_date": "2025/03/31",
    "steering_type": 2,
    "to_places": ["Như trên", "Lưu: VT, VX"],
    "other_info": {"priority": 1, "page_amount": 4, "appendixes": ["Phụ lục I - Danh sách đơn vị"]},
    "response_for": [
        {
            "organ_id": "000.00.00.G22",
            "code": "34/VPCP-TTĐT",
            "promulgation_date": "2025/03/01",
            "document_id": "000.00.00.G22,2025/03/01,34/VPCP-TTĐT",
        }
    ],
}
ATTACHMENT = {"content_id": "a1", "name": "a.pdf", "content_type": "application/pdf", "path": "a.pdf"}

runner = CliRunner()


def _spec(directory: Path, header: dict, attachments: list[dict]) -> Path:
    spec = directory / "spec.json"
    spec.write_text(json.dumps({"header": header, "attachments": attachments}), encoding="utf-8")
    return spec


def _keys(seal, directory: Path) -> list[str]:
    key, cert, _root = seal
    (directory / "k.pem").write_bytes(key)
    (directory / "c.pem").write_bytes(cert)
    return ["--key", str(directory / "k.pem"), "--cert", str(directory / "c.pem")]


def _build(directory: Path, header: dict, *options: str) -> Path:
    out = directory / "o.edxml"
    result = runner.invoke(axis_app, ["build", str(_spec(directory, header, [ATTACHMENT])), "--out", str(out),
                                      *options])
    assert result.exit_code == 0, result.output
    return out


def _parse(*args: str) -> list[str]:
    result = runner.invoke(axis_app, ["parse", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def _unrelated_root() -> bytes:
    """A self-signed CA certificate (PEM) that issued nothing we sign with."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Another root")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _signature_line(lines: list[str]) -> str:
    [line] = [line for line in lines if line.startswith("signature: ")]
    return line


def test_cli_build_parse(pdf_file, seal, tmp_path):
    out = _build(tmp_path, MINIMAL_HEADER, *_keys(seal, tmp_path))
    result = runner.invoke(axis_app, ["parse", str(out), "--json", "--trust", str(seal[2])])
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    assert parsed["signature"]["valid"] and parsed["attachments"][0]["size"] == pdf_file.stat().st_size
    bad = runner.invoke(axis_app, ["parse", str(EXAMPLES / "status_03.edxml")[:-1]])
    assert bad.exit_code == 2 and "malformed_xml" in bad.output


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_build_with_a_missing_attachment_is_a_clear_error_and_leaves_no_file(pdf_file, seal, tmp_path, signed):
    spec = _spec(tmp_path, MINIMAL_HEADER, [{**ATTACHMENT, "path": "scan-missing.pdf"}])
    out = tmp_path / "o.edxml"
    out.write_bytes(b"an earlier package")
    before = set(tmp_path.iterdir())
    result = runner.invoke(axis_app, ["build", str(spec), "--out", str(out), *(_keys(seal, tmp_path) if signed
                                                                                   else [])])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    assert "error [io_error]: No such file or directory:" in result.output
    assert "scan-missing.pdf" in result.output
    assert out.read_bytes() == b"an earlier package"  # nothing half-written, nothing replaced
    left = {p for p in set(tmp_path.iterdir()) - before if p.name not in ("k.pem", "c.pem")}
    assert left == set()


def test_build_into_a_missing_directory_or_from_a_missing_spec(tmp_path):
    spec = _spec(tmp_path, MINIMAL_HEADER, [ATTACHMENT])
    result = runner.invoke(axis_app, ["build", str(spec), "--out", str(tmp_path / "nowhere" / "o.edxml")])
    assert result.exit_code == 2 and f"io_error]: No such file or directory: {tmp_path / 'nowhere'}" in result.output
    result = runner.invoke(axis_app, ["build", str(tmp_path / "none.json"), "--out", str(tmp_path / "o.edxml")])
    assert result.exit_code == 2 and "none.json" in result.output
    assert not (tmp_path / "o.edxml").exists()


def test_parse_prints_every_header_field_attachment_and_an_untrusted_signature_check(pdf_file, seal, tmp_path):
    out = _build(tmp_path, FULL_HEADER, *_keys(seal, tmp_path))
    lines = _parse(str(out))
    sha256 = hashlib.sha256(pdf_file.read_bytes()).hexdigest()
    for expected in (
        "kind: document",
        "From: 000.00.00.H41 UBND tỉnh Nghệ An (Email vanthu@example.gov.vn)",
        "To: 000.00.00.G22 Văn phòng Chính phủ",
        "To: 000.00.00.H14 UBND tỉnh Hà Tĩnh",
        f"DocumentId: {DOCUMENT_ID}",
        "Code: 12/CT-UBND",
        "PromulgationInfo: Nghệ An, 2025/03/14",
        "DocumentType: Chỉ thị (Type 1, TypeDetail 0)",
        f"Subject: {SUBJECT}",
        "Content: Tăng cường phòng, chống lụt bão mùa mưa 2025",
        "SignerInfo: KT. CHỦ TỊCH, PHÓ CHỦ TỊCH, Nguyễn Văn A",
        "DueDate: 2025/03/31",
        "Appendix: Phụ lục I - Danh sách đơn vị",
        "ResponseFor: 000.00.00.G22 34/VPCP-TTĐT 2025/03/01 (DocumentId 000.00.00.G22,2025/03/01,34/VPCP-TTĐT)",
        "SteeringType: 2",
        "ToPlaces: Như trên; Lưu: VT, VX",
        f"attachment: cid:a1 a.pdf application/pdf {pdf_file.stat().st_size} bytes sha256={sha256}",
    ):
        assert expected in lines, expected
    assert any(line.startswith("OtherInfo: Priority 1;") and "PageAmount 4" in line for line in lines)
    assert not [line for line in lines if line.startswith("warning:")]
    signature = _signature_line(lines)
    assert "digest and signature value check out against the embedded certificate" in signature
    assert "000.00.00.H41" in signature and "NOT checked against a trust root" in signature

    trusted = _signature_line(_parse(str(out), "--trust", str(seal[2])))
    assert trusted.startswith("signature: valid") and "certificate trusted" in trusted


def test_parse_of_a_changed_package_says_it_does_not_check_out(seal, pdf_file, tmp_path):
    out = _build(tmp_path, FULL_HEADER, *_keys(seal, tmp_path))
    changed = tmp_path / "changed.edxml"
    changed.write_bytes(out.read_bytes().replace(b">12</edXML:CodeNumber>", b">13</edXML:CodeNumber>"))
    for trust in ([], ["--trust", str(seal[2])]):
        signature = _signature_line(_parse(str(changed), *trust))
        assert signature.startswith("signature: NOT valid: digest_mismatch")
        assert "check out" not in signature
    other_root = tmp_path / "other-root.pem"
    other_root.write_bytes(_unrelated_root())
    untrusted = _signature_line(_parse(str(out), "--trust", str(other_root)))
    assert untrusted.startswith("signature: NOT valid: untrusted_signer")
    assert "digest and signature value check out against the embedded certificate" in untrusted


def test_parse_leaves_out_absent_fields_and_prints_warnings(pdf_file, tmp_path):
    lines = _parse(str(_build(tmp_path, MINIMAL_HEADER)))
    labels = {line.split(":", 1)[0] for line in lines}
    assert {"From", "To", "DocumentId", "Subject"} <= labels
    assert not labels & {"DueDate", "ToPlaces", "ResponseFor", "Content", "SignerInfo", "Appendix"}
    assert "PromulgationInfo: 2025/03/14" in lines  # no Place: only the date
    assert not [line for line in lines if "DueDate" in line]  # empty DueDate: allowed by the format, no warning
    assert _signature_line(lines) == "signature: NOT valid: no_signature (the package is not signed)"


def test_parse_prints_a_status_message():
    lines = _parse(str(EXAMPLES / "status_03.edxml"))
    for expected in (
        "kind: status",
        "StatusCode: 03 (Đã tiếp nhận)",
        f"ResponseFor: 000.00.00.H41 12/CT-UBND 2025/03/14 (DocumentId {DOCUMENT_ID})",
        "Description: Đã tiếp nhận, vào sổ văn bản đến số 1234",
        "Timestamp: 2025/03/14 10:02:11",
        "StaffInfo: Phòng Hành chính - Văn thư, Lê Văn C, vanthu@vpcp.example, 84911111111",
    ):
        assert expected in lines, expected
    assert any(line.startswith("From: 000.00.00.G22 Văn phòng Chính phủ") for line in lines)


def test_parse_with_an_unreadable_trust_root_is_a_clear_error(tmp_path):
    (tmp_path / "junk.pem").write_text("not a certificate")
    for trust, code in ((tmp_path / "junk.pem", "bad_signature"), (tmp_path / "none.pem", "io_error")):
        result = runner.invoke(axis_app, ["parse", str(EXAMPLES / "status_03.edxml"), "--trust", str(trust)])
        assert result.exit_code == 2 and f"error [{code}]" in result.output
        assert isinstance(result.exception, SystemExit)
