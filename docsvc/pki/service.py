"""The development PKI as docsvc uses it: opened once per directory, created on first start,
and its TSA/OCSP/CRLs used in-process for B-T, B-LT and B-LTA (no network, no running server).

Production (``signing.use_dev_pki=false``) gets its timestamper and revocation data from
``signing.trust.TrustServices`` (an HTTP TSA and online OCSP/CRL fetching) instead."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator import ValidationContext

from docsvc import errors
from docsvc.settings import Settings
from signing.devpki import DevPki
from signing.errors import PkiError
from signing.pki_services import PkiServices

_lock = threading.Lock()
_opened: dict[Path, DevPki] = {}
_services: dict[Path, PkiServices] = {}


def _key(settings: Settings) -> Path:
    return settings.pki_path.resolve()


def open_dev_pki(settings: Settings) -> DevPki | None:
    """The development PKI at ``settings.pki_path``, opened once per process; None if absent."""
    path = _key(settings)
    with _lock:
        pki = _opened.get(path)
        if pki is None:
            if not (path / DevPki.INDEX).exists():
                return None
            pki = _opened[path] = DevPki.open(path)
        return pki


def ensure_dev_pki(settings: Settings) -> DevPki:
    """Create the development PKI if missing (idempotent), with URLs under ``public_base_url``."""
    path = _key(settings)
    with _lock:
        if path not in _opened:
            try:
                _opened[path] = DevPki.init(path, base_url=settings.signing.public_base_url)
            except PkiError as exc:
                raise errors.SigningUnavailableError(str(exc)) from exc
        return _opened[path]


def require_dev_pki(settings: Settings) -> DevPki:
    """The development PKI, or ``signing_unavailable`` when it is disabled or not created."""
    if not settings.signing.use_dev_pki:
        raise errors.SigningUnavailableError("the development PKI is disabled (signing.use_dev_pki=false)")
    pki = open_dev_pki(settings)
    if pki is None:
        raise errors.SigningUnavailableError(
            f"no development PKI in {settings.pki_path}; run `docsvc pki init` or start `docsvc serve`")
    return pki


def pki_services(settings: Settings) -> PkiServices:
    """TSA, OCSP responder and CRLs of the development PKI (keys parsed once per process)."""
    pki = require_dev_pki(settings)
    with _lock:
        services = _services.get(_key(settings))
        if services is None or services.pki is not pki:
            services = _services[_key(settings)] = PkiServices(pki)
        return services


class InProcessTimeStamper(TimeStamper):
    """A pyHanko timestamper that asks the development TSA directly instead of over HTTP."""

    def __init__(self, services: PkiServices) -> None:
        super().__init__()
        self._services = services

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return tsp.TimeStampResp.load(self._services.tsa.respond(req.dump()))


def _ocsp_answer(services: PkiServices, cert: x509.Certificate, issuer: x509.Certificate) -> asn1_ocsp.OCSPResponse:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return asn1_ocsp.OCSPResponse.load(services.ocsp.respond(request.public_bytes(serialization.Encoding.DER)))


@dataclass(frozen=True)
class SigningTrust:
    """What ``signing.pades.sign_pdf`` needs beyond the key for a given PAdES level."""

    timestamper: TimeStamper | None
    validation_context: ValidationContext | None


def signing_trust(settings: Settings, level: str, signer_cert: asn1_x509.Certificate) -> SigningTrust:
    """Timestamper and (for B-LT/B-LTA) a validation context holding the revocation answers.

    With the development PKI both come from its services in-process: the context is given the
    signer's OCSP answer and both CRLs up front (no fetching), so pyHanko embeds exactly those
    in the DSS. Otherwise ``signing.trust`` provides the configured TSA and online fetching."""
    if level == "B-B":
        return SigningTrust(None, None)
    if not settings.signing.use_dev_pki:
        return _production_trust(settings, level)
    services = pki_services(settings)
    pki = services.pki
    timestamper = InProcessTimeStamper(services)
    if level == "B-T":
        return SigningTrust(timestamper, None)
    cert = x509.load_der_x509_certificate(signer_cert.dump())
    ocsps = []
    if cert.issuer == pki.issuing.cert.subject:
        ocsps.append(_ocsp_answer(services, cert, pki.issuing.cert))
    crls = [asn1_crl.CertificateList.load(services.crl(authority)) for authority in ("issuing", "root")]
    context = ValidationContext(trust_roots=[pki.trust_root], other_certs=[pki.chain[0]], crls=crls,
                                ocsps=ocsps, allow_fetching=False, revocation_mode="hard-fail")
    return SigningTrust(timestamper, context)


def _production_trust(settings: Settings, level: str) -> SigningTrust:
    # Hook for production: an external TSA and online revocation fetching (signing/trust.py).
    from docsvc.pki.trust import other_certs, trust_roots
    from signing.trust import TrustConfig, TrustServices

    signing = settings.signing
    if not signing.tsa_url:
        raise errors.SigningUnavailableError(f"PAdES {level} needs signing.tsa_url when the dev PKI is off")
    auth = None
    if signing.tsa_username and signing.tsa_password:
        auth = (signing.tsa_username, signing.tsa_password.get_secret_value())
    trust = TrustServices(TrustConfig(trust_roots=trust_roots(settings), other_certs=other_certs(settings),
                                      tsa_url=signing.tsa_url, tsa_auth=auth,
                                      cache_dir=settings.revocation_cache_path,
                                      cache_seconds=signing.revocation_cache_seconds))
    context = trust.signing_validation_context() if level in ("B-LT", "B-LTA") else None
    return SigningTrust(trust.timestamper(), context)
