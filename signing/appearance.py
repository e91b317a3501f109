"""Visible signature appearances: the stamp style pyHanko draws for an ``AppearanceSpec``.

``stamp_style`` is the one entry point ``signing.pades`` uses. The appearance must cost well under
the ~10 ms a whole signature takes, so everything expensive happens once per process, not once per
signature:

* the font is cut down to the glyphs Vietnamese text needs and compressed once per font file; each
  signature embeds those ready-made bytes (a Type0/CIDFontType2 font with a ToUnicode map, so
  copy-paste and ``pdftotext`` give the text back) instead of letting pyHanko subset per signature;
* text is laid out here, from the font's cmap and advance widths (no shaping: NFC Vietnamese is
  precomposed, one code point one glyph);
* an image's pixels are decoded and compressed once per file (path, size and mtime as the key)."""

from __future__ import annotations

import io
import os
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.content import ResourceType
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.stamp import BaseStamp, TextStampStyle

from signing.errors import SigningError
from signing.interfaces import AppearanceSpec

VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")
"""Vietnam time (UTC+07:00, no daylight saving): Decree 30 wants signing times in it."""

_DEFAULT_LINES = ("Ký bởi: %(signer)s", "%(org)s", "Thời gian: %(ts)s")
# pyHanko formats the signing time with this before handing it to the stamp; we parse it back and
# print it in ISO 8601 at +07:00 (strftime's %z cannot write the colon).
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")

# ASCII, Latin-1, the Vietnamese letters outside it (Ă Đ Ĩ Ũ Ơ Ư and U+1EA0-1EF9), dashes, quotes,
# ellipsis, ₫ and №: ~320 glyphs, ~14 KB compressed for Noto Serif or Liberation Serif.
_VIETNAMESE_RANGES = ((0x20, 0x7E), (0xA0, 0xFF), (0x102, 0x103), (0x110, 0x111), (0x128, 0x129),
                      (0x168, 0x169), (0x1A0, 0x1A1), (0x1AF, 0x1B0), (0x1EA0, 0x1EF9), (0x2013, 0x2014),
                      (0x2018, 0x201D), (0x2026, 0x2026), (0x20AB, 0x20AB), (0x2116, 0x2116))


def vietnam_time(moment: datetime) -> str:
    """``moment`` in ISO 8601 at +07:00, to the second: ``2024-03-05T10:15:30+07:00``.
    A naive ``moment`` is taken as Vietnam time already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VIETNAM_TZ)
    return moment.astimezone(VIETNAM_TZ).isoformat(timespec="seconds")


# --- fonts ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EmbeddableFont:
    """A font cut down to Vietnamese once per process, with everything a PDF needs precomputed."""

    base_font: str
    """PostScript name with a subset tag, e.g. ``VNSUBS+LiberationSerif``."""
    gids: dict[int, int]
    """Code point → glyph id in the cut-down font (= CID, the font is embedded with Identity maps)."""
    advances: dict[int, int]
    """Glyph id → advance width in thousandths of an em."""
    ascent: int
    descent: int
    cap_height: int
    bbox: tuple[int, int, int, int]
    font_file: bytes = field(repr=False)
    """The cut-down TrueType program, Flate-compressed."""
    font_file_length: int
    to_unicode: bytes = field(repr=False)
    """The ToUnicode CMap, Flate-compressed."""

    def glyphs(self, text: str) -> list[int]:
        """Glyph ids for ``text`` (NFC); characters the font lacks become .notdef (0)."""
        return [self.gids.get(ord(c), 0) for c in unicodedata.normalize("NFC", text)]

    def width(self, text: str, size: float) -> float:
        """Advance width of ``text`` at ``size`` points, in points."""
        return sum(self.advances.get(g, 0) for g in self.glyphs(text)) * size / 1000.0

    def add_to(self, writer, used: set[int]) -> generic.IndirectObject:
        """Write the font objects into ``writer``; widths are listed for the ``used`` glyphs only."""
        descriptor = generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/FontDescriptor"),
            pdf_name("/FontName"): pdf_name("/" + self.base_font),
            pdf_name("/Flags"): generic.NumberObject(4),
            pdf_name("/FontBBox"): generic.ArrayObject(generic.NumberObject(v) for v in self.bbox),
            pdf_name("/ItalicAngle"): generic.NumberObject(0),
            pdf_name("/Ascent"): generic.NumberObject(self.ascent),
            pdf_name("/Descent"): generic.NumberObject(self.descent),
            pdf_name("/CapHeight"): generic.NumberObject(self.cap_height),
            pdf_name("/StemV"): generic.NumberObject(80),
            pdf_name("/FontFile2"): writer.add_object(generic.StreamObject(
                {pdf_name("/Filter"): pdf_name("/FlateDecode"),
                 pdf_name("/Length1"): generic.NumberObject(self.font_file_length)},
                encoded_data=self.font_file)),
        })
        widths = generic.ArrayObject()
        for gid in sorted(used):
            widths.append(generic.NumberObject(gid))
            widths.append(generic.ArrayObject([generic.NumberObject(self.advances.get(gid, 0))]))
        cid_font = generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/CIDFontType2"),
            pdf_name("/BaseFont"): pdf_name("/" + self.base_font),
            pdf_name("/CIDSystemInfo"): generic.DictionaryObject({
                pdf_name("/Registry"): generic.pdf_string("Adobe"),
                pdf_name("/Ordering"): generic.pdf_string("Identity"),
                pdf_name("/Supplement"): generic.NumberObject(0)}),
            pdf_name("/FontDescriptor"): writer.add_object(descriptor),
            pdf_name("/CIDToGIDMap"): pdf_name("/Identity"),
            pdf_name("/DW"): generic.NumberObject(1000),
            pdf_name("/W"): widths,
        })
        return writer.add_object(generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type0"),
            pdf_name("/BaseFont"): pdf_name("/" + self.base_font),
            pdf_name("/Encoding"): pdf_name("/Identity-H"),
            pdf_name("/DescendantFonts"): generic.ArrayObject([writer.add_object(cid_font)]),
            pdf_name("/ToUnicode"): writer.add_object(generic.StreamObject(
                {pdf_name("/Filter"): pdf_name("/FlateDecode")}, encoded_data=self.to_unicode)),
        }))


@lru_cache(maxsize=8)
def load_font(path: str) -> EmbeddableFont:
    """The font at ``path`` cut down to Vietnamese, cached per process. SigningError if unreadable."""
    from fontTools import subset
    from fontTools.ttLib import TTFont, TTLibError

    try:
        font = TTFont(path)
    except (OSError, TTLibError, ValueError) as exc:
        raise SigningError(f"cannot read font {path}: {exc}") from exc
    if "glyf" not in font:
        raise SigningError(f"font {path} has no TrueType outlines; use a .ttf font")
    options = subset.Options()
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "DSIG", "FFTM"]
    options.hinting = False  # appearances are tiny; hints only add bytes to every signature
    options.notdef_outline = True
    options.name_IDs = ["*"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[c for low, high in _VIETNAMESE_RANGES for c in range(low, high + 1)])
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    program = out.getvalue()
    font = TTFont(io.BytesIO(program))  # re-read: glyph ids are those of the saved program
    order = {name: gid for gid, name in enumerate(font.getGlyphOrder())}
    gids = {cp: order[name] for cp, name in font.getBestCmap().items()}
    scale = 1000.0 / font["head"].unitsPerEm
    advances = {order[name]: round(adv * scale) for name, (adv, _lsb) in font["hmtx"].metrics.items()}
    head, hhea, os2 = font["head"], font["hhea"], font["OS/2"]
    postscript = (font["name"].getDebugName(6) or os.path.splitext(os.path.basename(path))[0]).replace(" ", "")
    return EmbeddableFont(
        base_font=f"VNSUBS+{postscript}", gids=gids, advances=advances,
        ascent=round(hhea.ascent * scale), descent=round(hhea.descent * scale),
        cap_height=round(getattr(os2, "sCapHeight", 0) * scale or hhea.ascent * scale * 0.7),
        bbox=tuple(round(v * scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)),
        font_file=zlib.compress(program, 9), font_file_length=len(program),
        to_unicode=zlib.compress(_to_unicode_cmap(gids), 9))


def _to_unicode_cmap(gids: dict[int, int]) -> bytes:
    first: dict[int, int] = {}
    for cp, gid in sorted(gids.items()):
        first.setdefault(gid, cp)
    entries = [f"<{gid:04X}> <{cp:04X}>" for gid, cp in sorted(first.items()) if cp <= 0xFFFF]
    body = []
    for i in range(0, len(entries), 100):
        chunk = entries[i:i + 100]
        body.append(f"{len(chunk)} beginbfchar\n" + "\n".join(chunk) + "\nendbfchar")
    return ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
            + "\n".join(body) + "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
            ).encode("ascii")


def text_width(font_path: str, text: str, size: float) -> float:
    """Width in points of ``text`` set in the font at ``font_path`` at ``size`` points."""
    return load_font(font_path).width(text, size)


# --- images -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class EmbeddableImage:
    """An image decoded and compressed once: RGB samples plus an alpha soft mask if it has one."""

    width: int
    height: int
    rgb: bytes = field(repr=False)
    alpha: bytes | None = field(repr=False)
    dpi: float | None
    """Resolution recorded in the file (PNG pHYs), if any: gives the image's real size."""

    @property
    def size_pt(self) -> tuple[float, float] | None:
        """Real size in points from the recorded resolution, or ``None``."""
        if not self.dpi:
            return None
        return self.width * 72.0 / self.dpi, self.height * 72.0 / self.dpi

    def add_to(self, writer) -> generic.IndirectObject:
        """Write the image XObject (and its soft mask) into ``writer``."""
        def image(data: bytes, colour_space: str) -> generic.StreamObject:
            return generic.StreamObject({
                pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Image"),
                pdf_name("/Width"): generic.NumberObject(self.width),
                pdf_name("/Height"): generic.NumberObject(self.height),
                pdf_name("/ColorSpace"): pdf_name(colour_space),
                pdf_name("/BitsPerComponent"): generic.NumberObject(8),
                pdf_name("/Filter"): pdf_name("/FlateDecode")}, encoded_data=data)

        main = image(self.rgb, "/DeviceRGB")
        if self.alpha is not None:
            main[pdf_name("/SMask")] = writer.add_object(image(self.alpha, "/DeviceGray"))
        return writer.add_object(main)


def load_image(path: str) -> EmbeddableImage:
    """The image at ``path``, decoded once per (path, size, mtime). SigningError if unreadable."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SigningError(f"cannot read image {path}: {exc.strerror}") from exc
    return _load_image(path, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _load_image(path: str, _size: int, _mtime: int) -> EmbeddableImage:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            dpi = img.info.get("dpi")
            rgba = img.convert("RGBA")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise SigningError(f"cannot read image {path}: {exc}") from exc
    alpha = rgba.getchannel("A")
    opaque = alpha.getextrema() == (255, 255)
    return EmbeddableImage(
        width=rgba.width, height=rgba.height, rgb=zlib.compress(rgba.convert("RGB").tobytes(), 6),
        alpha=None if opaque else zlib.compress(alpha.tobytes(), 6),
        dpi=float(dpi[0]) if dpi and dpi[0] else None)


# --- the stamp --------------------------------------------------------------------------------

def _area(box: BoxConstraints, frac: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = frac
    return box.width * x1, box.height * y1, box.width * x2, box.height * y2


def _interpolate(line: str, params: dict) -> str:
    return _PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))), line)


class _Stamp(BaseStamp):
    """Draws an ``AppearanceSpec``: image in its area, text lines in theirs, optional border."""

    def __init__(self, writer, style: FastStampStyle, box: BoxConstraints, text_params: dict):
        super().__init__(writer, style, box)
        self.spec = style.spec
        self.text_params = text_params

    def _render_inner_content(self):
        spec, commands = self.spec, []
        if spec.image_path:
            commands.append(self._image_commands())
        if spec.draw_text:
            text = self._text_commands()
            if text:
                commands.append(text)
        return commands

    def _image_commands(self) -> bytes:
        image = load_image(self.spec.image_path)
        x1, y1, x2, y2 = _area(self.box, self.spec.image_box)
        scale = min((x2 - x1) / image.width, (y2 - y1) / image.height)
        w, h = image.width * scale, image.height * scale
        x, y = x1 + ((x2 - x1) - w) / 2, y1 + ((y2 - y1) - h) / 2
        self.set_resource(ResourceType.XOBJECT, pdf_name("/Im1"), image.add_to(self.writer))
        return b"q %.3f 0 0 %.3f %.3f %.3f cm /Im1 Do Q" % (w, h, x, y)

    def _lines(self) -> list[str]:
        params = dict(self.text_params)
        ts = params.get("ts")
        if isinstance(ts, str):
            try:
                params["ts"] = vietnam_time(datetime.strptime(ts, _TS_FORMAT))
            except ValueError:
                pass  # a caller-supplied ts: print it as given
        return [unicodedata.normalize("NFC", _interpolate(line, params))
                for line in (self.spec.lines or _DEFAULT_LINES)]

    def _text_commands(self) -> bytes:
        spec = self.spec
        if not spec.font_path:
            raise SigningError("a text appearance needs a font with Vietnamese glyphs (font_path)")
        font = load_font(spec.font_path)
        lines = [line for line in self._lines()]
        if not lines:
            return b""
        x1, y1, x2, y2 = _area(self.box, spec.text_box)
        pad = spec.padding
        avail_w, avail_h = max(x2 - x1 - 2 * pad, 1.0), max(y2 - y1 - 2 * pad, 1.0)
        size = spec.font_size
        if spec.fit_text:
            widest = max(font.width(line, 1.0) for line in lines) or 1.0
            size = min(size, avail_w / widest, avail_h / (len(lines) * spec.line_spacing))
        leading = size * spec.line_spacing
        block = leading * (len(lines) - 1) + size * (font.ascent - font.descent) / 1000.0
        # Vertically centred in the text area; baseline of the first line below the ascent.
        top = y1 + pad + (avail_h + block) / 2
        baseline = top - size * font.ascent / 1000.0
        used: set[int] = set()
        out = [b"BT /F1 %.2f Tf %.3f %.3f %.3f rg" % (size, *spec.text_color)]
        for i, line in enumerate(lines):
            glyphs = font.glyphs(line)
            used.update(glyphs)
            width = sum(font.advances.get(g, 0) for g in glyphs) * size / 1000.0
            if spec.text_align == "center":
                x = x1 + pad + (avail_w - width) / 2
            elif spec.text_align == "right":
                x = x2 - pad - width
            else:
                x = x1 + pad
            y = baseline - i * leading
            out.append(b"1 0 0 1 %.3f %.3f Tm <%s> Tj" % (x, y, "".join(f"{g:04X}" for g in glyphs).encode()))
        out.append(b"ET")
        self.set_resource(ResourceType.FONT, pdf_name("/F1"), font.add_to(self.writer, used))
        return b" ".join(out)


@dataclass(frozen=True)
class FastStampStyle(TextStampStyle):
    """A pyHanko stamp style drawing an ``AppearanceSpec`` from per-process caches.

    It subclasses ``TextStampStyle`` only so that pyHanko hands it the signing time (``ts``)."""

    spec: AppearanceSpec = field(default_factory=AppearanceSpec)
    """What to draw."""

    def create_stamp(self, writer, box: BoxConstraints, text_params: dict) -> _Stamp:
        return _Stamp(writer, self, box, text_params)


@lru_cache(maxsize=64)
def stamp_style(appearance: AppearanceSpec) -> FastStampStyle:
    """The pyHanko stamp style drawing ``appearance`` (cached: specs are frozen).

    Fonts and images are loaded here, so a missing file fails before anything is signed."""
    if appearance.font_path and appearance.draw_text:
        load_font(appearance.font_path)
    if appearance.image_path:
        load_image(appearance.image_path)
    return FastStampStyle(spec=appearance, border_width=appearance.border_width,
                          border_color=appearance.border_color, background=None,
                          timestamp_format=_TS_FORMAT)
