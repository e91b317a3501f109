"""From a profile name to a ``SignatureSpec``: ``signing.profiles`` places the Decree 30
appearance; when it finds no place (no anchor text, no personal signature to seal), a fixed
box at the bottom of the last page is used so signing still works on any PDF."""

from __future__ import annotations

from pathlib import Path

from asn1crypto import x509 as asn1_x509

from docsvc import errors
from signing.interfaces import SignatureSpec
from signing.profiles import ProfileError, ProfileRequest, signature_spec

#: Fallback boxes (PDF points) on the last page when the profile finds no placement.
FALLBACK_BOXES = {"personal": (340.0, 60.0, 540.0, 150.0), "organisation": (300.0, 60.0, 413.0, 173.0)}
_PLACEMENT_CODES = {"anchor_not_found", "no_placement", "anchor_lookup_failed"}


def build_spec(pdf: Path, *, profile: str, level: str, certificate: asn1_x509.Certificate,
               image_path: Path | None = None, reason: str | None = None, number_symbol: str | None = None,
               field_name: str | None = None) -> SignatureSpec:
    """The spec for signing ``pdf``; profile errors become ``invalid_signature_request`` (422)."""
    request = ProfileRequest(profile=profile, level=level, image_path=str(image_path) if image_path else None,
                             number_symbol=number_symbol, reason=reason, field_name=field_name)
    try:
        return signature_spec(pdf, request, certificate)
    except ProfileError as exc:
        if exc.code in _PLACEMENT_CODES and profile in FALLBACK_BOXES:
            fallback = ProfileRequest(profile=profile, level=level, image_path=request.image_path, reason=reason,
                                      box=FALLBACK_BOXES[profile], page=-1, field_name=field_name)
            try:
                return signature_spec(pdf, fallback, certificate)
            except ProfileError as again:
                exc = again
        raise errors.InvalidSignatureRequestError(str(exc), reason=exc.code) from exc
