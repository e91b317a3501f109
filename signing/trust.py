"""Production trust: trust roots, the TSA and revocation settings from configuration, and a disk
cache for the OCSP/CRL answers fetched while signing (B-LT/B-LTA) and validating.

Build one :class:`TrustServices` per process from a :class:`TrustConfig` (the application maps
its settings onto the config; this library never reads settings itself)::

    trust = TrustServices(TrustConfig(trust_roots=load_certificates(["/etc/docsvc/root.pem"]),
                                      tsa_url="https://tsa.example.vn", cache_dir=Path("/var/cache/revinfo")))
    await async_sign_pdf(src, out, key, SignatureSpec(level="B-LTA"), timestamper=trust.timestamper(),
                         validation_context=trust.signing_validation_context())
    report = await async_validate_pdf(out, trust=trust)

Every context it hands out is new (a ``ValidationContext`` accumulates paths and answers of one
operation) and owns its own HTTP session, closed by ``await vc.aclose()`` (our signing and
validation entry points do that). What is shared — certificates and the on-disk cache — is
immutable or written atomically, so one instance serves every thread and event loop.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import pem, x509
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers import CRLFetcher, FetcherBackend, Fetchers, OCSPFetcher, OwnedFetcherBackend
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from signing.errors import TrustConfigError

if TYPE_CHECKING:
    from signing.devpki import DevPki

RevocationMode = Literal["soft-fail", "hard-fail", "require"]


@dataclass(frozen=True)
class TrustConfig:
    """Whom to trust and how to check revocation; plain values, filled from the application's settings."""

    trust_roots: tuple[x509.Certificate, ...]
    """Trust anchors (asn1crypto certificates parsed from DER): the national root CA(s)."""

    tsa_url: str | None = None
    """RFC 3161 time-stamping URL used for B-T and above; ``None`` allows B-B only."""

    tsa_auth: tuple[str, str] | None = None
    """HTTP Basic credentials (user, password) for the TSA, if it wants them."""

    fetch_revocation: bool = True
    """Fetch OCSP/CRL answers over HTTP when validating. Signing at B-LT/B-LTA always needs them."""

    cache_dir: Path | None = None
    """Directory where fetched OCSP/CRL answers are cached; ``None`` caches nothing."""

    cache_seconds: int = 3600
    """How long a cached answer is reused. A revocation can go unseen for this long."""

    other_certs: tuple[x509.Certificate, ...] = ()
    """Intermediate CA certificates that may be missing from signatures (path building only, not trusted)."""

    revocation_mode: RevocationMode = "hard-fail"
    """pyHanko's revocation policy when validating: ``hard-fail`` fails a certificate whose revocation
    status could not be fetched, ``soft-fail`` accepts it, ``require`` also demands revocation URLs."""

    tsa_timeout: float = 10.0
    """Seconds to wait for the TSA."""


def load_certificates(paths: Iterable[str | os.PathLike]) -> tuple[x509.Certificate, ...]:
    """Certificates from PEM (one or several per file) or DER files, parsed from DER.

    Raises :class:`TrustConfigError` naming the file that cannot be read or parsed."""
    certs: list[x509.Certificate] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise TrustConfigError(f"cannot read certificate file {path}: {exc.strerror}") from exc
        try:
            if pem.detect(data):
                found = [der for kind, _, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"]
                if not found:
                    raise ValueError("no CERTIFICATE block")
            else:
                found = [data]
            for der in found:
                cert = x509.Certificate.load(der)
                cert.native  # noqa: B018 - parse fully now, so a damaged file fails here
                certs.append(cert)
        except (ValueError, TypeError) as exc:
            raise TrustConfigError(f"{path} is not a PEM or DER certificate: {exc}") from exc
    return tuple(certs)


def dev_trust(pki: DevPki, cache_dir: Path | None = None) -> TrustConfig:
    """The development PKI as a trust configuration: its root trusted, its TSA used."""
    return TrustConfig(trust_roots=(pki.trust_root,), tsa_url=pki.urls.tsa, other_certs=(pki.chain[0],),
                       cache_dir=cache_dir)


# --- the revocation cache --------------------------------------------------------------------

class RevocationCache:
    """DER answers on disk, one file per key, reused for ``max_age`` seconds.

    Files are written to a temporary name and renamed, so concurrent threads and processes read
    an old answer or a new one, never half of one."""

    def __init__(self, directory: Path, max_age: int) -> None:
        self.directory = Path(directory)
        self.max_age = max_age
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise TrustConfigError(f"cannot create the revocation cache {directory}: {exc.strerror}") from exc

    @staticmethod
    def key(*parts: bytes | str) -> str:
        """A file-safe key for the parts (e.g. a kind, the certificate's issuer/serial, the URLs)."""
        digest = hashlib.sha256()
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            digest.update(len(data).to_bytes(4, "big") + data)
        return digest.hexdigest()

    def get(self, key: str) -> list[bytes] | None:
        """The cached answers under ``key`` if younger than ``max_age``, else ``None``."""
        path = self.directory / f"{key}.json"
        try:
            if time.time() - path.stat().st_mtime > self.max_age:
                return None
            return [base64.b64decode(item) for item in json.loads(path.read_bytes())]
        except (OSError, ValueError):
            return None  # missing or damaged: fetch again

    def put(self, key: str, answers: Sequence[bytes]) -> None:
        """Store ``answers`` under ``key``; a full disk only costs a later re-fetch."""
        body = json.dumps([base64.b64encode(a).decode() for a in answers]).encode()
        try:
            fd, tmp = tempfile.mkstemp(prefix=".revinfo-", dir=self.directory)
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            os.replace(tmp, self.directory / f"{key}.json")
        except OSError:
            Path(tmp).unlink(missing_ok=True)


def _urls(cert: x509.Certificate, kind: Literal["ocsp", "crl"]) -> list[str]:
    if not isinstance(cert, x509.Certificate):
        return []
    if kind == "ocsp":
        return sorted(cert.ocsp_urls)
    return sorted(point.url for point in cert.crl_distribution_points if point.url)


class _CachingOCSPFetcher(OCSPFetcher):
    """Answers from the cache when fresh, else from ``inner`` (and caches what it fetched)."""

    def __init__(self, inner: OCSPFetcher, cache: RevocationCache) -> None:
        self._inner = inner
        self._cache = cache
        self._from_cache: list[tuple[bytes, asn1_ocsp.OCSPResponse]] = []

    async def fetch(self, cert, authority) -> asn1_ocsp.OCSPResponse:
        key = self._cache.key("ocsp", _issuer_serial(cert), repr(authority.hashable), *_urls(cert, "ocsp"))
        cached = self._cache.get(key)
        if cached:
            response = asn1_ocsp.OCSPResponse.load(cached[0])
            self._from_cache.append((_issuer_serial(cert), response))
            return response
        response = await self._inner.fetch(cert, authority)
        self._cache.put(key, [response.dump()])
        return response

    def fetched_responses(self) -> Iterable[asn1_ocsp.OCSPResponse]:
        return [*self._inner.fetched_responses(), *(resp for _, resp in self._from_cache)]

    def fetched_responses_for_cert(self, cert) -> Iterable[asn1_ocsp.OCSPResponse]:
        target = _issuer_serial(cert)
        cached = [resp for issuer_serial, resp in self._from_cache if issuer_serial == target]
        return [*self._inner.fetched_responses_for_cert(cert), *cached]


class _CachingCRLFetcher(CRLFetcher):
    """CRLs keyed by the certificate's distribution point URLs: certificates sharing a CRL share
    the cache entry."""

    def __init__(self, inner: CRLFetcher, cache: RevocationCache) -> None:
        self._inner = inner
        self._cache = cache
        self._from_cache: dict[bytes, list[asn1_crl.CertificateList]] = {}

    async def fetch(self, cert, *, use_deltas=None) -> Iterable[asn1_crl.CertificateList]:
        urls = _urls(cert, "crl")
        key = self._cache.key("crl", str(bool(use_deltas)), *urls) if urls else None
        cached = self._cache.get(key) if key else None
        if cached:
            crls = [asn1_crl.CertificateList.load(der) for der in cached]
            self._from_cache[_issuer_serial(cert)] = crls
            return crls
        crls = list(await self._inner.fetch(cert, use_deltas=use_deltas))
        if key and crls:
            self._cache.put(key, [c.dump() for c in crls])
        return crls

    def fetched_crls(self) -> Iterable[asn1_crl.CertificateList]:
        return [*self._inner.fetched_crls(), *(c for crls in self._from_cache.values() for c in crls)]

    def fetched_crls_for_cert(self, cert) -> Iterable[asn1_crl.CertificateList]:
        cached = self._from_cache.get(_issuer_serial(cert))
        if cached is not None:
            return cached
        return self._inner.fetched_crls_for_cert(cert)


def _issuer_serial(cert) -> bytes:
    from pyhanko_certvalidator.util import issuer_serial

    return issuer_serial(cert)


class CachingFetcherBackend(FetcherBackend):
    """pyHanko's aiohttp fetchers with OCSP and CRL answers served from a :class:`RevocationCache`."""

    def __init__(self, cache: RevocationCache | None, inner: FetcherBackend | None = None) -> None:
        self._inner = inner or AIOHttpFetcherBackend()
        self._cache = cache
        self._fetchers: Fetchers | None = None

    def get_fetchers(self) -> Fetchers:
        if self._fetchers is None:
            inner = self._inner.get_fetchers()
            if self._cache is None:
                self._fetchers = inner
            else:
                self._fetchers = Fetchers(ocsp_fetcher=_CachingOCSPFetcher(inner.ocsp_fetcher, self._cache),
                                          crl_fetcher=_CachingCRLFetcher(inner.crl_fetcher, self._cache),
                                          cert_fetcher=inner.cert_fetcher)
        return self._fetchers

    async def close(self) -> None:
        await self._inner.close()


# --- the services ----------------------------------------------------------------------------

class TrustServices:
    """Timestamper and validation contexts for one :class:`TrustConfig`; built once per process,
    safe to share between threads and event loops."""

    def __init__(self, config: TrustConfig) -> None:
        if not config.trust_roots:
            raise TrustConfigError("a trust configuration needs at least one trust root")
        if config.cache_seconds < 0:
            raise TrustConfigError("cache_seconds must not be negative")
        self.config = config
        self._roots = list(config.trust_roots)
        self._others = list(config.other_certs)
        self._cache = RevocationCache(config.cache_dir, config.cache_seconds) if config.cache_dir else None
        # No session is held: HTTPTimeStamper opens one per request, so any thread or loop may use it.
        self._timestamper = (HTTPTimeStamper(config.tsa_url, timeout=config.tsa_timeout, auth=config.tsa_auth)
                             if config.tsa_url else None)

    def timestamper(self) -> TimeStamper | None:
        """The configured TSA client, or ``None`` when no TSA is configured."""
        return self._timestamper

    def _fetching_backend(self) -> OwnedFetcherBackend:
        # Owned: the context closes the HTTP session in ``aclose()``.
        return OwnedFetcherBackend(CachingFetcherBackend(self._cache))

    def signing_validation_context(self) -> ValidationContext:
        """A fresh context that fetches (through the cache) the OCSP/CRL answers a B-LT/B-LTA
        signature embeds. Close it with ``await vc.aclose()`` (``signing.pades`` does)."""
        return ValidationContext(trust_roots=self._roots, other_certs=self._others, allow_fetching=True,
                                 revocation_mode="hard-fail", fetcher_backend=self._fetching_backend())

    def validation_context(self, moment: datetime | None = None) -> ValidationContext:
        """A fresh context for validating: now (fetching if configured), or at ``moment`` in the
        past, where only revocation data embedded in the document counts (nothing is fetched)."""
        if moment is not None:
            return ValidationContext(trust_roots=self._roots, other_certs=self._others, allow_fetching=False,
                                     revocation_mode="soft-fail", moment=moment)
        fetch = self.config.fetch_revocation
        return ValidationContext(trust_roots=self._roots, other_certs=self._others, allow_fetching=fetch,
                                 revocation_mode=self.config.revocation_mode if fetch else "soft-fail",
                                 fetcher_backend=self._fetching_backend() if fetch else None)
