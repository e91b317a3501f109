"""Signing at each PAdES level, checked by our validator and by poppler's pdfsig."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from signing.errors import EncryptedPdfError, InvalidPdfError, SigningError
from signing.interfaces import AppearanceSpec, SignatureSpec
from signing.pades import async_sign_pdf, sign_pdf
from signing.validation import validate_pdf
from tests.support.pdfs import big_pdf, encrypted_pdf, tiny_pdf, vietnamese_pdf


@pytest.fixture
def doc(tmp_path) -> Path:
    path = tmp_path / "in.pdf"
    path.write_bytes(tiny_pdf("Van ban thu nghiem"))
    return path


def _passed(report) -> bool:
    return report.indication == "TOTAL-PASSED"


def test_bb_is_valid_in_pdfsig_and_ours(doc, tmp_path, rsa_key, pki, pdfsig):
    out = tmp_path / "signed.pdf"
    sign_pdf(doc, out, rsa_key, SignatureSpec(reason="Phê duyệt", location="Nghệ An"))

    report = pdfsig(out)
    assert "Signature is Valid." in report
    assert "Certificate is Trusted." in report
    assert "ETSI.CAdES.detached" in report
    assert "Nguyễn Văn An" in report
    result = validate_pdf(out, [pki.root.asn1])
    assert _passed(result)
    sig = result.signatures[0]
    assert (sig.pades_level, sig.coverage, sig.signer.organisation) == (
        "B-B", "ENTIRE_FILE", "Sở Thông tin và Truyền thông tỉnh Nghệ An")


def test_bb_with_p256_key(doc, tmp_path, ec_key, pki, pdfsig):
    out = tmp_path / "signed.pdf"
    sign_pdf(doc, out, ec_key, SignatureSpec())
    assert "Signature is Valid." in pdfsig(out)
    assert _passed(validate_pdf(out, [pki.root.asn1]))


def test_bt_has_a_signature_timestamp(doc, tmp_path, rsa_key, pki, timestamper, pdfsig):
    out = tmp_path / "signed.pdf"
    sign_pdf(doc, out, rsa_key, SignatureSpec(level="B-T"), timestamper=timestamper)

    assert "Signature is Valid." in pdfsig(out)
    sig = validate_pdf(out, [pki.root.asn1]).signatures[0]
    assert sig.indication == "TOTAL-PASSED"
    assert sig.pades_level == "B-T" and sig.timestamp_valid and sig.timestamp_time


def test_bt_without_timestamper_is_refused(doc, tmp_path, rsa_key):
    with pytest.raises(SigningError, match="timestamper"):
        sign_pdf(doc, tmp_path / "x.pdf", rsa_key, SignatureSpec(level="B-T"))
    with pytest.raises(SigningError, match="validation context"):
        sign_pdf(doc, tmp_path / "x.pdf", rsa_key, SignatureSpec(level="B-LT"), timestamper=object())
    assert not (tmp_path / "x.pdf").exists()


def test_streams_and_async_api(rsa_key, pki):
    out = io.BytesIO()
    import asyncio

    asyncio.run(async_sign_pdf(io.BytesIO(tiny_pdf()), out, rsa_key, SignatureSpec()))
    assert _passed(validate_pdf(out.getvalue(), [pki.root.asn1]))


def test_second_signature_keeps_the_first_valid(doc, tmp_path, rsa_key, ec_key, pki, pdfsig):
    first, second = tmp_path / "1.pdf", tmp_path / "2.pdf"
    sign_pdf(doc, first, rsa_key, SignatureSpec(reason="Soạn thảo"))
    sign_pdf(first, second, ec_key, SignatureSpec(reason="Phê duyệt", appearance=AppearanceSpec()))

    assert pdfsig(second).count("Signature is Valid.") == 2
    result = validate_pdf(second, [pki.root.asn1])
    assert [s.indication for s in result.signatures] == ["TOTAL-PASSED", "TOTAL-PASSED"]
    assert [s.coverage for s in result.signatures] == ["ENTIRE_REVISION", "ENTIRE_FILE"]
    assert result.signatures[0].modifications_permitted is True
    assert [s.field_name for s in result.signatures] == ["Signature1", "Signature2"]


def test_certification_locks_the_document(doc, tmp_path, rsa_key, ec_key, pki):
    from tests.support.pdfs import append_content_change

    certified = tmp_path / "certified.pdf"
    sign_pdf(doc, certified, rsa_key, SignatureSpec(certify=True, docmdp_permission="fill_forms"))
    sig = validate_pdf(certified, [pki.root.asn1]).signatures[0]
    assert (sig.kind, sig.docmdp_permission, sig.indication) == ("certification", "FILL_FORMS", "TOTAL-PASSED")

    # A later signature is a permitted change under FILL_FORMS ...
    cosigned = tmp_path / "cosigned.pdf"
    sign_pdf(certified, cosigned, ec_key, SignatureSpec())
    assert validate_pdf(cosigned, [pki.root.asn1]).indication == "TOTAL-PASSED"
    # ... a page content change is not.
    append_content_change(cosigned)
    result = validate_pdf(cosigned, [pki.root.asn1])
    first = result.signatures[0]
    assert first.indication == "TOTAL-FAILED" and first.modifications_permitted is False
    assert first.modification_level == "OTHER"


def test_visible_vietnamese_appearance_renders(tmp_path, rsa_key, pki, pdfsig):
    src = tmp_path / "vb.pdf"
    src.write_bytes(vietnamese_pdf())
    out = tmp_path / "signed.pdf"
    box = (330.0, 60.0, 560.0, 150.0)
    sign_pdf(src, out, rsa_key, SignatureSpec(appearance=AppearanceSpec(
        page=-1, box=box, lines=("Ký bởi: %(signer)s", "%(org)s", "Ngày ký: %(ts)s"))))
    assert "Signature is Valid." in pdfsig(out)
    assert _passed(validate_pdf(out, [pki.root.asn1]))

    dpi = 72
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-f", "1", "-l", "1", str(out), str(tmp_path / "p")],
                   check=True)
    image = Image.open(next(tmp_path.glob("p*.png"))).convert("L")
    height = image.height
    inner = image.crop((int(box[0]) + 4, height - int(box[3]) + 4, int(box[2]) - 4, height - int(box[1]) - 4))
    dark = sum(1 for px in inner.getdata() if px < 128)
    assert dark > 300, "the signature box holds no text"
    # Fonts are embedded (pdffonts is poppler too): the stamp text is not a fallback font.
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True).stdout
    assert "NotoSerif" in fonts


def test_big_file_is_streamed_file_to_file(tmp_path, rsa_key, pki):
    src = tmp_path / "big.pdf"
    src.write_bytes(big_pdf(8 * 1024 * 1024))
    out = tmp_path / "signed.pdf"
    sign_pdf(src, out, rsa_key, SignatureSpec(appearance=AppearanceSpec()))
    assert out.stat().st_size > src.stat().st_size
    assert out.read_bytes()[: src.stat().st_size] == src.read_bytes()  # incremental: original bytes intact
    assert _passed(validate_pdf(out, [pki.root.asn1]))


@pytest.mark.parametrize("name, data, error", [
    ("not a PDF", b"PK\x03\x04 this is a zip file, not a PDF" * 10, InvalidPdfError),
    ("empty", b"", InvalidPdfError),
    ("header only", b"%PDF-1.7\n", InvalidPdfError),
    ("truncated", tiny_pdf()[:200], InvalidPdfError),
    ("garbage xref", tiny_pdf().replace(b"xref", b"xr3f").replace(b"startxref", b"startxref\n99999"),
     InvalidPdfError),
    ("encrypted", encrypted_pdf(), EncryptedPdfError),
])
def test_bad_input_gets_our_errors(tmp_path, rsa_key, pki, name, data, error):
    src = tmp_path / "in.pdf"
    src.write_bytes(data)
    with pytest.raises(error):
        sign_pdf(src, tmp_path / "out.pdf", rsa_key, SignatureSpec())
    with pytest.raises(error):
        validate_pdf(src, [pki.root.asn1])
    assert not (tmp_path / "out.pdf").exists()


def test_missing_input_file(tmp_path, rsa_key):
    with pytest.raises(InvalidPdfError):
        sign_pdf(tmp_path / "nope.pdf", tmp_path / "out.pdf", rsa_key, SignatureSpec())


def test_appearance_page_out_of_range(doc, tmp_path, rsa_key):
    with pytest.raises(SigningError, match="page"):
        sign_pdf(doc, tmp_path / "out.pdf", rsa_key, SignatureSpec(appearance=AppearanceSpec(page=3)))
