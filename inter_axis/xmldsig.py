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

Wrapping defence: only the one ``Signature`` child of ``edXMLHeader`` counts (one elsewhere is
``misplaced_signature``, a second one ``multiple_signatures``), the Signature must have exactly the
shape we write (no ``ds:Object`` to hide a signed copy in), and only a single same-document ``URI=""``
reference is accepted, so there is no id to point elsewhere. A generic verifier such as xmlsec1 accepts
several of these wrapped packages: it checks that *something* is signed, not that the document read
is what was signed.

Verification reads SignedInfo's own CanonicalizationMethod and the reference's last transform (inclusive
C14N when only the enveloped transform is given, XML-DSig §4.3.3.2), so signatures from other XML-DSig
tools verify too, such as the C14N variant of the VN samples (VN-STANDARDS §1.7)."""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from inter_axis.errors import BadSignatureError, MalformedXmlError, MissingFieldError
from inter_axis.header_reader import locate
from inter_axis.lenient import LenientReader
from inter_axis.names import DSIG_NS, local_name, namespace_of
from inter_axis.serialize import c14n_escape, serialize_tree, split_on_markers, write_with_blobs
from inter_axis.stream import DEFAULT_MAX_BYTES, BlobSink, StreamedTree, read_tree

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
_MAX_CHAIN = 6
_MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class SignatureCheck:
    """Outcome of :func:`verify_package`. ``valid`` is True only for a correct signature by a trusted key."""

    valid: bool
    reason: str
    """``valid`` or why not (stable codes, checked in this order):

    - ``no_signature``: no Signature at all; ``misplaced_signature``: an XML-DSig Signature exists but
      not as the child of ``edXMLHeader``; ``not_xmldsig``: a VNPT-style block in the edXML namespace;
      ``multiple_signatures``: more than one Signature;
    - ``malformed_signature``: a required element (SignedInfo, CanonicalizationMethod, SignatureMethod,
      Reference, DigestMethod, DigestValue, SignatureValue) is missing, repeated, empty or not base64,
      an Algorithm attribute is missing, or the Signature holds anything else (``ds:Object``…);
    - ``unsupported_algorithm``: anything but RSA-SHA256, SHA-256, (exclusive) C14N 1.0 and the
      enveloped transform, or a signing key that is not RSA of at least 2048 bits;
    - ``bad_reference``: not exactly one ``Reference URI=""`` whose transforms are enveloped-signature
      then at most one c14n;
    - ``no_certificate`` / ``bad_certificate``: KeyInfo carries no X509Certificate / an unreadable one;
    - ``digest_mismatch``, ``signature_mismatch``: the content or SignedInfo was changed;
    - ``untrusted_signer``, ``certificate_expired``: intact, but the certificate does not chain to a
      trust root / was not valid at the time of the check."""
    signer: str | None = None
    """Subject of the signing certificate (RFC 4514), when one was found."""
    intact: bool = False
    """Digest and signature value verify against the certificate embedded in KeyInfo (whether or not
    that certificate is trusted): true for ``valid``, ``untrusted_signer`` and ``certificate_expired``."""


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

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class _MemorySpool(BlobSink):
    """Keeps one attachment's text in memory: for a package handed over as bytes, which the caller
    already holds whole (its attachment texts are a part of it), so no temporary file is needed."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._text: bytes | None = None

    def write(self, text: bytes) -> None:
        self._parts.append(text)

    def _joined(self) -> bytes:
        if self._text is None:
            self._text, self._parts = b"".join(self._parts), []
        return self._text

    def close(self) -> None:
        self._joined()

    def chunks(self) -> Iterator[bytes]:
        yield c14n_escape(self._joined())

    def discard(self) -> None:
        self._parts, self._text = [], None


def _d(local: str) -> str:
    return f"{{{DSIG_NS}}}{local}"


def _read_spooled(source, max_bytes: int, spool_dir, *, in_memory: bool = False) -> tuple[StreamedTree, list]:
    """The small tree of ``source`` and its attachment texts: spooled to temporary files in
    ``spool_dir``, or held in memory when ``in_memory``."""
    spools: list[_RawSpool | _MemorySpool] = []

    def new_sink(_index: int) -> _RawSpool | _MemorySpool:
        spool = _MemorySpool() if in_memory else _RawSpool(os.fspath(spool_dir) if spool_dir is not None else None)
        spools.append(spool)
        return spool

    try:
        return read_tree(source, max_bytes=max_bytes, new_sink=new_sink), spools
    except BaseException:
        _remove(spools)
        raise


def _remove(spools: Iterable[_RawSpool | _MemorySpool]) -> None:
    for spool in spools:
        spool.discard()


def _blob_map(tree: StreamedTree, spools: list) -> dict[str, callable]:
    return {marker: spools[index].chunks for marker, index in tree.markers.items()}


def _document_digest(tree: StreamedTree, spools: list, signature: etree._Element, exclusive: bool) -> bytes:
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
    if public_key().key_size < _MIN_RSA_BITS:  # verify_package refuses such signatures
        raise BadSignatureError(f"the RSA key has {public_key().key_size} bits; at least {_MIN_RSA_BITS} are required")
    if not certs:
        raise BadSignatureError("no certificate for the key")
    if certs[0].public_key().public_numbers() != key.public_key().public_numbers():
        raise BadSignatureError("the certificate does not belong to the key")
    texts = tuple(base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in certs)
    return SigningKey(key=key, certs=certs, subject=certs[0].subject.rfc4514_string(), cert_texts=texts)


def _header_to_sign(root: etree._Element) -> tuple[etree._Element, etree._Element | None]:
    """The ``edXMLHeader`` and its ``Signature`` (if any), as :func:`~inter_axis.header_reader.locate`
    finds them, with the same errors for a package without them, but only the lookups signing needs
    (``locate`` also walks the message block, the trace list and the manifest)."""
    reader = LenientReader()
    envelope = reader.child(root, "edXMLEnvelope")
    if envelope is None:
        raise MalformedXmlError("no edXMLEnvelope under the edXML root")
    header = reader.child(envelope, "edXMLHeader")
    if header is None:
        raise MalformedXmlError("no edXMLHeader in the envelope")
    if reader.child(header, "Status") is None and reader.child(header, "MessageHeader") is None:
        raise MissingFieldError("the header has neither MessageHeader nor Status")
    return header, reader.child(header, "Signature")


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
    """:func:`sign_package` with a key loaded beforehand (same bytes, same errors for bad input).

    A package given as ``bytes`` is signed in memory (its attachment texts are held as bytes too, no
    temporary file is written: the caller holds the whole package already); a path or a stream is
    read in chunks and its attachment texts are spooled to ``spool_dir``, so memory stays bounded
    whatever the size. Both give the same bytes."""
    in_memory = isinstance(source, (bytes, bytearray, memoryview))
    tree, spools = _read_spooled(source, max_bytes, spool_dir, in_memory=in_memory)
    try:
        header, existing = _header_to_sign(tree.root)
        if existing is not None:
            header.remove(existing)
        signature = _signature_template(header, signing_key)
        _indent_signature(header, signature)
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
            continue
        try:
            roots.extend(x509.load_pem_x509_certificates(root))
        except ValueError as exc:
            # A bad trust root is the caller's configuration, not the package's fault: say so plainly
            # instead of letting cryptography's ValueError escape from a verification call.
            raise BadSignatureError(f"unreadable trust root PEM: {exc}") from exc
    return roots


def _is_ca(cert: x509.Certificate) -> bool:
    """basicConstraints cA, and keyCertSign where a keyUsage is present (RFC 5280 4.2.1.3, 4.2.1.9)."""
    try:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
    except x509.ExtensionNotFound:
        return False
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    except x509.ExtensionNotFound:
        return True


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
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            if issuer in roots:
                return True
            if not _is_ca(issuer):
                continue  # an end-entity certificate (a citizen's, say) cannot vouch for another
            current = issuer
            break
        else:
            return False
    return False


class _Refused(Exception):
    """Internal: the signature is refused for ``reason`` (turned into a :class:`SignatureCheck`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Parts:
    """The checked pieces of a Signature whose shape is exactly the one we accept."""

    signed_info: etree._Element
    signed_info_exclusive: bool
    """CanonicalizationMethod of SignedInfo is exclusive c14n (else inclusive C14N 1.0)."""
    document_exclusive: bool
    """The reference's last transform is exclusive c14n (else inclusive C14N 1.0, also the default
    when the enveloped transform is the only one: XML-DSig §4.3.3.2 turns a node-set into octets
    with inclusive C14N)."""
    claimed_digest: bytes
    signature_value: bytes
    cert_texts: list[str]


def _element_children(element: etree._Element) -> list[etree._Element]:
    # Comments and processing instructions are dropped by c14n without comments: not part of the shape.
    return [child for child in element if isinstance(child.tag, str)]


def _dsig_names(elements: list[etree._Element]) -> list[str]:
    """Local names of XML-DSig elements; any other element keeps its Clark name, so it never matches."""
    return [local_name(e.tag) if namespace_of(e.tag) == DSIG_NS else e.tag for e in elements]


def _algorithm(element: etree._Element) -> str:
    algorithm = element.get("Algorithm")
    if not algorithm:
        raise _Refused("malformed_signature")
    return algorithm


def _base64(element: etree._Element) -> bytes:
    """Strict base64 of ``element``'s text; an empty or garbled value is ``malformed_signature``."""
    if len(_element_children(element)):
        raise _Refused("malformed_signature")
    text = "".join((element.text or "").split())
    try:
        value = base64.b64decode(text, validate=True)
    except ValueError:
        raise _Refused("malformed_signature") from None
    if not value:
        raise _Refused("malformed_signature")
    return value


def _shape(names: list[str], required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """``names`` must be exactly ``required`` followed by at most the ``optional`` ones, in order."""
    if names[: len(required)] != list(required) or names[len(required) :] not in (
        list(optional[:n]) for n in range(len(optional) + 1)
    ):
        raise _Refused("malformed_signature")


def _signature_parts(signature: etree._Element) -> _Parts:
    """Check the Signature element against the one shape we sign; raise :class:`_Refused` otherwise.

    Anything beyond ``SignedInfo, SignatureValue, KeyInfo`` is refused, ``ds:Object`` included: the
    enveloped ``URI=""`` reference drops the whole Signature, so an Object's content is never signed,
    and it is where signature-wrapping attacks hide the genuinely signed copy of a document."""
    children = _element_children(signature)
    _shape(_dsig_names(children), ("SignedInfo", "SignatureValue"), ("KeyInfo",))
    signed_info = children[0]
    info_children = _element_children(signed_info)
    info_names = _dsig_names(info_children)
    if info_names[:2] != ["CanonicalizationMethod", "SignatureMethod"] or any(
        name != "Reference" for name in info_names[2:]
    ):
        raise _Refused("malformed_signature")
    c14n, method, references = info_children[0], info_children[1], info_children[2:]
    c14n_algorithm, method_algorithm = _algorithm(c14n), _algorithm(method)
    # Children of these (InclusiveNamespaces PrefixList, HMACOutputLength) change what is computed;
    # we apply none of them, so refusing is the only honest answer.
    if c14n_algorithm not in (EXC_C14N, C14N) or len(_element_children(c14n)):
        raise _Refused("unsupported_algorithm")
    if method_algorithm != RSA_SHA256 or len(_element_children(method)):
        raise _Refused("unsupported_algorithm")
    if not references:
        raise _Refused("malformed_signature")
    if len(references) != 1:
        raise _Refused("bad_reference")  # a second reference can only point at something else
    reference = references[0]
    if reference.get("URI") != "":
        raise _Refused("bad_reference")  # only the whole document; an id could point at any element
    ref_children = _element_children(reference)
    ref_names = _dsig_names(ref_children)
    if "Transforms" not in ref_names:
        # Without the enveloped transform the digest would have to cover the Signature itself.
        raise _Refused("bad_reference")
    _shape(ref_names, ("Transforms", "DigestMethod", "DigestValue"))
    transforms, digest_method, digest_value = ref_children
    algorithms = []
    for transform in _element_children(transforms):
        if transform.tag != _d("Transform"):
            raise _Refused("malformed_signature")
        algorithm = _algorithm(transform)
        if algorithm not in (ENVELOPED, EXC_C14N, C14N) or len(_element_children(transform)):
            raise _Refused("unsupported_algorithm")  # XPath, XSLT, base64, c14n with comments…
        algorithms.append(algorithm)
    if not algorithms or algorithms[0] != ENVELOPED or len(algorithms) > 2 or ENVELOPED in algorithms[1:]:
        raise _Refused("bad_reference")
    if _algorithm(digest_method) != SHA256:
        raise _Refused("unsupported_algorithm")
    claimed_digest = _base64(digest_value)
    signature_value = _base64(children[1])
    key_info = children[2] if len(children) > 2 else None
    cert_path = f"{_d('X509Data')}/{_d('X509Certificate')}"
    cert_texts = [el.text or "" for el in key_info.iterfind(cert_path)] if key_info is not None else []
    return _Parts(
        signed_info=signed_info,
        signed_info_exclusive=c14n_algorithm == EXC_C14N,
        document_exclusive=algorithms[-1] == EXC_C14N,
        claimed_digest=claimed_digest,
        signature_value=signature_value,
        cert_texts=cert_texts,
    )


_XML_ATTR = "{http://www.w3.org/XML/1998/namespace}"


def _canonical_signed_info(signed_info: etree._Element, exclusive: bool) -> bytes:
    """SignedInfo canonicalised as its CanonicalizationMethod says.

    Exclusive c14n of the element works in lxml directly. Inclusive C14N 1.0 of a subtree does not:
    lxml renders it in a fake document and writes spurious ``xmlns=""`` on descendants, so the
    signature of any inclusive-C14N signer would fail. We therefore build the document subset as
    C14N 1.0 defines it (§2.4): an apex carrying every namespace in scope and the inherited ``xml:*``
    attributes, then the children, and canonicalise that as a whole document."""
    if exclusive:
        return etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False)
    apex = etree.Element(signed_info.tag, nsmap=signed_info.nsmap)
    for ancestor in signed_info.iterancestors():  # nearest first: the nearest xml:lang wins
        for name, value in ancestor.attrib.items():
            if name.startswith(_XML_ATTR) and apex.get(name) is None:
                apex.set(name, value)
    for name, value in signed_info.attrib.items():
        apex.set(name, value)
    apex.text = signed_info.text
    for child in signed_info:
        apex.append(copy.deepcopy(child))
    return etree.tostring(apex.getroottree(), method="c14n", exclusive=False, with_comments=False)


def _certificates(texts: list[str]) -> list[x509.Certificate]:
    """The KeyInfo certificates, signer first; ``no_certificate`` / ``bad_certificate`` otherwise."""
    if not texts:
        raise _Refused("no_certificate")
    certs = []
    for text in texts:
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode("".join(text.split()), validate=True)))
        except ValueError:
            raise _Refused("bad_certificate") from None
    return certs


def _rsa_key(cert: x509.Certificate) -> rsa.RSAPublicKey:
    try:
        public_key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):  # e.g. a GOST or otherwise unknown key type
        raise _Refused("unsupported_algorithm") from None
    # The signature method is rsa-sha256: an EC or DSA key cannot have made it, and an RSA key under
    # 2048 bits is a downgrade the signer could have used to forge it.
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < _MIN_RSA_BITS:
        raise _Refused("unsupported_algorithm")
    return public_key


def verify_package(
    source: str | os.PathLike | BinaryIO | bytes,
    trust_roots: Iterable[x509.Certificate | bytes],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    spool_dir: str | os.PathLike | None = None,
    at: datetime | None = None,
) -> SignatureCheck:
    """Check the package's enveloped signature against ``trust_roots`` (certificates or PEM bytes).

    A bad, absent or unverifiable signature is a :class:`SignatureCheck` with ``valid=False`` (and
    ``intact`` telling whether digest and signature value at least hold for the embedded certificate,
    which is what an empty ``trust_roots`` can still show); reading errors (malformed, hostile,
    oversize input) raise :class:`~inter_axis.errors.EdxmlError`, an unreadable trust root
    :class:`BadSignatureError`."""
    roots = _load_trust(trust_roots)
    tree, spools = _read_spooled(source, max_bytes, spool_dir)
    try:
        return _verify(tree, spools, roots, at or datetime.now(UTC))
    finally:
        _remove(spools)


def _verify(tree: StreamedTree, spools, roots, at: datetime) -> SignatureCheck:
    reader = LenientReader()
    envelope = locate(tree.root, reader)
    signature = envelope.signature
    anywhere = sum(1 for _ in tree.root.iter(_d("Signature")))
    if signature is None:
        # An XML-DSig Signature elsewhere (moved into the body, a header field, the root…) still
        # verifies with a generic verifier, which finds the first Signature anywhere: name the problem.
        return SignatureCheck(False, "misplaced_signature" if anywhere else "no_signature")
    if namespace_of(signature.tag) != DSIG_NS:
        return SignatureCheck(False, "not_xmldsig")
    if anywhere != 1 or len(reader.children(envelope.header, "Signature")) != 1:
        return SignatureCheck(False, "multiple_signatures")
    signer = None
    try:
        parts = _signature_parts(signature)
        certs = _certificates(parts.cert_texts)
        signer_cert = certs[0]
        signer = signer_cert.subject.rfc4514_string()
        public_key = _rsa_key(signer_cert)
        digest = _document_digest(tree, spools, signature, parts.document_exclusive)
        if parts.claimed_digest != digest:
            raise _Refused("digest_mismatch")
        canonical = _canonical_signed_info(parts.signed_info, parts.signed_info_exclusive)
        try:
            public_key.verify(parts.signature_value, canonical, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise _Refused("signature_mismatch") from None
    except _Refused as refused:
        return SignatureCheck(False, refused.reason, signer)
    if not _chain_trusted(signer_cert, certs[1:], roots):
        return SignatureCheck(False, "untrusted_signer", signer, intact=True)
    if not signer_cert.not_valid_before_utc <= at <= signer_cert.not_valid_after_utc:
        return SignatureCheck(False, "certificate_expired", signer, intact=True)
    return SignatureCheck(True, "valid", signer, intact=True)


def require_valid(check: SignatureCheck) -> SignatureCheck:
    """Raise :class:`BadSignatureError` unless ``check`` is valid (for callers that must refuse)."""
    if not check.valid:
        raise BadSignatureError(f"the package signature is not valid: {check.reason}")
    return check
