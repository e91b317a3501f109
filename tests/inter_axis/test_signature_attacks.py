"""The XML-DSig verifier under attack.

1. Every malformed signature (an element missing, empty, repeated or garbled, a foreign certificate…)
   made from a valid signed package gives a stable reason, never an exception.
2. Signature wrapping and algorithm downgrade. Each attack is signed for real by xmlsec1 (an
   independent XML-DSig implementation) with the organisation's key, so it is cryptographically
   genuine; ``xmlsec1 --verify`` is asserted on each too. Where xmlsec1 *accepts* the package, it is a
   working wrap: a generic verifier checks that something is signed, not that the document a reader
   sees is what was signed, and only our coverage and shape checks stop it.
3. Signatures made by other tools in the variants XML-DSig allows (inclusive C14N as in the VN
   samples, only the enveloped transform) verify as valid."""

from __future__ import annotations

import base64
import copy
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from inter_axis.build import write_package
from inter_axis.errors import BadSignatureError
from inter_axis.names import NS
from inter_axis.parse import read_package
from inter_axis.xmldsig import (
    C14N,
    ENVELOPED,
    EXC_C14N,
    RSA_SHA256,
    SHA256,
    load_signing_key,
    verify_package,
)
from tests.inter_axis.conftest import example_package, signed_package, xmlsec_verifies

DSIG = "http://www.w3.org/2000/09/xmldsig#"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
HEADER_END = b"</edXML:edXMLHeader>"
GENUINE_SUBJECT = "Về tăng cường công tác phòng, chống lụt bão"
FORGED_SUBJECT = "Về bãi bỏ công tác phòng, chống lụt bão"


@pytest.fixture
def signed(pdf_file, seal, tmp_path) -> tuple[Path, Path]:
    """(package signed by our signer, trust root PEM path)."""
    return signed_package(pdf_file, seal, tmp_path), seal[2]


def _trusted(path: Path, root: Path) -> bool:
    return xmlsec_verifies(path, "--trusted-pem", str(root))


# -- 1. malformed signatures -------------------------------------------------------------------
def _el(signature: etree._Element, path: str) -> etree._Element:
    found = signature.find("/".join(f"{{*}}{step}" for step in path.split("/")))
    assert found is not None, path
    return found


def _remove(path):
    def change(signature):
        element = _el(signature, path)
        element.getparent().remove(element)

    return change


def _duplicate(path):
    def change(signature):
        element = _el(signature, path)
        element.addnext(copy.deepcopy(element))

    return change


def _text(path, text):
    def change(signature):
        _el(signature, path).text = text

    return change


def _attribute(path, name, value):
    def change(signature):
        element = _el(signature, path)
        if value is None:
            del element.attrib[name]
        else:
            element.set(name, value)

    return change


def _add(path, xml):
    def change(signature):
        _el(signature, path).append(etree.fromstring(xml))

    return change


def _swap_key_info_and_value(signature):
    key_info = _el(signature, "KeyInfo")
    _el(signature, "SignatureValue").addprevious(key_info)


def _certificate_of(key) -> str:
    """Base64 DER of a self-signed certificate for ``key`` (subject as the organisation's)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ủy ban nhân dân tỉnh Nghệ An")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _ec_certificate(signature):
    _el(signature, "KeyInfo/X509Data/X509Certificate").text = _certificate_of(ec.generate_private_key(ec.SECP256R1()))


MALFORMED = [
    ("no DigestValue", _remove("SignedInfo/Reference/DigestValue"), "malformed_signature"),
    ("empty DigestValue", _text("SignedInfo/Reference/DigestValue", ""), "malformed_signature"),
    ("two DigestValues", _duplicate("SignedInfo/Reference/DigestValue"), "malformed_signature"),
    ("DigestValue not base64", _text("SignedInfo/Reference/DigestValue", "not base64!"), "malformed_signature"),
    ("no SignedInfo", _remove("SignedInfo"), "malformed_signature"),
    ("two SignedInfo", _duplicate("SignedInfo"), "malformed_signature"),
    ("no CanonicalizationMethod", _remove("SignedInfo/CanonicalizationMethod"), "malformed_signature"),
    ("no SignatureMethod", _remove("SignedInfo/SignatureMethod"), "malformed_signature"),
    ("SignatureMethod without Algorithm", _attribute("SignedInfo/SignatureMethod", "Algorithm", None),
     "malformed_signature"),
    ("no Reference", _remove("SignedInfo/Reference"), "malformed_signature"),
    ("two References", _duplicate("SignedInfo/Reference"), "bad_reference"),
    ("Reference without URI", _attribute("SignedInfo/Reference", "URI", None), "bad_reference"),
    ("no Transforms", _remove("SignedInfo/Reference/Transforms"), "bad_reference"),
    ("empty Transforms", _remove("SignedInfo/Reference/Transforms/Transform"), "bad_reference"),
    ("two Transforms", _duplicate("SignedInfo/Reference/Transforms"), "malformed_signature"),
    ("Transform without Algorithm", _attribute("SignedInfo/Reference/Transforms/Transform", "Algorithm", None),
     "malformed_signature"),
    ("XPath transform", _add("SignedInfo/Reference/Transforms",
                             f'<Transform xmlns="{DSIG}" Algorithm="{XPATH}"><XPath>1</XPath></Transform>'),
     "unsupported_algorithm"),
    ("no DigestMethod", _remove("SignedInfo/Reference/DigestMethod"), "malformed_signature"),
    ("DigestMethod without Algorithm", _attribute("SignedInfo/Reference/DigestMethod", "Algorithm", None),
     "malformed_signature"),
    ("no SignatureValue", _remove("SignatureValue"), "malformed_signature"),
    ("empty SignatureValue", _text("SignatureValue", "  \n "), "malformed_signature"),
    ("two SignatureValues", _duplicate("SignatureValue"), "malformed_signature"),
    ("SignatureValue not base64", _text("SignatureValue", "AAAA====@@"), "malformed_signature"),
    ("KeyInfo before SignatureValue", _swap_key_info_and_value, "malformed_signature"),
    ("two KeyInfo", _duplicate("KeyInfo"), "malformed_signature"),
    ("unknown element in SignedInfo", _add("SignedInfo", f'<Extra xmlns="{DSIG}"/>'), "malformed_signature"),
    ("no KeyInfo", _remove("KeyInfo"), "no_certificate"),
    ("no X509Data", _remove("KeyInfo/X509Data"), "no_certificate"),
    ("certificate not base64", _text("KeyInfo/X509Data/X509Certificate", "MIIF%%%garbage"), "bad_certificate"),
    ("certificate not DER", _text("KeyInfo/X509Data/X509Certificate", base64.b64encode(b"x" * 300).decode()),
     "bad_certificate"),
    ("EC certificate", _ec_certificate, "unsupported_algorithm"),
]


def _mutated(data: bytes, change) -> bytes:
    tree = etree.fromstring(data).getroottree()
    signature = tree.find(f".//{{{DSIG}}}Signature")
    if change is not None:
        change(signature)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def test_the_mutation_harness_alone_keeps_the_signature_valid(signed, tmp_path):
    """Re-serialising without a change still verifies, so each failure below is the change's doing."""
    path, root = signed
    same = tmp_path / "same.edxml"
    same.write_bytes(_mutated(path.read_bytes(), None))
    assert verify_package(same, [root.read_bytes()]).valid
    assert _trusted(same, root)


@pytest.mark.parametrize(("change", "reason"), [pytest.param(c, r, id=i) for i, c, r in MALFORMED])
def test_malformed_signature_gives_a_stable_reason(signed, tmp_path, change, reason):
    path, root = signed
    bad = tmp_path / "bad.edxml"
    bad.write_bytes(_mutated(path.read_bytes(), change))
    check = verify_package(bad, [root.read_bytes()])
    assert (check.valid, check.intact, check.reason) == (False, False, reason)
    assert not _trusted(bad, root)  # xmlsec1 refuses every one of them as well


def test_intact_tells_an_untrusted_signature_from_a_broken_one(signed, tmp_path):
    path, root = signed
    untrusted = verify_package(path, [])
    assert (untrusted.valid, untrusted.intact, untrusted.reason) == (False, True, "untrusted_signer")
    assert "000.00.00.H41" in untrusted.signer
    changed = tmp_path / "changed.edxml"
    changed.write_bytes(path.read_bytes().replace(b">12</edXML:CodeNumber>", b">13</edXML:CodeNumber>"))
    broken = verify_package(changed, [])
    assert (broken.valid, broken.intact, broken.reason) == (False, False, "digest_mismatch")


def test_an_unreadable_trust_root_is_a_clear_error(signed):
    path, _root = signed
    with pytest.raises(BadSignatureError, match="trust root") as info:
        verify_package(path, [b"-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"])
    assert info.value.code == "bad_signature"


def test_a_key_under_2048_bits_cannot_sign(seal):
    key, cert, _root = seal
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    der = base64.b64decode(_certificate_of(weak))
    own_cert = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(BadSignatureError, match="1024 bits"):
        load_signing_key(pem, own_cert)
    assert load_signing_key(key, cert).key.key_size >= 2048


# -- 2. wrapping and downgrade, signed for real by xmlsec1 ---------------------------------------
def _seal_files(seal, directory: Path) -> tuple[Path, list[str]]:
    """(key PEM file for xmlsec1, base64 DER of the signer's certificate and chain for KeyInfo)."""
    key, cert, _root = seal
    key_file = directory / "seal-key.pem"
    key_file.write_bytes(key)
    texts = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
             for c in x509.load_pem_x509_certificates(cert)]
    return key_file, texts


def _reference(uri: str, transforms: list[str], digest: str = SHA256) -> str:
    steps = "".join(f'<Transform Algorithm="{a}"/>' for a in transforms)
    return (f'<Reference URI="{uri}"><Transforms>{steps}</Transforms>'
            f'<DigestMethod Algorithm="{digest}"/><DigestValue/></Reference>')


def _template(references: str, *, c14n: str = EXC_C14N, method: str = RSA_SHA256,
              certs: list[str] | None = None) -> bytes:
    """An XML-DSig template xmlsec1 fills in (DigestValue, SignatureValue)."""
    key_info = ""
    if certs is not None:
        key_info = "<KeyInfo><X509Data>" + "".join(f"<X509Certificate>{c}</X509Certificate>" for c in certs)
        key_info += "</X509Data></KeyInfo>"
    return (f'<Signature xmlns="{DSIG}"><SignedInfo><CanonicalizationMethod Algorithm="{c14n}"/>'
            f'<SignatureMethod Algorithm="{method}"/>{references}</SignedInfo><SignatureValue/>'
            f"{key_info}</Signature>").encode()


def _xmlsec_sign(document: bytes, directory: Path, name: str, *options: str) -> Path:
    template, signed = directory / f"{name}.template.xml", directory / f"{name}.edxml"
    template.write_bytes(document)
    done = subprocess.run(["xmlsec1", "--sign", *options, "--output", str(signed), str(template)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return signed


def _unsigned(pdf_file) -> bytes:
    with open(pdf_file.with_suffix(".edxml"), "wb") as out:
        write_package(example_package(pdf_file), out)
    return pdf_file.with_suffix(".edxml").read_bytes()


def _forge_subject(data: bytes) -> bytes:
    assert GENUINE_SUBJECT.encode() in data
    return data.replace(f">{GENUINE_SUBJECT}<".encode(), f">{FORGED_SUBJECT}<".encode())


def _subject(path: Path) -> str:
    with read_package(path) as parsed:
        return parsed.document.header.subject


def test_reference_to_an_attacker_chosen_element_is_refused(pdf_file, seal, tmp_path):
    """The signature covers only an element with an Id, so the MessageHeader can be rewritten at will."""
    key_file, certs = _seal_files(seal, tmp_path)
    note = f"{NS}:Note"  # xmlsec1 --id-attr takes namespace:name
    document = _unsigned(pdf_file).replace(
        b"<edXML:TraceHeaderList>", b'<edXML:Note Id="note">harmless</edXML:Note><edXML:TraceHeaderList>'
    ).replace(HEADER_END, _template(_reference("#note", [EXC_C14N]), certs=certs) + HEADER_END)
    signed = _xmlsec_sign(document, tmp_path, "note", "--privkey-pem", str(key_file), "--id-attr:Id", note)
    forged = tmp_path / "forged.edxml"
    forged.write_bytes(_forge_subject(signed.read_bytes()))
    root = seal[2]
    assert xmlsec_verifies(forged, "--trusted-pem", str(root), "--id-attr:Id", note)  # a working forgery
    assert _subject(forged) == FORGED_SUBJECT
    check = verify_package(forged, [root.read_bytes()])
    assert (check.valid, check.reason) == (False, "bad_reference")
    assert verify_package(signed, [root.read_bytes()]).reason == "bad_reference"  # even before the forgery


def test_a_second_reference_is_refused(pdf_file, seal, tmp_path):
    key_file, certs = _seal_files(seal, tmp_path)
    note = f"{NS}:Note"
    references = _reference("", [ENVELOPED, EXC_C14N]) + _reference("#note", [EXC_C14N])
    document = _unsigned(pdf_file).replace(
        b"<edXML:TraceHeaderList>", b'<edXML:Note Id="note">extra</edXML:Note><edXML:TraceHeaderList>'
    ).replace(HEADER_END, _template(references, certs=certs) + HEADER_END)
    signed = _xmlsec_sign(document, tmp_path, "two", "--privkey-pem", str(key_file), "--id-attr:Id", note)
    root = seal[2]
    assert xmlsec_verifies(signed, "--trusted-pem", str(root), "--id-attr:Id", note)
    assert verify_package(signed, [root.read_bytes()]).reason == "bad_reference"


def _move_message_header_into_object(data: bytes, forged_header: bytes, original_header: bytes) -> bytes:
    """The forged MessageHeader where the genuine one was, the genuine one inside ds:Object."""
    assert original_header in data
    data = data.replace(original_header, forged_header)
    return data.replace(b"</Signature>", b"<Object>" + original_header + b"</Object></Signature>")


def _message_header(data: bytes) -> bytes:
    start = data.index(b"<edXML:MessageHeader")
    return data[start : data.index(b"</edXML:MessageHeader>") + len(b"</edXML:MessageHeader>")]


def test_signed_content_moved_into_object_with_a_forged_message_header_in_place(signed, tmp_path):
    """Our whole-document signature: the genuine MessageHeader hidden in ds:Object, a forged one read."""
    path, root = signed
    data = path.read_bytes()
    original = _message_header(data)
    wrapped = tmp_path / "wrapped.edxml"
    wrapped.write_bytes(_move_message_header_into_object(data, _forge_subject(original), original))
    assert _subject(wrapped) == FORGED_SUBJECT
    assert not _trusted(wrapped, root)
    check = verify_package(wrapped, [root.read_bytes()])
    assert (check.valid, check.reason) == (False, "malformed_signature")


def test_classic_object_wrapping_accepted_by_xmlsec1_is_refused(pdf_file, seal, tmp_path):
    """A signature over ``#mh`` (the MessageHeader, by Id) still verifies in xmlsec1 once the signed
    MessageHeader is moved into ds:Object and a forged one takes its place."""
    key_file, certs = _seal_files(seal, tmp_path)
    header = f"{NS}:MessageHeader"
    document = _unsigned(pdf_file).replace(b"<edXML:MessageHeader>", b'<edXML:MessageHeader Id="mh">', 1)
    document = document.replace(HEADER_END, _template(_reference("#mh", [EXC_C14N]), certs=certs) + HEADER_END)
    signed = _xmlsec_sign(document, tmp_path, "mh", "--privkey-pem", str(key_file), "--id-attr:Id", header)
    data = signed.read_bytes()
    original = _message_header(data)
    forged_header = _forge_subject(original).replace(b' Id="mh"', b"")
    wrapped = tmp_path / "wrapped.edxml"
    wrapped.write_bytes(_move_message_header_into_object(data, forged_header, original))
    root = seal[2]
    assert xmlsec_verifies(wrapped, "--trusted-pem", str(root), "--id-attr:Id", header)  # a working wrap
    assert _subject(wrapped) == FORGED_SUBJECT
    assert verify_package(wrapped, [root.read_bytes()]).reason == "malformed_signature"


@pytest.mark.parametrize(
    "after",
    [b"<edXML:edXMLBody>", b"<edXML:MessageHeader>", b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'],
    ids=["body", "message-header", "root"],
)
def test_signature_relocated_into_another_parent_is_refused(signed, tmp_path, after):
    """The enveloped transform drops the Signature wherever it is, so the moved signature still
    verifies in xmlsec1; only the header's Signature counts for us."""
    path, root = signed
    data = path.read_bytes()
    start, end = data.index(b"<Signature"), data.index(b"</Signature>") + len(b"</Signature>")
    signature, rest = data[start:end], data[:start] + data[end:]
    assert rest.count(after) == 1
    moved = tmp_path / "moved.edxml"
    moved.write_bytes(rest.replace(after, after + signature))
    assert _trusted(moved, root)
    check = verify_package(moved, [root.read_bytes()])
    assert (check.valid, check.reason) == (False, "misplaced_signature")


def test_downgrade_to_rsa_sha1_or_a_sha1_digest_is_refused(pdf_file, seal, tmp_path):
    key_file, certs = _seal_files(seal, tmp_path)
    root = seal[2]
    for name, method, digest in (("rsa-sha1", RSA_SHA1, SHA256), ("sha1-digest", RSA_SHA256, SHA1)):
        template = _template(_reference("", [ENVELOPED, EXC_C14N], digest), method=method, certs=certs)
        signed = _xmlsec_sign(_unsigned(pdf_file).replace(HEADER_END, template + HEADER_END), tmp_path, name,
                              "--privkey-pem", str(key_file))
        assert _trusted(signed, root), name  # a genuine signature, in a weaker algorithm
        check = verify_package(signed, [root.read_bytes()])
        assert (check.valid, check.reason) == (False, "unsupported_algorithm"), name


def test_downgrade_to_hmac_with_a_shared_key_is_refused(pdf_file, seal, tmp_path):
    """Anyone who knows an HMAC key can "sign"; a verifier that lets the document pick the algorithm
    would accept it."""
    secret = tmp_path / "hmac.key"
    secret.write_bytes(b"a key the attacker chose")
    template = _template(_reference("", [ENVELOPED, EXC_C14N]), method=HMAC_SHA256)
    signed = _xmlsec_sign(_forge_subject(_unsigned(pdf_file)).replace(HEADER_END, template + HEADER_END),
                          tmp_path, "hmac", "--hmackey", str(secret))
    assert xmlsec_verifies(signed, "--hmackey", str(secret))
    assert not _trusted(signed, seal[2])
    assert verify_package(signed, [seal[2].read_bytes()]).reason == "unsupported_algorithm"


def test_a_1024_bit_rsa_signature_is_refused(pdf_file, tmp_path):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    key_file = tmp_path / "weak.pem"
    key_file.write_bytes(weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    cert_text = _certificate_of(weak)
    cert_pem = x509.load_der_x509_certificate(base64.b64decode(cert_text)).public_bytes(serialization.Encoding.PEM)
    (tmp_path / "weak-cert.pem").write_bytes(cert_pem)
    template = _template(_reference("", [ENVELOPED, EXC_C14N]), certs=[cert_text])
    signed = _xmlsec_sign(_unsigned(pdf_file).replace(HEADER_END, template + HEADER_END), tmp_path, "weak",
                          "--privkey-pem", str(key_file))
    assert _trusted(signed, tmp_path / "weak-cert.pem")
    check = verify_package(signed, [cert_pem])
    assert (check.valid, check.reason) == (False, "unsupported_algorithm")


# -- 3. other tools' signatures ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("c14n", "transforms"),
    [
        (C14N, [ENVELOPED, EXC_C14N]),  # as in the VN samples (VN-STANDARDS §1.7), with sha256
        (C14N, [ENVELOPED]),  # the digest input then defaults to inclusive C14N
        (EXC_C14N, [ENVELOPED, C14N]),
        (EXC_C14N, [ENVELOPED]),
    ],
    ids=["c14n+exc", "c14n+enveloped-only", "exc+c14n", "exc+enveloped-only"],
)
def test_signatures_from_xmlsec1_in_every_accepted_variant_verify(pdf_file, seal, tmp_path, c14n, transforms):
    key_file, certs = _seal_files(seal, tmp_path)
    template = _template(_reference("", transforms), c14n=c14n, certs=certs)
    signed = _xmlsec_sign(_unsigned(pdf_file).replace(HEADER_END, template + HEADER_END), tmp_path, "variant",
                          "--privkey-pem", str(key_file))
    root = seal[2]
    assert _trusted(signed, root)
    check = verify_package(signed, [root.read_bytes()])
    assert (check.valid, check.reason, check.intact) == (True, "valid", True)
    tampered = tmp_path / "tampered.edxml"
    tampered.write_bytes(_forge_subject(signed.read_bytes()))
    assert verify_package(tampered, [root.read_bytes()]).reason == "digest_mismatch"


def test_an_end_entity_certificate_cannot_act_as_a_ca(pdf_file, tmp_path):
    """Anyone holding a certificate under the national root (a citizen's signing certificate, say)
    could issue themselves an 'organisation seal' with it. The chain check demands that every
    certificate in between is a CA (basicConstraints cA, keyCertSign), so that seal is untrusted."""
    from signing.devpki import DevPki
    from tests.inter_axis.conftest import signed_package

    pki = DevPki.init(tmp_path / "pki", base_url="http://127.0.0.1:1")
    citizen = pki.issue_personal("Nguyễn Văn Dân", "001090000009", "Không thuộc cơ quan")
    forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    forged = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.USER_ID, "000.00.00.H41"),
                                       x509.NameAttribute(NameOID.COMMON_NAME, "Ủy ban nhân dân tỉnh Nghệ An")]))
              .issuer_name(citizen.certificate.subject).public_key(forged_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
              .not_valid_after(now + timedelta(days=30))
              .sign(citizen.private_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = forged_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    chain = forged.public_bytes(pem) + citizen.certificate.public_bytes(pem) + pki.issuing.cert.public_bytes(pem)
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root.cert.public_bytes(pem))
    path = signed_package(pdf_file, (key_pem, chain, root), tmp_path)
    check = verify_package(path, [root.read_bytes()])
    assert (check.valid, check.intact, check.reason) == (False, True, "untrusted_signer")
