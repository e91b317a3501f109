"""What docsvc trusts when it signs and validates: the development PKI's root (when enabled) plus
configured root files, and the intermediate certificates validators may need to build paths."""

from __future__ import annotations

import logging

from asn1crypto import x509 as asn1_x509

from docsvc import errors
from docsvc.settings import Settings
from signing.errors import TrustConfigError
from signing.trust import load_certificates

logger = logging.getLogger(__name__)

#: The setting named in errors, so an operator knows what to fix.
TRUST_ROOTS_SETTING = "signing.trust_roots"


def _dev_pki(settings: Settings):
    # Imported lazily: opening parses the CA keys, and production never needs it.
    from docsvc.pki.service import open_dev_pki

    return open_dev_pki(settings)


def trust_roots(settings: Settings) -> tuple[asn1_x509.Certificate, ...]:
    """Trusted root certificates: the development PKI's root when ``signing.use_dev_pki`` (and
    the PKI exists), then every certificate in the ``signing.trust_roots`` files.

    A root file that is missing, unreadable or not a certificate is a configuration error:
    ``SigningUnavailableError`` (503 ``signing_unavailable``), never a 500. Its message names the
    setting but not the file, because API clients (anonymous ones included) see it; the file and
    the reason are logged and kept as the exception's ``__cause__`` (``docsvc verify`` prints it)."""
    roots: list[asn1_x509.Certificate] = []
    if settings.signing.use_dev_pki:
        pki = _dev_pki(settings)
        if pki is not None:
            roots.append(pki.trust_root)
    try:
        roots.extend(load_certificates(settings.signing.trust_roots))
    except TrustConfigError as exc:
        logger.error("trust roots unusable (%s): %s", TRUST_ROOTS_SETTING, exc)
        raise errors.SigningUnavailableError(
            f"the configured trust roots ({TRUST_ROOTS_SETTING}) cannot be loaded; signing and validation "
            "are unavailable until an administrator fixes them", setting=TRUST_ROOTS_SETTING) from exc
    return tuple(roots)


def other_certs(settings: Settings) -> tuple[asn1_x509.Certificate, ...]:
    """Untrusted helper certificates for path building: the development issuing CA."""
    if not settings.signing.use_dev_pki:
        return ()
    pki = _dev_pki(settings)
    return (pki.chain[0],) if pki is not None else ()
