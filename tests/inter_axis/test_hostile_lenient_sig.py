"""Hostile input refused with stable codes; messy input read with warnings; the XML-DSig checked by us and
by xmlsec1 (Debian), including a changed byte and a pasted second signature (more wrapping and malformed
signatures: test_signature_attacks.py; the CLI: test_cli.py)."""

from __future__ import annotations

import io

import pytest

from inter_axis.errors import BadSignatureError, EdxmlError
from inter_axis.inspect import inspect_package
from inter_axis.parse import read_package
from inter_axis.stream import CHUNK
from inter_axis.xmldsig import load_signing_key, sign_package_with, signing_key_of, verify_package
from tests.inter_axis.conftest import EXAMPLES, signed_package, xmlsec_verifies

SAMPLE = (EXAMPLES / "edoc_new.edxml").read_bytes()
XXE = b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]><edXML>&x;</edXML>'
LAUGHS = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>'


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (XXE, "hostile_xml"),
        (LAUGHS, "hostile_xml"),
        (SAMPLE.replace(b"http://www.mic.gov.vn/TBT/QCVN_102_2016", b"http://www.e-doc.vn/Schema/"), "wrong_namespace"),
        (b"<edXML><x/></edXML>", "wrong_namespace"),
        (SAMPLE[:500], "malformed_xml"),
        (
            SAMPLE.replace(b"<edXML:DocumentId>000.00.00.H41,2025/03/14,12/CT-UBND</edXML:DocumentId>", b"").replace(
                b"<edXML:CodeNumber>12</edXML:CodeNumber>", b""
            ),
            "missing_field",
        ),
    ],
)
def test_hostile_and_unusable_input_refused(data, code):
    for read in (inspect_package, read_package):
        with pytest.raises(EdxmlError) as info:
            read(data)
        assert info.value.code == code


BODY = SAMPLE.split(b"?>", 1)[1]
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
DTD = b'<!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def _straddling_the_first_chunk() -> bytes:
    """Many small comments, then the DTD across the 64 KiB boundary of the first read."""
    head = DECLARATION + b"<!--x-->" * 8000
    return head + b" " * (CHUNK - 4 - len(head)) + DTD


@pytest.mark.parametrize(
    "prolog",
    [
        DECLARATION + b"<!--<a-->" + DTD,
        DECLARATION + b"<?note <a?>" + DTD,
        DECLARATION + b"\n<!-- x -->  <!--<edXML>-->\n" + DTD,
        b"\xef\xbb\xbf<!--<a-->" + DTD,
        _straddling_the_first_chunk(),
    ],
    ids=["comment", "processing-instruction", "several-comments", "bom", "across-chunks"],
)
def test_a_dtd_behind_a_comment_or_pi_is_refused(prolog):
    for read in (inspect_package, read_package):
        with pytest.raises(EdxmlError) as info:
            read(prolog + BODY)
        assert info.value.code == "hostile_xml", read.__name__


class _Trickle(io.RawIOBase):
    """A source whose first reads are short, as a pipe or socket may deliver: here they split the
    UTF-8 byte order mark, so the prolog byte scan cannot apply and only the parser's own view of the
    document (checked on its first element) can refuse the DTD."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos, self._reads = data, 0, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self._reads += 1
        size = 1 if self._reads <= 3 else size
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk


def test_a_dtd_is_refused_structurally_even_when_reading_stops_after_the_header():
    data = b"\xef\xbb\xbf" + DTD + BODY
    for read in (inspect_package, read_package):  # inspect_package reads the header only
        with pytest.raises(EdxmlError) as info:
            read(_Trickle(data))
        assert info.value.code == "hostile_xml", read.__name__
    assert inspect_package(_Trickle(b"\xef\xbb\xbf" + BODY)).document_id.endswith("12/CT-UBND")


def test_a_comment_that_mentions_a_doctype_is_not_one():
    """The old byte pattern refused this valid package; a scan that knows comments does not."""
    data = DECLARATION + b"<!-- exported without <!DOCTYPE or <!ENTITY -->\n" + BODY
    assert inspect_package(data).document_id == "000.00.00.H41,2025/03/14,12/CT-UBND"
    with read_package(data) as parsed:
        assert parsed.document.header.subject.startswith("Về tăng cường")


def test_oversize_and_missing_attachment():
    with pytest.raises(EdxmlError) as info:
        inspect_package(io.BytesIO(SAMPLE), max_bytes=1000)
    assert info.value.code == "oversize"
    no_attachment = SAMPLE[: SAMPLE.index(b"  <AttachmentEncoded>")] + b"</edXML>\n"
    with pytest.raises(EdxmlError) as info:
        read_package(no_attachment)
    assert info.value.code == "missing_attachment"


def test_messy_vendor_package_gives_warnings():
    messy = (
        SAMPLE.replace(b"<edXML:PromulgationDate>2025/03/14<", b"<edXML:PromulgationDate>14/03/2025<")
        .replace(b"2025/03/14 09:15:00", b"2025/02/30 09:15:00")
        .replace(b"<edXML:DueDate>2025/03/31</edXML:DueDate>", b"<edXML:DueDate/>")
        .replace(b"<edXML:OrganId>000.00.00.G22<", b"<edXML:OrganId>  000.00.00.G22\n<")
        .replace(b"Bussiness", b"Business")
        .replace(b"<edXML:SteeringType>1</edXML:SteeringType>", b"<edXML:SteeringType>  </edXML:SteeringType>")
        .replace(b"<edXML:PageAmount>4</edXML:PageAmount>", b"<edXML:PageAmount/>")
        .replace("<edXML:Place>Như trên</edXML:Place>".encode(), b"<edXML:Place/>")
    )
    summary = inspect_package(messy)
    assert summary.to_organ_ids == ("000.00.00.G22",) and summary.business_type == 0
    text = "\n".join(summary.warnings)
    assert "dd/MM/yyyy" in text and "2025/02/30" in text and "whitespace" in text
    for element in ("SteeringType", "OtherInfo/PageAmount", "ToPlaces/Place"):
        assert f"empty optional element MessageHeader/{element}" in text
    # The format's own conventions are not problems: empty organisation fields, an empty DueDate
    # ("May be empty", VN-STANDARDS §1.3).
    assert "Email" not in text and "DueDate" not in text
    with read_package(messy) as parsed:  # every problem a warning; the package is still read
        assert set(summary.warnings) <= set(parsed.warnings)
        header = parsed.document.header
        assert parsed.document.traces[0].timestamp is None
        assert header.due_date is None and header.steering_type == 1 and header.other_info.page_amount == 0
        assert header.to_places == ("Các sở, ban, ngành tỉnh", "Lưu: VT, VX")
        assert header.subject == "Về tăng cường công tác phòng, chống lụt bão"


def _signed(pdf_file, seal, tmp_path):
    return signed_package(pdf_file, seal, tmp_path), seal[2]


def _xmlsec_ok(path, root) -> bool:
    return xmlsec_verifies(path, "--trusted-pem", str(root))


def test_signature_verifies_with_us_and_xmlsec1(pdf_file, seal, tmp_path):
    signed, root = _signed(pdf_file, seal, tmp_path)
    check = verify_package(signed, [root.read_bytes()])
    assert check.valid and "000.00.00.H41" in check.signer
    assert _xmlsec_ok(signed, root)
    with read_package(signed) as parsed:
        assert parsed.signature == "xmldsig" and parsed.warnings == ()


def test_changed_byte_and_wrapping_rejected_by_both(pdf_file, seal, tmp_path):
    signed, root = _signed(pdf_file, seal, tmp_path)
    data = signed.read_bytes()
    changed = tmp_path / "changed.edxml"
    changed.write_bytes(data.replace(b">12</edXML:CodeNumber>", b">13</edXML:CodeNumber>"))
    attachment_changed = tmp_path / "att.edxml"
    attachment_changed.write_bytes(data.replace(b"JVBERi0xLjcK", b"JVBERi0xLjgK"))
    # Wrapping: the genuine signed document hidden inside a forged one that carries its Signature.
    start, end = data.index(b"<Signature"), data.index(b"</Signature>") + len(b"</Signature>")
    forged_body = data.replace("Về tăng cường".encode(), "Về bãi bỏ".encode()).split(b"?>", 1)[1]
    wrapped = tmp_path / "wrapped.edxml"
    wrapped.write_bytes(forged_body.replace(b"<edXML:Subject>", b"<edXML:Subject>" + data[start:end], 1))
    for bad, reason in (
        (changed, "digest_mismatch"),
        (attachment_changed, "digest_mismatch"),
        (wrapped, "multiple_signatures"),
    ):
        assert verify_package(bad, [root.read_bytes()]).reason == reason
        assert not _xmlsec_ok(bad, root)


def test_a_key_loaded_once_signs_many_packages_byte_for_byte_as_from_pem(pdf_file, seal, tmp_path):
    key, cert, root = seal
    signed, _ = _signed(pdf_file, seal, tmp_path)
    loaded = load_signing_key(key, cert)
    unsigned = tmp_path / "u.edxml"
    for _ in range(2):  # the same loaded key, reused
        out = io.BytesIO()
        sign_package_with(unsigned, out, loaded)
        assert out.getvalue() == signed.read_bytes()  # PKCS#1 v1.5 is deterministic
    assert verify_package(out.getvalue(), [root.read_bytes()]).valid


def test_a_loaded_key_with_a_foreign_or_missing_certificate_is_refused(seal):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key, cert, _root = seal
    loaded = load_signing_key(key, cert)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(BadSignatureError, match="does not belong"):
        signing_key_of(other, loaded.certs)
    with pytest.raises(BadSignatureError, match="RSA key is required"):
        signing_key_of(ec.generate_private_key(ec.SECP256R1()), loaded.certs)
    with pytest.raises(BadSignatureError, match="no certificate"):
        signing_key_of(loaded.key, [])
    with pytest.raises(BadSignatureError, match="unreadable"):
        load_signing_key(b"not a key", cert)
    assert isinstance(loaded.certs[0], x509.Certificate) and len(loaded.cert_texts) == 2


def test_unverifiable_signature_reported(pdf_file, seal, tmp_path):
    signed, _root = _signed(pdf_file, seal, tmp_path)
    other_root = EXAMPLES / "edoc_new.edxml"  # the VNPT-style dummy block is not XML-DSig
    assert verify_package(other_root, []).reason == "not_xmldsig"
    assert verify_package(signed, []).reason == "untrusted_signer"
