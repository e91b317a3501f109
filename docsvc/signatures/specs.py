"""From a profile name to a ``SignatureSpec``: ``signing.profiles`` places the Decree 30
appearance; when it finds no place (no anchor text, no personal signature to seal), a fixed
box at the bottom of the last page is used so signing still works on any PDF."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from asn1crypto import x509 as asn1_x509

from docsvc import errors
from signing.interfaces import SignatureSpec
from signing.profiles import ProfileError, ProfileRequest, signature_spec

#: Fallback boxes (PDF points) on the last page when the profile finds no placement.
FALLBACK_BOXES = {"personal": (340.0, 60.0, 540.0, 150.0), "organisation": (300.0, 60.0, 413.0, 173.0)}
_PLACEMENT_CODES = {"anchor_not_found", "no_placement", "anchor_lookup_failed"}
_CAPTION_SIZE = 9.0
_CAPTION_WIDTH = 200.0  # wide enough for "Hà Nội, ngày 31 tháng 12 năm 2026" at 9 pt


def build_spec(pdf: Path, *, profile: str, level: str, certificate: asn1_x509.Certificate,
               image_path: Path | None = None, reason: str | None = None, number_symbol: str | None = None,
               field_name: str | None = None, anchor_text: str | None = None, page: int | None = None,
               box: tuple[float, float, float, float] | None = None,
               caption: tuple[str, ...] = (), lock: bool = False) -> SignatureSpec:
    """The spec for signing ``pdf``; profile errors become ``invalid_signature_request`` (422).

    An explicit ``box`` or ``anchor_text`` is the caller's choice and is never replaced by a
    fallback box: a name that is not on the page is an error the caller should see. ``caption``
    lines are printed under an image-only appearance (the seal), for a number and date that could
    not be stamped into the document itself."""
    request = ProfileRequest(profile=profile, level=level, image_path=str(image_path) if image_path else None,
                             number_symbol=number_symbol, reason=reason, field_name=field_name,
                             anchor_text=anchor_text, page=page, box=box, lock_document=lock)
    try:
        spec = signature_spec(pdf, request, certificate)
    except ProfileError as exc:
        chose_place = box is not None or anchor_text is not None
        if exc.code in _PLACEMENT_CODES and profile in FALLBACK_BOXES and not chose_place:
            fallback = dataclasses.replace(request, box=FALLBACK_BOXES[profile], page=-1 if page is None else page)
            try:
                spec = signature_spec(pdf, fallback, certificate)
            except ProfileError as again:
                raise errors.InvalidSignatureRequestError(str(again), reason=again.code) from again
        else:
            raise errors.InvalidSignatureRequestError(str(exc), reason=exc.code) from exc
    return _with_caption(spec, caption) if caption else spec


def _with_caption(spec: SignatureSpec, lines: tuple[str, ...]) -> SignatureSpec:
    """``spec`` with ``lines`` printed under its image: the box grows downwards (and to the right
    when the text is wider) so the image stays exactly where the profile put it."""
    look = spec.appearance
    if look is None:
        return spec
    x1, y1, x2, y2 = look.box
    image_w, image_h = x2 - x1, y2 - y1
    text_h = _CAPTION_SIZE * 1.2 * len(lines) + 4.0
    width, height = max(image_w, _CAPTION_WIDTH), image_h + text_h
    split = text_h / height
    caption = dataclasses.replace(
        look, box=(x1, y2 - height, x1 + width, y2), lines=lines, draw_text=True, font_size=_CAPTION_SIZE,
        fit_text=True, image_box=(0.0, split, image_w / width, 1.0), text_box=(0.0, 0.0, 1.0, split))
    return dataclasses.replace(spec, appearance=caption)
