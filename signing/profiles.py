"""The Decree 30/2020 signature appearances as named profiles (Art. 13.7, 17.2; Appendix I §II.7-8,
§III.1, Part II §I), turned into a ``SignatureSpec`` for ``signing.pades.sign_pdf``:

* ``personal`` — the competent person's signature: their blue signature image between the position
  line and the full name (box 7c), with name, organisation and signing time in small type under it;
* ``organisation`` — the agency's signature: its red seal at real size, covering about the left
  third of the competent person's signature (box 8);
* ``attachment`` — the agency's signature on an attachment in a separate file: no image, top right
  of page 1, number/symbol and signing time (ISO 8601, +07:00), Times-compatible 10 pt, black;
* ``copy`` — an electronic copy (SAO Y / SAO LỤC / TRÍCH SAO): copy form, copying agency and time.

Placement is an explicit box, or found from the page: anchor text (the signer's name by default),
the latest personal signature's widget (for the seal), or the top-right corner."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from asn1crypto import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields

from signing import anchors
from signing.appearance import load_font, load_image, vietnam_time
from signing.errors import InvalidPdfError, SigningError
from signing.interfaces import NOTO_SERIF, AppearanceSpec, PadesLevel, SignatureSpec
from signing.pades import DocumentLockedError, locking_signature
from signing.pdf_input import PARSE_ERRORS, PdfSource, input_stream, parse_pdf

ProfileName = Literal["personal", "organisation", "attachment", "copy"]
PROFILES: tuple[ProfileName, ...] = get_args(ProfileName)
COPY_FORMS = ("SAO Y", "SAO LỤC", "TRÍCH SAO")
"""The copy forms of Decree 30 Art. 25 (bản sao y, sao lục, trích sao)."""

MM = 72.0 / 25.4
SEAL_DIAMETER = 40 * MM
"""Seal size when its PNG records no resolution: a common 40 mm round seal."""

#: Times New Roman metric-compatible fonts with Vietnamese glyphs, in order of preference.
TIMES_COMPATIBLE_FONTS = (
    "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",  # Debian fonts-liberation2
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",   # fonts-liberation (2.x)
    "/usr/share/fonts/truetype/croscore/Tinos-Regular.ttf",               # fonts-croscore
)
MAX_COORDINATE = 14400.0
"""The largest page dimension PDF allows (200 inches), in points: no box lies beyond it."""
SIDE_BY_SIDE_BELOW = 60.0
"""personal: a box between position and name lower than this (pt) gets its details beside the image."""
SIDE_BY_SIDE_WIDTH = 230.0
"""personal: the width (pt) of such a box, so the details stay legible (about 6-7 pt)."""
TEXT_STAMP_SIZE = 10.0
"""Decree 30: the attachment/copy stamp text is Times New Roman 10 pt, black."""

# Default field names per profile: the seal looks for the latest *personal* widget by name.
_FIELD_PREFIX = {"personal": "PersonalSignature", "organisation": "OrganisationSignature",
                 "attachment": "AttachmentSignature", "copy": "CopySignature"}
_NOT_PERSONAL = tuple(p for k, p in _FIELD_PREFIX.items() if k != "personal")
_SAMPLE_TIME = "2000-01-01T00:00:00+07:00"  # width stand-in for a time filled in at signing


class ProfileError(SigningError):
    """A profile request that cannot be honoured; ``code`` is stable, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        """One of: ``unknown_profile``, ``invalid_request``, ``image_required``, ``image_unreadable``,
        ``number_symbol_required``, ``unknown_copy_form``, ``anchor_not_found``, ``no_placement``,
        ``page_out_of_range``,
        ``invalid_box``, ``font_missing``, ``anchor_lookup_failed``, ``document_locked`` (an earlier
        signature locked the document). An unreadable PDF is ``InvalidPdfError``."""


@dataclass(frozen=True)
class ProfileRequest:
    """What a caller asks for: a profile and the few facts it needs."""

    profile: ProfileName
    """One of ``PROFILES``."""
    level: PadesLevel = "B-B"
    """PAdES baseline level of the signature."""
    image_path: str | None = None
    """personal: the signer's signature PNG; organisation: the seal PNG. Required for those two."""
    box: tuple[float, float, float, float] | None = None
    """An explicit ``(x1, y1, x2, y2)`` in PDF points; wins over anchors and defaults."""
    page: int | None = None
    """Zero-based page (negative from the end); ``None`` lets the profile choose."""
    anchor_text: str | None = None
    """Text to place against: personal defaults to the certificate's common name."""
    number_symbol: str | None = None
    """attachment: the document's number and symbol, e.g. ``12/CT-UBND``. Required there."""
    copy_form: str | None = None
    """copy: ``SAO Y`` (default), ``SAO LỤC`` or ``TRÍCH SAO``."""
    copying_organisation: str | None = None
    """copy: the agency making the copy; defaults to the certificate's organisation."""
    signing_time: datetime | None = None
    """Time printed in text stamps; ``None`` prints the actual signing time. Shown at +07:00."""
    certify: bool = False
    """Make this a certification (DocMDP) signature."""
    docmdp_permission: str = "fill_forms"
    """For a certification: ``no_changes``, ``fill_forms`` or ``annotate``."""
    lock_document: bool = False
    """Lock the document with this signature (``SignatureSpec.lock``): typically the last one of a
    chain, the organisation's seal after the specialist's initials and the leader's signature.
    Earlier signatures stay valid; afterwards only validation data and document timestamps (B-LT,
    B-LTA) may be added. With ``certify`` it needs ``docmdp_permission="no_changes"``."""
    reason: str | None = None
    location: str | None = None
    field_name: str | None = None
    """Signature field name; ``None`` picks ``<Profile>Signature<N>``."""
    show_details: bool = True
    """personal: print name, organisation and time under the signature image."""


def signature_spec(pdf: PdfSource, request: ProfileRequest, certificate: x509.Certificate) -> SignatureSpec:
    """The ``SignatureSpec`` for ``request`` on ``pdf``, signed with ``certificate``'s key.

    The PDF is read only to place the box (anchors, page size, an earlier personal signature's
    widget for the seal); a stream is left at the position it had. Raises ``ProfileError`` for a bad
    request, ``InvalidPdfError`` for an unreadable PDF."""
    if request.profile not in PROFILES:
        raise ProfileError("unknown_profile",
                           f"unknown signature profile {request.profile!r}; use one of {', '.join(PROFILES)}")
    if request.docmdp_permission not in ("no_changes", "fill_forms", "annotate"):
        raise ProfileError("invalid_request", f"unknown DocMDP permission {request.docmdp_permission!r}")
    _check_request(request)
    with _opened(pdf) as doc:
        try:
            locked_by = locking_signature(doc.reader)
        except PARSE_ERRORS as exc:
            raise InvalidPdfError(f"unreadable signature fields: {exc}") from exc
        if locked_by is not None:
            raise ProfileError("document_locked", str(DocumentLockedError(locked_by)))
        appearance = _BUILDERS[request.profile](doc, request, certificate)
        field_name = request.field_name or doc.free_field_name(_FIELD_PREFIX[request.profile])
    return SignatureSpec(level=request.level, field_name=field_name, reason=request.reason,
                         location=request.location, certify=request.certify,
                         docmdp_permission=request.docmdp_permission, lock=request.lock_document,
                         appearance=appearance)


def _check_request(request: ProfileRequest) -> None:
    if request.lock_document and request.certify and request.docmdp_permission != "no_changes":
        raise ProfileError("invalid_request", f"a locking certification cannot allow {request.docmdp_permission!r}: "
                                              "use docmdp_permission='no_changes' with lock_document")
    if request.profile in ("personal", "organisation"):
        if not request.image_path:
            what = "signature image (blue PNG)" if request.profile == "personal" else "seal image (red PNG)"
            raise ProfileError("image_required", f"the {request.profile} profile needs the {what}: image_path")
        try:
            load_image(request.image_path)
        except SigningError as exc:
            raise ProfileError("image_unreadable", str(exc)) from exc
    if request.profile == "attachment" and not (request.number_symbol or "").strip():
        raise ProfileError("number_symbol_required",
                           "the attachment profile shows the document's number and symbol: number_symbol")
    if request.profile == "copy" and request.copy_form is not None and request.copy_form not in COPY_FORMS:
        raise ProfileError("unknown_copy_form",
                           f"unknown copy form {request.copy_form!r}; use one of {', '.join(COPY_FORMS)}")
    if request.box is not None:
        x1, y1, x2, y2 = request.box
        if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in request.box):
            raise ProfileError("invalid_box", f"box {request.box} must be finite PDF points within "
                                              f"±{MAX_COORDINATE:.0f}")
        if not (x2 > x1 and y2 > y1):
            raise ProfileError("invalid_box", f"box {request.box} must be (x1, y1, x2, y2) with x2 > x1 and y2 > y1")


# --- reading the document ---------------------------------------------------------------------

class _Document:
    """The PDF being placed on: page sizes, signature widgets and page text (read lazily)."""

    def __init__(self, reader: PdfFileReader, path: str) -> None:
        self.reader = reader
        self.path = path
        self.page_count = int(reader.root["/Pages"]["/Count"])
        self._text: dict[int, anchors.PageText] = {}

    def page_index(self, page: int) -> int:
        index = page if page >= 0 else self.page_count + page
        if not 0 <= index < self.page_count:
            raise ProfileError("page_out_of_range", f"page {page} out of range (the document has "
                                                    f"{self.page_count} pages)")
        return index

    def page_box(self, index: int) -> tuple[float, float, float, float]:
        """The visible area (CropBox, else MediaBox, inherited from the page tree) of a page."""
        node = self.reader.find_page_for_modification(index)[0].get_object()
        while node is not None:
            for key in ("/CropBox", "/MediaBox"):
                if key in node:
                    x1, y1, x2, y2 = (float(v) for v in node[key])
                    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)
            node = node.get("/Parent")
            node = node.get_object() if node is not None else None
        return 0.0, 0.0, 595.28, 841.89  # A4, the Decree 30 paper size

    def text(self, index: int) -> anchors.PageText:
        if index not in self._text:
            try:
                self._text[index] = anchors.page_text(self.path, index)
            except anchors.AnchorLookupError as exc:
                raise ProfileError("anchor_lookup_failed", str(exc)) from exc
        return self._text[index]

    def find_anchor(self, anchor: str, page: int | None) -> tuple[anchors.AnchorMatch, anchors.PageText]:
        """The anchor on ``page``, or on the last page holding it; its last occurrence there."""
        pages = [self.page_index(page)] if page is not None else range(self.page_count - 1, -1, -1)
        for index in pages:
            text = self.text(index)
            matches = anchors.find_in_page(text, anchor)
            if matches:
                return matches[-1], text
        where = f"page {page}" if page is not None else "any page"
        raise ProfileError("anchor_not_found", f"anchor text {anchor!r} not found on {where}; "
                                               "give anchor_text that is on the page, or an explicit box")

    def free_field_name(self, prefix: str) -> str:
        existing = {name for name, _, _ in fields.enumerate_sig_fields(self.reader)}
        n = 1
        while f"{prefix}{n}" in existing:
            n += 1
        return f"{prefix}{n}"

    def latest_personal_widget(self, page: int | None) -> tuple[int, tuple[float, float, float, float],
                                                                 tuple[float, float, float, float] | None] | None:
        """(page, rect, image rect) of the last signed, visible signature field that is not an
        organisation, attachment or copy signature; on ``page`` if given. The image rect is where
        its appearance draws the signature image on the page (``None`` if it draws none we can
        follow)."""
        page_of = {self.reader.find_page_for_modification(i)[0].reference: i for i in range(self.page_count)}
        wanted = self.page_index(page) if page is not None else None
        found = None
        for name, value, ref in fields.enumerate_sig_fields(self.reader, filled_status=True):
            if name.startswith(_NOT_PERSONAL) or value is None:
                continue
            field_dict = ref.get_object()
            widgets = [field_dict] if "/Rect" in field_dict else [k.get_object() for k in field_dict.get("/Kids", [])]
            for widget in widgets:
                rect = _rect(widget.get("/Rect"))
                p = widget.raw_get("/P") if "/P" in widget else None
                index = page_of.get(p.reference) if isinstance(p, generic.IndirectObject) else self._page_holding(ref)
                if rect and index is not None and (wanted is None or index == wanted):
                    found = (index, rect, widget)
        if found is None:
            return None
        index, rect, widget = found
        return index, rect, drawn_image_rect(widget, rect)

    def _page_holding(self, ref) -> int | None:
        for i in range(self.page_count):
            annots = self.reader.find_page_for_modification(i)[0].get_object().get("/Annots", [])
            if any(isinstance(a, generic.IndirectObject) and a.reference == ref.reference for a in annots):
                return i
        return None


Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _concat(m: Matrix, n: Matrix) -> Matrix:
    """``m`` then ``n`` (PDF row-vector convention: a point p maps to p·m·n)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + b * c2, a * b2 + b * d2, c * a2 + d * c2, c * b2 + d * d2,
            e * a2 + f * c2 + e2, e * b2 + f * d2 + f2)


def _bounds(m: Matrix, x1: float, y1: float, x2: float, y2: float) -> tuple[float, float, float, float]:
    a, b, c, d, e, f = m
    xs, ys = [], []
    for x, y in ((x1, y1), (x1, y2), (x2, y1), (x2, y2)):
        xs.append(a * x + c * y + e)
        ys.append(b * x + d * y + f)
    return min(xs), min(ys), max(xs), max(ys)


def _matrix(value) -> Matrix:
    return tuple(float(v) for v in value) if value is not None else _IDENTITY  # type: ignore[return-value]


_MAX_FORMS_READ = 64
"""Form XObjects one appearance may make us parse: a form drawing another k times, nested, would
otherwise cost k**depth parses (an appearance crafted to stall signing)."""


def _images_in_form(form, ctm: Matrix, depth: int = 0, budget: list[int] | None = None
                    ) -> list[tuple[float, float, float, float]]:
    """Page-space bounds of every image a form XObject draws, following nested forms. ``ctm``
    maps the form's own space to the page; ``budget`` counts the forms still allowed to be read."""
    from pyhanko.pdf_utils.content_stream_parser import parse_content_stream

    budget = [_MAX_FORMS_READ] if budget is None else budget
    if depth > 8 or budget[0] <= 0:  # a form drawing itself, absurd nesting or fan-out: give up here
        return []
    budget[0] -= 1
    resources = form.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    xobjects = xobjects.get_object() if xobjects is not None else {}
    found, stack = [], []
    for op in parse_content_stream([form]):
        if op.op == "q":
            stack.append(ctm)
        elif op.op == "Q" and stack:
            ctm = stack.pop()
        elif op.op == "cm" and len(op.args) == 6:
            ctm = _concat(tuple(float(v) for v in op.args), ctm)  # type: ignore[arg-type]
        elif op.op == "Do" and op.args and op.args[0] in xobjects:
            xobject = xobjects[op.args[0]].get_object()
            if xobject.get("/Subtype") == "/Image":
                found.append(_bounds(ctm, 0.0, 0.0, 1.0, 1.0))  # an image fills the unit square
            elif xobject.get("/Subtype") == "/Form":
                found += _images_in_form(xobject, _concat(_matrix(xobject.get("/Matrix")), ctm), depth + 1, budget)
    return found


def drawn_image_rect(widget, rect: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    """Where a widget's normal appearance draws its image(s) on the page: the union of their
    bounds, or ``None`` without an image (or with an appearance we cannot read).

    The signature image is drawn scaled and centred inside the widget, often much narrower than
    the widget's box, so the seal must be placed against this, not against ``/Rect``. The
    appearance's /BBox (through its /Matrix) is mapped onto ``rect`` (ISO 32000-2 §12.5.5)."""
    try:
        appearance = widget["/AP"]["/N"].get_object()
        if "/BBox" not in appearance:  # a dictionary of states, not one appearance
            return None
        matrix = _matrix(appearance.get("/Matrix"))
        bx1, by1, bx2, by2 = _bounds(matrix, *(float(v) for v in appearance["/BBox"]))
        if bx2 - bx1 <= 0 or by2 - by1 <= 0:
            return None
        sx, sy = (rect[2] - rect[0]) / (bx2 - bx1), (rect[3] - rect[1]) / (by2 - by1)
        to_rect = (sx, 0.0, 0.0, sy, rect[0] - bx1 * sx, rect[1] - by1 * sy)
        images = _images_in_form(appearance, _concat(matrix, to_rect))
    except PARSE_ERRORS:
        # Inline images, broken streams, odd operands: fall back to the widget's box.
        return None
    if not images:
        return None
    return (min(i[0] for i in images), min(i[1] for i in images),
            max(i[2] for i in images), max(i[3] for i in images))


def _rect(value) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    x1, y1, x2, y2 = (float(v) for v in value)
    x1, x2, y1, y2 = min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2)
    return (x1, y1, x2, y2) if x2 - x1 > 1 and y2 - y1 > 1 else None


@contextmanager
def _opened(pdf: PdfSource) -> Iterator[_Document]:
    temp = None
    with input_stream(pdf) as stream:
        position = stream.tell()
        stream.seek(0)
        try:
            reader = parse_pdf(stream, lambda s: PdfFileReader(s, strict=False))
            if isinstance(pdf, (str, os.PathLike)):
                path = os.fspath(pdf)
            else:  # pdftotext needs a file
                stream.seek(0)
                fd, temp = tempfile.mkstemp(prefix=".profile-", suffix=".pdf")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(stream.read())
                path = temp
            yield _Document(reader, path)
        except PARSE_ERRORS as exc:
            raise InvalidPdfError(f"unreadable PDF structure: {exc}") from exc
        finally:
            if temp:
                os.unlink(temp)
            stream.seek(position)


# --- the profiles -----------------------------------------------------------------------------

def _common_name(cert: x509.Certificate) -> str:
    return cert.subject.native.get("common_name", "") or ""


def _organisation(cert: x509.Certificate) -> str:
    return cert.subject.native.get("organization_name", "") or ""


def _time_text(request: ProfileRequest) -> str:
    return vietnam_time(request.signing_time) if request.signing_time else "%(ts)s"


def _page_or_last(doc: _Document, page: int | None) -> int:
    return doc.page_index(page if page is not None else -1)


def _personal(doc: _Document, request: ProfileRequest, cert: x509.Certificate) -> AppearanceSpec:
    name = _common_name(cert)
    lines = (name, _organisation(cert), _time_text(request)) if request.show_details else ()
    # Image above, details in small type below; the whole widget stays between the two lines.
    style = dict(image_path=request.image_path, border_width=0, lines=lines, draw_text=bool(lines),
                 image_box=(0.0, 0.34 if lines else 0.0, 1.0, 1.0), text_box=(0.0, 0.0, 1.0, 0.34),
                 text_align="center", font_size=7.0, fit_text=True, padding=0.5, line_spacing=1.1)
    if request.box is not None:
        return AppearanceSpec(page=_page_or_last(doc, request.page), box=request.box, **style)
    anchor = request.anchor_text or name
    if not anchor:
        raise ProfileError("no_placement", "the certificate has no common name to anchor on; give anchor_text or box")
    match, text = doc.find_anchor(anchor, request.page)
    x1, y1, x2, y2 = match.line.rect
    above = anchors.line_above(text, match.line.rect)
    # Between the position line and the name; without a line above, a 60 pt high box.
    top = above.rect[1] - 1.0 if above is not None else y2 + 60.0
    bottom = y2 + 1.0
    if top - bottom < 20.0:
        raise ProfileError("no_placement", f"no room between the line above and {anchor!r} "
                                           f"({top - bottom:.0f} pt); give an explicit box")
    width = max(x2 - x1 + 40.0, 150.0)
    if lines and top - bottom < SIDE_BY_SIDE_BELOW:
        # A third of a short box would print the details in 3-4 pt type: put them beside the image
        # in a wider box instead (the signature block spans the right half of an A4 page).
        width = max(width, SIDE_BY_SIDE_WIDTH)
        style.update(image_box=(0.0, 0.0, 0.42, 1.0), text_box=(0.42, 0.0, 1.0, 1.0), text_align="left")
    centre = (x1 + x2) / 2
    return AppearanceSpec(page=match.page, box=(centre - width / 2, bottom, centre + width / 2, top), **style)


def _organisation_seal(doc: _Document, request: ProfileRequest, cert: x509.Certificate) -> AppearanceSpec:
    image = load_image(request.image_path)
    width, height = image.size_pt or (SEAL_DIAMETER, SEAL_DIAMETER)
    style = dict(image_path=request.image_path, border_width=0, draw_text=False)
    if request.box is not None:
        return AppearanceSpec(page=_page_or_last(doc, request.page), box=request.box, **style)
    personal = doc.latest_personal_widget(request.page)
    if personal is not None:
        page, widget_box, image_box = personal
        # Decree 30: the seal covers about the left third of the signature IMAGE. The image is
        # scaled to fit and centred in its widget (often far narrower than the box), so measure
        # where the appearance really draws it; the box is only a fallback.
        x1, y1, x2, y2 = image_box or widget_box
        right = x1 + (x2 - x1) / 3
        middle = (y1 + y2) / 2
        box = (right - width, middle - height / 2, right, middle + height / 2)
        return AppearanceSpec(page=page, box=box, **style)
    if request.anchor_text:
        match, _ = doc.find_anchor(request.anchor_text, request.page)
        mx1, my1, mx2, my2 = match.rect
        cx, cy = mx1, (my1 + my2) / 2  # centred on the anchor's left edge
        return AppearanceSpec(page=match.page, box=(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2),
                              **style)
    raise ProfileError("no_placement", "no personal signature to put the seal on; give anchor_text or an explicit box")


def _times_font() -> str:
    for path in TIMES_COMPATIBLE_FONTS:
        if os.path.isfile(path):
            return path
    raise ProfileError("font_missing", "no Times New Roman compatible font with Vietnamese glyphs is installed "
                                       "(install the Debian package fonts-liberation2)")


def _top_right_stamp(doc: _Document, request: ProfileRequest, lines: tuple[str, ...]) -> AppearanceSpec:
    font_path = _times_font()
    try:
        font = load_font(font_path)
    except SigningError as exc:
        raise ProfileError("font_missing", str(exc)) from exc
    style = dict(lines=lines, font_path=font_path, font_size=TEXT_STAMP_SIZE, border_width=0,
                 text_align="left", padding=2.0, line_spacing=1.15)
    page = doc.page_index(request.page if request.page is not None else 0)
    if request.box is not None:
        return AppearanceSpec(page=page, box=request.box, **style)
    widest = max(font.width(line.replace("%(ts)s", _SAMPLE_TIME), TEXT_STAMP_SIZE) for line in lines)
    width = widest + 2 * 2.0 + 2.0
    height = TEXT_STAMP_SIZE * (1.15 * (len(lines) - 1) + (font.ascent - font.descent) / 1000.0) + 2 * 2.0 + 2.0
    px1, _py1, px2, py2 = doc.page_box(page)
    # Top right of the page: right edge on the 15 mm right margin, 5 mm below the top edge, so the
    # stamp sits in the top margin band (20-25 mm) above the document's own text.
    right, top = px2 - 15 * MM, py2 - 5 * MM
    return AppearanceSpec(page=page, box=(max(px1, right - width), top - height, right, top), **style)


def _attachment(doc: _Document, request: ProfileRequest, cert: x509.Certificate) -> AppearanceSpec:
    return _top_right_stamp(doc, request, (request.number_symbol.strip(), _time_text(request)))


def _copy(doc: _Document, request: ProfileRequest, cert: x509.Certificate) -> AppearanceSpec:
    organisation = request.copying_organisation or _organisation(cert)
    if not organisation:
        raise ProfileError("no_placement", "the copy profile shows the copying agency: give copying_organisation")
    return _top_right_stamp(doc, request, (request.copy_form or "SAO Y", organisation, _time_text(request)))


_BUILDERS = {"personal": _personal, "organisation": _organisation_seal, "attachment": _attachment, "copy": _copy}

__all__ = ["COPY_FORMS", "PROFILES", "ProfileError", "ProfileName", "ProfileRequest", "signature_spec",
           "NOTO_SERIF"]
