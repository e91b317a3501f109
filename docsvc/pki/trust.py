"""What docsvc trusts when it signs and validates: the development PKI's root (when enabled) plus
configured root files, and the intermediate certificates validators may need to build paths."""

from __future__ import annotations

from pathlib import Path

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

from docsvc.settings import Settings


def _load_certificates(path: Path) -> list[asn1_x509.Certificate]:
    """Every certificate in a PEM (one or more blocks) or DER file, parsed from DER bytes."""
    data = Path(path).read_bytes()
    if pem.detect(data):
        return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [asn1_x509.Certificate.load(data)]


def _dev_pki(settings: Settings):
    # Imported lazily: opening parses the CA keys, and production never needs it.
    from docsvc.pki.service import open_dev_pki

    return open_dev_pki(settings)


def trust_roots(settings: Settings) -> tuple[asn1_x509.Certificate, ...]:
    """Trusted root certificates: the development PKI's root when ``signing.use_dev_pki`` (and
    the PKI exists), then every certificate in the ``signing.trust_roots`` files."""
    roots: list[asn1_x509.Certificate] = []
    if settings.signing.use_dev_pki:
        pki = _dev_pki(settings)
        if pki is not None:
            roots.append(pki.trust_root)
    for path in settings.signing.trust_roots:
        roots.extend(_load_certificates(path))
    return tuple(roots)


def other_certs(settings: Settings) -> tuple[asn1_x509.Certificate, ...]:
    """Untrusted helper certificates for path building: the development issuing CA."""
    if not settings.signing.use_dev_pki:
        return ()
    pki = _dev_pki(settings)
    return (pki.chain[0],) if pki is not None else ()
