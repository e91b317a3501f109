"""Enveloped XML-DSig over a whole edXML package: RSA-SHA256, exclusive c14n, ``Reference URI=""``.

Placement and namespace: the signature goes where the VNPT samples put theirs (last child of
``edXMLHeader``, unprefixed ``<Signature>``) but in the XML-DSig namespace, because a ``Signature``
in the edXML namespace (as the VNPT library writes it, VN-STANDARDS §1.2/§1.7) is invisible to every
standard verifier. Such a block is reported as ``not_xmldsig``, never as valid.

Coverage: ``URI=""`` with the enveloped transform signs the whole document, attachments included, as
§1.7 describes. It is computed in one streaming pass: the small tree (attachment texts replaced by
markers, see :mod:`inter_axis.stream`) is canonicalised and the attachment texts are hashed in place of
the markers, so signing or verifying a 200 MB package holds only the header in memory (the attachment
texts are spooled to temporary files, ~1.35x their size on disk).

Wrapping defence: only the one ``Signature`` child of ``edXMLHeader`` counts, a second XML-DSig
``Signature`` anywhere is refused, and only a same-document ``URI=""`` reference is accepted, so there
is no id to point elsewhere."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from inter_axis.errors import BadSignatureError
from inter_axis.header_reader import locate
from inter_axis.lenient import LenientReader
from inter_axis.names import DSIG_NS, namespace_of
from inter_axis.serialize import c14n_escape, serialize_tree, split_on_markers, write_with_blobs
from inter_axis.stream import DEFAULT_MAX_BYTES, BlobSink, StreamedTree, read_tree

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
_MAX_CHAIN = 6


@dataclass(frozen=True)
class SignatureCheck:
    """Outcome of :func:`verify_package`. ``valid`` is True only for a correct signature by a trusted key."""

    valid: bool
    reason: str
    """``valid``, ``no_signature``, ``not_xmldsig``, ``multiple_signatures``, ``unsupported_algorithm``,
    ``bad_reference``, ``digest_mismatch``, ``signature_mismatch``, ``no_certificate``,
    ``untrusted_signer`` or ``certificate_expired``."""
    signer: str | None = None
    """Subject of the signing certificate (RFC 4514), when one was found."""


class _RawSpool(BlobSink):
    """Keeps one attachment's text (as the parser would see it) in a temporary file."""

    def __init__(self, spool_dir: str | None) -> None:
        handle, name = tempfile.mkstemp(prefix="edxml-raw-", dir=spool_dir)
        self.path = Path(name)
        self._file = os.fdopen(handle, "wb")

    def write(self, text: bytes) -> None:
        self._file.write(text)

    def close(self) -> None:
        self._file.close()

    def chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                yield c14n_escape(chunk)


def _d(local: str) -> str:
    return f"{{{DSIG_NS}}}{local}"


def _read_spooled(source, max_bytes: int, spool_dir) -> tuple[StreamedTree, list[_RawSpool]]:
    spools: list[_RawSpool] = []

    def new_sink(_index: int) -> _RawSpool:
        spool = _RawSpool(os.fspath(spool_dir) if spool_dir is not None else None)
        spools.append(spool)
        return spool

    try:
        return read_tree(source, max_bytes=max_bytes, new_sink=new_sink), spools
    except BaseException:
        _remove(spools)
        raise


def _remove(spools: Iterable[_RawSpool]) -> None:
    for spool in spools:
        spool.path.unlink(missing_ok=True)


def _blob_map(tree: StreamedTree, spools: list[_RawSpool]) -> dict[str, callable]:
    return {marker: spools[index].chunks for marker, index in tree.markers.items()}


def _document_digest(tree: StreamedTree, spools: list[_RawSpool], signature: etree._Element, exclusive: bool) -> bytes:
    """SHA-256 of the canonical document without ``signature`` (the enveloped transform)."""
    parent = signature.getparent()
    position = parent.index(signature)
    tail, signature.tail = signature.tail, None
    previous = signature.getprevious()
    # The tail text after </Signature> is not part of the Signature node: keep it in the document.
    if previous is not None:
        saved_text, previous.tail = previous.tail, (previous.tail or "") + (tail or "")
    else:
        saved_text, parent.text = parent.text, (parent.text or "") + (tail or "")
    parent.remove(signature)
    try:
        canonical = etree.tostring(tree.root.getroottree(), method="c14n", exclusive=exclusive, with_comments=False)
    finally:
        parent.insert(position, signature)
        signature.tail = tail
        if previous is not None:
            previous.tail = saved_text
        else:
            parent.text = saved_text
    digest = hashlib.sha256()
    blobs = _blob_map(tree, spools)
    for text, marker in split_on_markers(canonical, blobs):
        digest.update(text)
        if marker is not None:
            for chunk in blobs[marker]():
                digest.update(chunk)
    return digest.digest()


def _signature_template(header: etree._Element, signing_key: SigningKey) -> etree._Element:
    signature = etree.SubElement(header, _d("Signature"), nsmap={None: DSIG_NS})
    signed_info = etree.SubElement(signature, _d("SignedInfo"))
    etree.SubElement(signed_info, _d("CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(signed_info, _d("SignatureMethod"), Algorithm=RSA_SHA256)
    reference = etree.SubElement(signed_info, _d("Reference"), URI="")
    transforms = etree.SubElement(reference, _d("Transforms"))
    etree.SubElement(transforms, _d("Transform"), Algorithm=ENVELOPED)
    etree.SubElement(transforms, _d("Transform"), Algorithm=EXC_C14N)
    etree.SubElement(reference, _d("DigestMethod"), Algorithm=SHA256)
    etree.SubElement(reference, _d("DigestValue"))
    etree.SubElement(signature, _d("SignatureValue"))
    x509_data = etree.SubElement(etree.SubElement(signature, _d("KeyInfo")), _d("X509Data"))
    etree.SubElement(x509_data, _d("X509SubjectName")).text = signing_key.subject
    for text in signing_key.cert_texts:  # signer first, then its chain, so a verifier needs only the trust root
        etree.SubElement(x509_data, _d("X509Certificate")).text = text
    return signature


def _indent_signature(header: etree._Element, signature: etree._Element) -> None:
    """Match the header's layout (cosmetic; done before digesting, so it is covered)."""
    depth = len(list(header.iterancestors())) + 1
    previous = signature.getprevious()
    if previous is not None and previous.tail and previous.tail.strip() == "":
        etree.indent(signature, "  ", level=depth)
        signature.tail = previous.tail[:-2] if previous.tail.endswith("  ") else previous.tail
        previous.tail = "\n" + "  " * depth


@dataclass(frozen=True)
class SigningKey:
    """An organisation's RSA key and certificate chain, parsed and checked once.

    Parsing a PEM private key costs ~40 ms (cryptography checks the RSA key on load) against
    ~1 ms for the signature itself: a sender signing many packages loads it once with
    :func:`load_signing_key` and passes it to :func:`sign_package_with`."""

    key: rsa.RSAPrivateKey
    """The private key, or an object signing like one (see :func:`signing_key_of`)."""
    certs: tuple[x509.Certificate, ...]
    """The signer's certificate first, then optionally its chain (all go into KeyInfo)."""
    subject: str
    """RFC 4514 subject of the signer's certificate (``X509SubjectName``)."""
    cert_texts: tuple[str, ...]
    """Base64 DER of ``certs`` (``X509Certificate`` texts)."""


def load_signing_key(key_pem: bytes, cert_pem: bytes) -> SigningKey:
    """Parse and check an RSA key PEM and its certificate PEM (signer first, then its chain);
    :class:`BadSignatureError` for an unusable key or certificate."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise BadSignatureError(f"unreadable key or certificate PEM: {exc}") from exc
    return signing_key_of(key, certs)


def signing_key_of(key, certs: Iterable[x509.Certificate]) -> SigningKey:
    """A :class:`SigningKey` from already loaded objects (checked as :func:`load_signing_key` does).

    ``key`` is a cryptography RSA private key, or any object shaped like one for signing
    (``public_key()`` and ``sign(data, PKCS1v15(), SHA256())``), such as a key kept on a token."""
    certs = tuple(certs)
    public_key = getattr(key, "public_key", None)
    if not callable(public_key) or not callable(getattr(key, "sign", None)) or \
            not isinstance(public_key(), rsa.RSAPublicKey):
        raise BadSignatureError("the edXML signature uses RSA-SHA256: an RSA key is required")
    if not certs:
        raise BadSignatureError("no certificate for the key")
    if certs[0].public_key().public_numbers() != key.public_key().public_numbers():
        raise BadSignatureError("the certificate does not belong to the key")
    texts = tuple(base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in certs)
    return SigningKey(key=key, certs=certs, subject=certs[0].subject.rfc4514_string(), cert_texts=texts)


def sign_package(
    source: str | os.PathLike | BinaryIO | bytes,
    out: BinaryIO,
    key_pem: bytes,
    cert_pem: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    spool_dir: str | os.PathLike | None = None,
) -> int:
    """Sign the package read from ``source`` with the organisation's RSA key and write it to ``out``.

    ``cert_pem`` holds the signer's certificate first, then optionally its chain (all go into KeyInfo).
    An existing ``Signature`` in ``edXMLHeader`` is replaced. Returns the bytes written; raises
    :class:`BadSignatureError` for an unusable key or certificate and the reading errors of
    :func:`inter_axis.stream.read_tree` for bad input. To sign many packages, load the key once
    (:func:`load_signing_key`) and call :func:`sign_package_with`."""
    return sign_package_with(source, out, load_signing_key(key_pem, cert_pem), max_bytes=max_bytes,
                             spool_dir=spool_dir)


def sign_package_with(
    source: str | os.PathLike | BinaryIO | bytes,
    out: BinaryIO,
    signing_key: SigningKey,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    spool_dir: str | os.PathLike | None = None,
) -> int:
    """:func:`sign_package` with a key loaded beforehand (same bytes, same errors for bad input)."""
    tree, spools = _read_spooled(source, max_bytes, spool_dir)
    try:
        envelope = locate(tree.root, LenientReader())
        if envelope.signature is not None:
            envelope.header.remove(envelope.signature)
        signature = _signature_template(envelope.header, signing_key)
        _indent_signature(envelope.header, signature)
        digest = _document_digest(tree, spools, signature, exclusive=True)
        signature.find(f".//{_d('DigestValue')}").text = base64.b64encode(digest).decode()
        signed_info = signature.find(_d("SignedInfo"))
        canonical = etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False)
        value = signing_key.key.sign(canonical, padding.PKCS1v15(), hashes.SHA256())
        signature.find(_d("SignatureValue")).text = base64.b64encode(value).decode()
        return write_with_blobs(serialize_tree(tree.root), _blob_map(tree, spools), out)
    finally:
        _remove(spools)


def _load_trust(trust_roots: Iterable[x509.Certificate | bytes]) -> list[x509.Certificate]:
    roots = []
    for root in trust_roots:
        if isinstance(root, x509.Certificate):
            roots.append(root)
        else:
            roots.extend(x509.load_pem_x509_certificates(root))
    return roots


def _chain_trusted(cert: x509.Certificate, extra: list[x509.Certificate], roots: list[x509.Certificate]) -> bool:
    current = cert
    for _ in range(_MAX_CHAIN):
        if current in roots:
            return True
        for issuer in roots + extra:
            if issuer.subject != current.issuer or issuer == current:
                continue
            try:
                current.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            if issuer in roots:
                return True
            current = issuer
            break
        else:
            return False
    return False


def _check_signed_info(signed_info: etree._Element | None) -> tuple[str | None, bool]:
    """(problem reason or None, exclusive c14n?) for the algorithms and the single ``URI=""`` reference."""
    if signed_info is None:
        return "bad_reference", True
    c14n = signed_info.find(_d("CanonicalizationMethod"))
    method = signed_info.find(_d("SignatureMethod"))
    if c14n is None or c14n.get("Algorithm") not in (EXC_C14N, C14N) or method is None:
        return "unsupported_algorithm", True
    if method.get("Algorithm") != RSA_SHA256:
        return "unsupported_algorithm", True
    references = signed_info.findall(_d("Reference"))
    if len(references) != 1 or references[0].get("URI") != "":
        return "bad_reference", True
    reference = references[0]
    transforms = [t.get("Algorithm") for t in reference.iterfind(f"{_d('Transforms')}/{_d('Transform')}")]
    if not transforms or transforms[0] != ENVELOPED or any(t not in (EXC_C14N, C14N) for t in transforms[1:]):
        return "bad_reference", True
    digest_method = reference.find(_d("DigestMethod"))
    if digest_method is None or digest_method.get("Algorithm") != SHA256:
        return "unsupported_algorithm", True
    return None, transforms[-1] != C14N


def verify_package(
    source: str | os.PathLike | BinaryIO | bytes,
    trust_roots: Iterable[x509.Certificate | bytes],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    spool_dir: str | os.PathLike | None = None,
    at: datetime | None = None,
) -> SignatureCheck:
    """Check the package's enveloped signature against ``trust_roots`` (certificates or PEM bytes).

    A bad, absent or unverifiable signature is a :class:`SignatureCheck` with ``valid=False``; reading
    errors (malformed, hostile, oversize input) raise :class:`~inter_axis.errors.EdxmlError`."""
    roots = _load_trust(trust_roots)
    tree, spools = _read_spooled(source, max_bytes, spool_dir)
    try:
        return _verify(tree, spools, roots, at or datetime.now(UTC))
    finally:
        _remove(spools)


def _verify(tree: StreamedTree, spools, roots, at: datetime) -> SignatureCheck:
    envelope = locate(tree.root, LenientReader())
    signature = envelope.signature
    if signature is None:
        return SignatureCheck(False, "no_signature")
    if namespace_of(signature.tag) != DSIG_NS:
        return SignatureCheck(False, "not_xmldsig")
    if sum(1 for _ in tree.root.iter(_d("Signature"))) != 1:
        return SignatureCheck(False, "multiple_signatures")
    signed_info = signature.find(_d("SignedInfo"))
    problem, exclusive = _check_signed_info(signed_info)
    if problem:
        return SignatureCheck(False, problem)
    cert_path = f"{_d('KeyInfo')}/{_d('X509Data')}/{_d('X509Certificate')}"
    cert_texts = [el.text or "" for el in signature.iterfind(cert_path)]
    try:
        certs = [x509.load_der_x509_certificate(base64.b64decode("".join(t.split()))) for t in cert_texts]
    except ValueError:
        certs = []
    if not certs:
        return SignatureCheck(False, "no_certificate")
    signer_cert = certs[0]
    signer = signer_cert.subject.rfc4514_string()
    digest = _document_digest(tree, spools, signature, exclusive)
    claimed = signed_info.find(f"{_d('Reference')}/{_d('DigestValue')}")
    try:
        claimed_digest = base64.b64decode("".join((claimed.text or "").split()), validate=True)
        value = base64.b64decode("".join((signature.findtext(_d("SignatureValue")) or "").split()), validate=True)
    except ValueError:
        return SignatureCheck(False, "bad_reference", signer)
    if claimed_digest != digest:
        return SignatureCheck(False, "digest_mismatch", signer)
    canonical = etree.tostring(signed_info, method="c14n", exclusive=exclusive, with_comments=False)
    public_key = signer_cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return SignatureCheck(False, "unsupported_algorithm", signer)
    try:
        public_key.verify(value, canonical, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return SignatureCheck(False, "signature_mismatch", signer)
    if not _chain_trusted(signer_cert, certs[1:], roots):
        return SignatureCheck(False, "untrusted_signer", signer)
    if not signer_cert.not_valid_before_utc <= at <= signer_cert.not_valid_after_utc:
        return SignatureCheck(False, "certificate_expired", signer)
    return SignatureCheck(True, "valid", signer)


def require_valid(check: SignatureCheck) -> SignatureCheck:
    """Raise :class:`BadSignatureError` unless ``check`` is valid (for callers that must refuse)."""
    if not check.valid:
        raise BadSignatureError(f"the package signature is not valid: {check.reason}")
    return check
