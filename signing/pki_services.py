"""The development PKI's network services as pure functions: DER request in, DER response out.

docsvc mounts them as HTTP routes (URL layout in :class:`signing.devpki.PkiUrls`); tests serve
them on loopback (``tests/support/pki_server.py``). Nothing here touches the network.

- :class:`TimestampAuthority` — RFC 3161 (+ RFC 5816 ESSCertIDv2) time-stamping.
- :class:`OcspResponder` — RFC 6960 OCSP, delegated responder certificate with nocheck.
- :func:`crl_der` — RFC 5280 CRLs of the issuing CA (and the root CA).

Malformed requests get the protocol's own error response (a TSA rejection, an OCSP
``malformedRequest``), never an exception: a client deserves an answer it can parse.

Every service takes a ``clock`` so tests can act "in the past" (e.g. sign and time-stamp with a
certificate that has expired since); revocations recorded for a later time are not yet visible.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

from signing.devpki import (
    DEV_TSA_POLICY_OID,
    DevPki,
    PrivateKey,
    reason_flag,
    signature_hash,
    utcnow,
    write_atomic,
)
from signing.errors import PkiError

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: Digest lengths of the message-imprint algorithms the TSA accepts. SHA-1 and MD5 are refused
#: (badAlg): a time-stamp over a collidable hash proves nothing.
TSA_DIGEST_SIZES = {
    "sha224": 28,
    "sha256": 32,
    "sha384": 48,
    "sha512": 64,
    "sha3_256": 32,
    "sha3_384": 48,
    "sha3_512": 64,
}

OCSP_VALIDITY = timedelta(days=1)
"""nextUpdate - thisUpdate of OCSP answers."""
CRL_VALIDITY = timedelta(days=7)
"""nextUpdate - thisUpdate of CRLs."""
CRL_REISSUE_AFTER = timedelta(days=1)
"""A cached CRL older than this is re-issued (with the next CRL number) even without changes."""


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _sign(key: PrivateKey, data: bytes) -> tuple[bytes, str]:
    """Signature over ``data`` with SHA-256 and the CMS signature algorithm name for it."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256()), "rsassa_pkcs1v15"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"
    raise PkiError(f"unsupported key type {type(key).__name__}")


# ---------------------------------------------------------------------------------- TSA


class TimestampRejected(Exception):
    """A time-stamp request the TSA refuses; carries the PKIFailureInfo bit to answer with."""

    def __init__(self, failure: str, text: str) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text


class TimestampAuthority:
    """RFC 3161 TSA signing with the PKI's TSA certificate.

    Responses: status granted, TSTInfo with policy :data:`DEV_TSA_POLICY_OID`, accuracy 1 s,
    the request's nonce, the TSA's name, a random 128-bit serial; SignedData signed with SHA-256
    and the signed attributes content-type, signing-time, message-digest and
    signing-certificate-v2 (ESSCertIDv2 with issuer and serial). The TSA and issuing CA
    certificates are included when the request sets ``certReq``."""

    def __init__(self, pki: DevPki, *, clock: Clock = utcnow) -> None:
        self._key = pki.tsa.key
        self._cert = asn1_x509.Certificate.load(_der(pki.tsa.cert))
        self._issuing = asn1_x509.Certificate.load(_der(pki.issuing.cert))
        self._clock = clock
        self._ess_cert_id = tsp.ESSCertIDv2(
            {
                "cert_hash": hashlib.sha256(self._cert.dump()).digest(),
                "issuer_serial": {
                    "issuer": [asn1_x509.GeneralName(name="directory_name", value=self._cert.issuer)],
                    "serial_number": self._cert.serial_number,
                },
            }
        )

    def respond(self, request_der: bytes) -> bytes:
        """A DER TimeStampResp for a DER TimeStampReq; a rejection for a bad request."""
        try:
            request = _parse_timestamp_request(request_der)
        except TimestampRejected as rejected:
            logger.info("TSA rejected a request: %s", rejected.text)
            return rejection_response(rejected.failure, rejected.text)
        token = self._token(request)
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()

    def _token(self, request: tsp.TimeStampReq) -> cms.ContentInfo:
        # DER GeneralizedTime: whole seconds are enough with an accuracy of 1 s.
        now = self._clock().replace(microsecond=0)
        info = {
            "version": "v1",
            "policy": DEV_TSA_POLICY_OID,
            "message_imprint": request["message_imprint"],
            "serial_number": secrets.randbits(127) | 1,
            "gen_time": now,
            "accuracy": {"seconds": 1},
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self._cert.subject),
        }
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"].native
        tst_info = tsp.TSTInfo(info)
        certificates = [self._cert, self._issuing] if request["cert_req"].native else None
        return _signed_data(tst_info, now, self._signer_info(tst_info, now), certificates)

    def _signer_info(self, tst_info: tsp.TSTInfo, now: datetime) -> cms.SignerInfo:
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "signing_time", "values": [cms.Time(name="utc_time", value=now)]},
                {"type": "message_digest", "values": [hashlib.sha256(tst_info.dump()).digest()]},
                {"type": "signing_certificate_v2", "values": [{"certs": [self._ess_cert_id]}]},
            ]
        )
        # The signature covers the attributes encoded as a SET (tag 0x31), as CMS requires.
        signature, algorithm = _sign(self._key, signed_attrs.dump())
        return cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    name="issuer_and_serial_number",
                    value={"issuer": self._cert.issuer, "serial_number": self._cert.serial_number},
                ),
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": signed_attrs,
                "signature_algorithm": {"algorithm": algorithm},
                "signature": signature,
            }
        )


def _signed_data(
    tst_info: tsp.TSTInfo, now: datetime, signer_info: cms.SignerInfo, certificates: list | None
) -> cms.ContentInfo:
    signed_data = {
        "version": "v3",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": {"content_type": "tst_info", "content": tst_info},
        "signer_infos": [signer_info],
    }
    if certificates:
        signed_data["certificates"] = certificates
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})


def _parse_timestamp_request(request_der: bytes) -> tsp.TimeStampReq:
    """The request, fully parsed and checked; :class:`TimestampRejected` if unusable."""
    try:
        request = tsp.TimeStampReq.load(request_der, strict=True)
        # asn1crypto parses lazily: .native forces the whole structure to be decoded now.
        fields = request.native
    except Exception as exc:  # noqa: BLE001 — any decoding failure of untrusted bytes is "bad data"
        raise TimestampRejected("bad_data_format", f"not a DER TimeStampReq: {exc}") from exc
    if fields["version"] != "v1":
        raise TimestampRejected("bad_request", f"unsupported version {fields['version']}")
    imprint = fields["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"]
    if algorithm not in TSA_DIGEST_SIZES:
        raise TimestampRejected("bad_alg", f"hash algorithm {algorithm} not accepted")
    if len(imprint["hashed_message"]) != TSA_DIGEST_SIZES[algorithm]:
        raise TimestampRejected("bad_data_format", f"message imprint is not a {algorithm} digest")
    if fields["req_policy"] not in (None, DEV_TSA_POLICY_OID):
        raise TimestampRejected("unaccepted_policy", f"policy {fields['req_policy']} not offered")
    if any(ext["critical"] for ext in fields["extensions"] or ()):
        raise TimestampRejected("unaccepted_extensions", "critical request extensions are not supported")
    return request


def rejection_response(failure: str, text: str) -> bytes:
    """A DER TimeStampResp with status rejection and the PKIFailureInfo bit ``failure``."""
    status = {"status": "rejection", "status_string": [text[:200]], "fail_info": tsp.PKIFailureInfo({failure})}
    return _StatusOnlyResp({"status": status}).dump()


class _StatusOnlyResp(core.Sequence):
    """TimeStampResp without a token: asn1crypto's spec wrongly makes timeStampToken mandatory."""

    _fields = [("status", tsp.PKIStatusInfo)]


# ---------------------------------------------------------------------------------- OCSP


class OcspResponder:
    """RFC 6960 responder for certificates of the issuing CA, signed by the delegated OCSP
    responder certificate (responder ID by key hash, certificate included).

    Status per the PKI index at the clock's time: good, revoked (time and reason) or unknown
    (serial not issued here, or another issuer). The request's nonce is echoed. Requests with
    more than one certificate are answered ``malformedRequest`` (cryptography reads one)."""

    def __init__(self, pki: DevPki, *, clock: Clock = utcnow, validity: timedelta = OCSP_VALIDITY) -> None:
        self._pki = pki
        self._clock = clock
        self._validity = validity
        self._issuing = asn1_x509.Certificate.load(_der(pki.issuing.cert))

    def respond(self, request_der: bytes) -> bytes:
        """A DER OCSPResponse for a DER OCSPRequest; ``malformedRequest`` if it cannot be read."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            nonce = _ocsp_nonce(request)
            algorithm = request.hash_algorithm
        except (ValueError, TypeError, x509.UnsupportedGeneralNameType) as exc:
            logger.info("OCSP request rejected as malformed: %s", exc)
            return _ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        builder = self._add_status(ocsp.OCSPResponseBuilder(), request, algorithm)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self._pki.ocsp.cert)
        builder = builder.certificates([self._pki.ocsp.cert])
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(self._pki.ocsp.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    def _add_status(
        self, builder: ocsp.OCSPResponseBuilder, request: ocsp.OCSPRequest, algorithm: hashes.HashAlgorithm
    ) -> ocsp.OCSPResponseBuilder:
        now = self._clock().replace(microsecond=0)
        status, revoked_at, reason = self._status(request, algorithm, now)
        return builder.add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=algorithm,
            cert_status=status,
            this_update=now,
            next_update=now + self._validity,
            revocation_time=revoked_at,
            revocation_reason=reason,
        )

    def _status(self, request: ocsp.OCSPRequest, algorithm: hashes.HashAlgorithm, now: datetime):
        unknown = (ocsp.OCSPCertStatus.UNKNOWN, None, None)
        if not self._is_our_issuer(request, algorithm.name):
            return unknown
        record = self._pki.record(request.serial_number)
        if record is None:
            return unknown
        if record.revoked_by(now):
            return ocsp.OCSPCertStatus.REVOKED, record.revoked_at, reason_flag(record.reason or "unspecified")
        return ocsp.OCSPCertStatus.GOOD, None, None

    def _is_our_issuer(self, request: ocsp.OCSPRequest, hash_name: str) -> bool:
        name_hash = hashlib.new(hash_name, self._issuing.subject.dump()).digest()
        # The key hash covers the subjectPublicKey BIT STRING value without its unused-bits byte.
        key_bits = self._issuing.public_key["public_key"].contents[1:]
        key_hash = hashlib.new(hash_name, key_bits).digest()
        return request.issuer_name_hash == name_hash and request.issuer_key_hash == key_hash


def _ocsp_nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def _ocsp_error(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def ocsp_request_from_get(path_tail: str) -> bytes:
    """The DER request of an RFC 6960 §A.1 GET (``/pki/ocsp/<url-encoded base64>``).

    Returns b"" for undecodable input so that :meth:`OcspResponder.respond` answers
    ``malformedRequest``, as for any other unreadable request."""
    try:
        return base64.b64decode(urllib.parse.unquote(path_tail), validate=False)
    except (binascii.Error, ValueError):
        return b""


# ---------------------------------------------------------------------------------- CRL

CrlAuthority = Literal["issuing", "root"]


def crl_der(pki: DevPki, *, authority: CrlAuthority = "issuing", at: datetime | None = None) -> bytes:
    """The current DER CRL of the issuing CA (or of the root CA, which lists nothing).

    The CRL is cached in the PKI directory and re-issued, with the next CRL number, when a
    revocation is recorded or the cached one is older than :data:`CRL_REISSUE_AFTER`.
    ``at`` builds a fresh CRL as of that moment (for tests acting in the past); it lists only
    revocations recorded for times up to ``at`` and is not cached."""
    if authority not in ("issuing", "root"):
        raise PkiError(f"no CRL authority {authority!r}")
    if at is not None:
        return _build_crl(pki, authority, at)
    cache, state_path = pki.directory / f"crl-{authority}.der", pki.directory / f"crl-{authority}.json"
    digest = pki.revocation_digest() if authority == "issuing" else ""
    now = utcnow()
    cached = _cached_crl(cache, state_path, digest, now)
    if cached is not None:
        return cached
    crl = _build_crl(pki, authority, now)
    # CRL first, state second: a crash in between only causes one needless re-issue.
    write_atomic(cache, crl)
    write_atomic(state_path, json.dumps({"digest": digest, "this_update": now.isoformat()}).encode())
    return crl


def _cached_crl(cache: Path, state_path: Path, digest: str, now: datetime) -> bytes | None:
    """The cached CRL if it reflects ``digest`` and is recent, else None."""
    try:
        state = json.loads(state_path.read_text())
        issued = datetime.fromisoformat(state["this_update"])
        fresh = state["digest"] == digest and timedelta(0) <= now - issued < CRL_REISSUE_AFTER
        return cache.read_bytes() if fresh else None
    except (OSError, ValueError, KeyError):
        return None  # missing or damaged cache: the caller issues a new CRL


def _build_crl(pki: DevPki, authority: CrlAuthority, moment: datetime) -> bytes:
    issuer = pki.issuing if authority == "issuing" else pki.root
    moment = moment.replace(microsecond=0)
    ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(moment)
        .next_update(moment + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(pki.next_crl_number(authority)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    if authority == "issuing":
        for record in pki.records():
            if record.revoked_by(moment):
                builder = builder.add_revoked_certificate(
                    _revoked_entry(record.serial, record.revoked_at, record.reason)
                )
    crl = builder.sign(issuer.key, signature_hash(issuer.key))
    return crl.public_bytes(serialization.Encoding.DER)


def _revoked_entry(serial: int, revoked_at: datetime, reason: str | None) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
    # RFC 5280 §5.3.1: omit the reason code rather than say "unspecified".
    if reason and reason != "unspecified":
        builder = builder.add_extension(x509.CRLReason(reason_flag(reason)), critical=False)
    return builder.build()


# ---------------------------------------------------------------------------------- bundle


class PkiServices:
    """Everything an HTTP layer serves for one PKI, built once so keys are parsed once.

    Routes (see :class:`signing.devpki.PkiUrls`): ``POST /pki/tsa`` → :attr:`tsa`,
    ``POST /pki/ocsp`` and ``GET /pki/ocsp/<base64>`` → :attr:`ocsp`, ``GET /pki/crl`` and
    ``GET /pki/root-ca.crl`` → :meth:`crl`, ``GET /pki/issuing-ca.crt`` and
    ``GET /pki/root-ca.crt`` → :meth:`ca_certificate`."""

    def __init__(self, pki: DevPki, *, clock: Clock | None = None) -> None:
        self.pki = pki
        self.clock = clock
        """None for the real clock (CRLs cached); a callable to act at another time (tests)."""
        self.tsa = TimestampAuthority(pki, clock=clock or utcnow)
        self.ocsp = OcspResponder(pki, clock=clock or utcnow)

    def crl(self, authority: CrlAuthority = "issuing") -> bytes:
        """The DER CRL of ``authority`` as of the service clock."""
        return crl_der(self.pki, authority=authority, at=self.clock() if self.clock else None)

    def ca_certificate(self, which: Literal["issuing", "root"]) -> bytes:
        """DER certificate of the issuing or root CA (the AIA caIssuers target)."""
        authority = self.pki.issuing if which == "issuing" else self.pki.root
        return _der(authority.cert)
