"""What validating one signed PDF after another can reuse, keyed by content, so that a receiving
process pays for parsing and checking the same certificates once, not once per document.

Profiled on the interlink axis's hot path (a one-page PDF sealed at PAdES B-T, validated against the
same trust roots again and again): pyHanko parses every certificate of the CMS and of its timestamp
token afresh, three times per signature (``extract_certs_for_validation`` runs for ``signer_cert``,
for the signature and for the timestamp), prepares the same distinguished names for comparison,
matches the same ESS signing-certificate attributes against the same certificates, and decodes the
same object identifiers; together well over a third of a validation. Everything here answers from
a bounded, thread-safe memo **keyed by the encoded bytes the answer is a pure function of** (a
certificate's DER, a name's DER, an OID's content octets, an ESS certificate id's DER); a different
certificate, name or attribute is a different key, so nothing can answer for content it was not
computed from. Each document's own evidence (its byte-range digest, its signature value, its
timestamp token's signature and imprint, its signed attributes) is still checked every time.

:func:`install` puts the memos in place, process-wide and idempotent; ``signing.validation`` calls it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from asn1crypto import core, parser, x509
from pyhanko.sign import general
from pyhanko.sign.validation import generic_cms
from pyhanko.sign.validation.utils import _DefaultPolicyMixin
from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

_MISSING = object()


def _weight(key: Hashable) -> int:
    """The encoded bytes a key holds (what an attacker could make large)."""
    if isinstance(key, bytes):
        return len(key)
    if isinstance(key, tuple):
        return sum(_weight(part) for part in key)
    return 0


class BoundedMemo:
    """A thread-safe mapping bounded by entry count and by the bytes its keys hold (a key is or
    contains encoded bytes: a DER certificate, name or OID), the oldest out first: hostile input
    cannot make it grow, and an entry pushed out is computed again when next needed. Lookups take
    no lock (a ``dict`` read is atomic in CPython); stores do. Values are computed outside the
    lock: two threads may compute the same value at once, and the first one stored wins (they are
    equal anyway)."""

    def __init__(self, size: int, max_bytes: int = 4 * 1024 * 1024) -> None:
        self._size, self._max_bytes = size, max_bytes
        self._lock = threading.Lock()
        self._entries: dict[Hashable, Any] = {}
        self._bytes = 0

    def get(self, key: Hashable, default: Any = None) -> Any:
        return self._entries.get(key, default)

    def put(self, key: Hashable, value: Any) -> Any:
        """Store ``value`` unless ``key`` is already there; returns what is stored (a key heavier
        than the whole budget is not stored)."""
        weight = _weight(key)
        if weight > self._max_bytes:
            return value
        with self._lock:
            entries = self._entries
            if key in entries:
                return entries[key]
            entries[key] = value
            self._bytes += weight
            while len(entries) > self._size or self._bytes > self._max_bytes:
                oldest = next(iter(entries))  # a dict keeps insertion order
                del entries[oldest]
                self._bytes -= _weight(oldest)
            return value

    def compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The stored value, else ``compute()`` stored (an exception stores nothing)."""
        value = self.get(key, _MISSING)
        return self.put(key, compute()) if value is _MISSING else value

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


# --- parsed certificates, by DER ---------------------------------------------------------------

#: DER → a fully parsed certificate, shared by every validation (and thread) that meets it. A parsed
#: certificate takes ~40 times its DER in memory (~50 KB for a usual 1.2 KB one): at most 256 of
#: them, 1 MiB of DER, and none over 16 KiB (bigger ones are parsed per use, as before).
CERTIFICATES = BoundedMemo(256, max_bytes=1024 * 1024)
_MAX_SHARED_DER = 16 * 1024
#: The DER a cached certificate was parsed from (an attribute, so no id() can be reused for another).
_DER = "_docsvc_der"


def _prime(cert: x509.Certificate) -> None:
    """Compute now everything asn1crypto computes lazily and keeps on the object, so threads
    sharing the certificate only ever read it. asn1crypto fills some of these step by step (the
    critical-extension set, ``self_signed``, ``valid_domains``, a ``Name``'s native form…): two
    threads doing that on one object could see each other's half-done work."""
    cert.native  # noqa: B018 - parses every field, extension values included
    cert.critical_extensions  # noqa: B018 - and sets every ``*_value`` extension attribute
    for name in (cert.subject, cert.issuer):
        name.native, name.human_friendly, name.sha1, name.sha256  # noqa: B018
        setattr(name, _HASHABLE, name.hashable)
    cert.issuer_serial, cert.authority_issuer_serial, cert.key_identifier, cert.authority_key_identifier  # noqa: B018
    cert.crl_distribution_points, cert.delta_crl_distribution_points, cert.ocsp_urls  # noqa: B018
    cert.valid_domains, cert.valid_ips, cert.self_issued, cert.self_signed, cert.sha1, cert.sha256  # noqa: B018
    key = cert.public_key
    key.algorithm, key.sha1, key.sha256, key.bit_size  # noqa: B018
    cert.dump()


def certificate(der: bytes) -> x509.Certificate:
    """The certificate encoded by ``der``, parsed once and shared.

    Safe to share because a certificate's DER determines every field pyHanko reads from it, and
    nothing in validation modifies a certificate (it is read-only input); every lazily computed
    property is computed before the object is shared (``_prime``). A certificate that cannot be
    fully parsed (or has a key asn1crypto cannot size…) is returned parsed afresh and not kept:
    whatever fails fails later exactly where it did without this memo."""
    cert = CERTIFICATES.get(der)
    if cert is not None:
        return cert
    cert = x509.Certificate.load(der)
    if len(der) > _MAX_SHARED_DER:
        return cert
    try:
        _prime(cert)
    except Exception:  # noqa: BLE001 - any failure: not shared, and pyHanko meets it as before
        return x509.Certificate.load(der)
    setattr(cert, _DER, der)
    return CERTIFICATES.put(der, cert)


def der_of(value: core.Asn1Value) -> bytes:
    """``value.dump()``, without walking a fully parsed certificate for changes when it came from
    :func:`certificate` (which are never changed)."""
    der = getattr(value, _DER, None)
    return der if der is not None else value.dump()


def shared(certs) -> list:
    """``certs`` as the shared, primed objects (same DER, so the same certificates); anything that
    is not an asn1crypto certificate (pyHanko also takes trust anchors) is left as it is."""
    return [certificate(der_of(c)) if isinstance(c, x509.Certificate) else c for c in certs]


#: Certificates read off a set's encoding at most: a real signature carries a chain of a few, while a
#: hostile set of many tiny elements would make the slicing below quadratic in its length.
_MAX_PLAIN_CERTIFICATES = 32


def _plain_certificate_ders(certificate_set) -> list[bytes] | None:
    """The DER of each element of a CMS ``CertificateSet`` that holds nothing but plain X.509
    certificates (definite-length universal SEQUENCEs: the ``certificate`` choice), read off the
    set's encoding without building a ``CertificateChoices`` object per element; ``None`` for any
    other set (attribute certificates, odd encodings…), which pyHanko's way handles."""
    raw = getattr(certificate_set, "_contents", None)
    if not isinstance(raw, bytes) or certificate_set.children is not None and certificate_set._is_mutated():
        return None
    ders, pos = [], 0
    try:
        while pos < len(raw):
            if len(ders) >= _MAX_PLAIN_CERTIFICATES:
                return None  # each step copies the rest of the set: past a real chain's length, pyHanko's way
            class_, method, tag, header, contents, trailer = parser.parse(raw[pos:])
            if (class_, method, tag) != (0, 1, 16) or trailer or header[1:2] == b"\x80":
                return None
            ders.append(header + contents)
            pos += len(header) + len(contents)
    except ValueError:
        return None
    return ders


def _extract_certificate_info(signed_data) -> general.SignedDataCerts:
    """pyHanko's ``extract_certificate_info`` with the certificates from :func:`certificate` instead
    of a fresh ``untag()`` copy of each (same DER, so the same certificates)."""
    certs, attr_certs = [], []
    certificate_set = signed_data["certificates"]
    ders = _plain_certificate_ders(certificate_set)
    if ders is not None:
        certs = [certificate(der) for der in ders]
    else:
        for choice in certificate_set:
            if choice.name == "certificate":
                certs.append(certificate(choice.chosen.dump()))
            elif choice.name == "v2_attr_cert":
                attr_certs.append(choice.chosen.untag())
    signer_info = general.extract_signer_info(signed_data)
    signer_cert, other_certs = general._partition_certs(certs, signer_info)
    return general.SignedDataCerts(signer_cert=signer_cert, other_certs=other_certs, attribute_certs=attr_certs)


_pyhanko_extract_certs_for_validation = generic_cms.extract_certs_for_validation
_CERT_INFO = "_docsvc_cert_info"


def _extract_certs_for_validation(signed_data):
    """pyHanko's ``extract_certs_for_validation``, once per ``SignedData`` object: it ran three times
    per signature (for ``signer_cert``, then for the signature, and once for the timestamp token's
    own SignedData). Kept on the object it was computed from, which validation never modifies; a
    failure is not kept (it is raised again)."""
    info = signed_data.__dict__.get(_CERT_INFO)
    if info is None:
        info = _pyhanko_extract_certs_for_validation(signed_data)
        setattr(signed_data, _CERT_INFO, info)
    return info


# --- names, OIDs, ESS certificate ids: pure functions of their encoding -------------------------

_NAME_HASHABLE = BoundedMemo(4096)
_asn1crypto_name_hashable = x509.Name.hashable.fget


_HASHABLE = "_docsvc_hashable"


def _name_hashable(self: x509.Name) -> str:
    """``Name.hashable`` (RFC 4518-prepared RDNs, what path building and trust lookups key names by),
    once per distinct encoding: every context registers its roots by it, and every lookup prepares
    the issuer again. The names of a shared certificate keep theirs (``_prime``: never modified)."""
    value = self.__dict__.get(_HASHABLE)
    if value is not None:
        return value
    key = der_of(self.chosen)
    value = _NAME_HASHABLE.get(key)
    if value is None:
        value = _NAME_HASHABLE.put(key, _asn1crypto_name_hashable(self))
    return value


_OID_DOTTED = BoundedMemo(4096)
_asn1crypto_dotted = core.ObjectIdentifier.dotted.fget


def _oid_dotted(self: core.ObjectIdentifier) -> str:
    """``ObjectIdentifier.dotted`` by content octets: decoding the same few dozen OIDs of every CMS,
    certificate and algorithm identifier was the largest self-time entry left."""
    dotted = self._dotted
    if dotted is None:
        contents = self.contents
        if not isinstance(contents, bytes):
            return _asn1crypto_dotted(self)
        dotted = _OID_DOTTED.get(contents)
        if dotted is None:
            dotted = _OID_DOTTED.put(contents, _asn1crypto_dotted(self))
        self._dotted = dotted
    return dotted


_ESS_MATCHES = BoundedMemo(1024)
_pyhanko_check_ess_certid = general.check_ess_certid


def _check_ess_certid(cert: x509.Certificate, certid) -> bool:
    """pyHanko's ``check_ess_certid`` (the signing-certificate attribute names this certificate:
    its hash, issuer and serial), once per (attribute value, certificate) encoding. Every document
    of a signer carries the same attribute for the same certificate, and pyHanko checked it four
    times per B-T signature."""
    key = (type(certid), certid.dump(), der_of(cert))
    found = _ESS_MATCHES.get(key)
    if found is None:
        found = _ESS_MATCHES.put(key, bool(_pyhanko_check_ess_certid(cert, certid)))
    return found


_pyhanko_check_signing_certificate = generic_cms._check_signing_certificate
_SIGNING_CERT_PASSED = "_docsvc_signing_cert_passed"


def _check_signing_certificate(cert: x509.Certificate, signed_attrs) -> None:
    """pyHanko's ``_check_signing_certificate`` (the signing-certificate attribute, if any, names
    ``cert``), once per signed-attributes object and certificate: pyHanko asks it when it picks the
    signer and again when it checks the signature, re-parsing the attribute each time. A pass is
    kept on the attributes object it was computed from (validation never modifies it), per
    certificate DER; a mismatch is not kept (it is raised again)."""
    der = der_of(cert)
    passed = getattr(signed_attrs, "__dict__", {}).get(_SIGNING_CERT_PASSED)
    if passed is not None and der in passed:
        return
    _pyhanko_check_signing_certificate(cert, signed_attrs)
    if passed is None:
        try:
            setattr(signed_attrs, _SIGNING_CERT_PASSED, passed := set())
        except AttributeError:
            return
    passed.add(der)


_ISSUER_SERIAL_MATCHES = BoundedMemo(2048)
_pyhanko_match_issuer_serial = general.match_issuer_serial


def _match_issuer_serial(expected, cert: x509.Certificate) -> bool:
    """pyHanko's ``match_issuer_serial`` (finding the signer among a CMS's certificates) once per
    (identifier, certificate) encoding."""
    key = (type(expected), expected.dump(), der_of(cert))
    found = _ISSUER_SERIAL_MATCHES.get(key)
    if found is None:
        found = _ISSUER_SERIAL_MATCHES.put(key, bool(_pyhanko_match_issuer_serial(expected, cert)))
    return found


_ALGORITHMS_ALLOWED = BoundedMemo(256)
_pyhanko_enforce_algorithm_usage = generic_cms._enforce_algorithm_usage


def _enforce_algorithm_usage(signer_info, cert, algorithm_usage_policy, time_indic=None):
    """pyHanko's ``_enforce_algorithm_usage`` (signature and digest algorithms allowed, key large
    enough, digest matching the signature mechanism), remembered when it passed under pyHanko's
    default policy: ``DisallowWeakAlgorithmsPolicy`` ignores the time, so the verdict is a pure
    function of the algorithm identifiers, the public key and the policy's settings, which are the
    key. Any other policy, and every refusal, goes to pyHanko every time."""
    policy = algorithm_usage_policy
    inner = getattr(policy, "_policy", None)
    if type(policy) is not _DefaultPolicyMixin or type(inner) is not DisallowWeakAlgorithmsPolicy:
        return _pyhanko_enforce_algorithm_usage(signer_info, cert, policy, time_indic=time_indic)
    key = (signer_info["signature_algorithm"].dump(), signer_info["digest_algorithm"].dump(),
           cert.public_key.dump(), frozenset(inner.weak_hash_algos), frozenset(inner.weak_signature_algos),
           inner.rsa_key_size_threshold, inner.dsa_key_size_threshold)
    if _ALGORITHMS_ALLOWED.get(key):
        return None
    result = _pyhanko_enforce_algorithm_usage(signer_info, cert, policy, time_indic=time_indic)
    _ALGORITHMS_ALLOWED.put(key, True)  # reached only when it did not raise
    return result


# --- trust managers, per root set --------------------------------------------------------------

class _Lookups(dict):
    """A subject map that answers "none" for an unknown name without adding it (pyHanko's
    ``defaultdict`` adds every name ever looked up: unbounded in a shared manager)."""

    def __missing__(self, key):
        return ()


_TRUST_MANAGERS = BoundedMemo(32)


def trust_manager(roots) -> SimpleTrustManager:
    """A ``SimpleTrustManager`` for ``roots``, built once per distinct set of root DERs.

    After it is built it is only read (``is_root``, ``as_trust_anchor``, ``find_potential_issuers``,
    ``iter_certs``), so contexts in any thread may share it; the subject map no longer grows on
    lookups. Keyed by the roots' DER in the caller's order (the order path building tries them in),
    so another root set gets another manager. pyHanko's anchors compare by subject and key, not by
    object, so a shared manager answers exactly as a fresh one would."""
    roots = shared(roots)
    key = tuple(der_of(c) for c in roots)

    def build() -> SimpleTrustManager:
        manager = SimpleTrustManager.build(trust_roots=roots)
        for anchors in manager._root_subject_map.values():
            for anchor in anchors:
                anchor.authority.name.hashable  # noqa: B018 - computed before sharing
        manager._root_subject_map = _Lookups(manager._root_subject_map)
        return manager

    return _TRUST_MANAGERS.compute(key, build)


_installed = False


def install() -> None:
    """Put every memo in place (idempotent, process-wide)."""
    global _installed
    if _installed:
        return
    generic_cms.extract_certificate_info = _extract_certificate_info
    generic_cms.extract_certs_for_validation = _extract_certs_for_validation
    generic_cms.check_ess_certid = _check_ess_certid
    generic_cms._enforce_algorithm_usage = _enforce_algorithm_usage
    generic_cms._check_signing_certificate = _check_signing_certificate
    general.check_ess_certid = _check_ess_certid
    general.match_issuer_serial = _match_issuer_serial
    x509.Name.hashable = property(_name_hashable, doc=x509.Name.hashable.__doc__)
    core.ObjectIdentifier.dotted = property(_oid_dotted, doc=core.ObjectIdentifier.dotted.__doc__)
    _installed = True
