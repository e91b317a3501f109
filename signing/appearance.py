"""Visible signature appearances: the stamp style pyHanko draws for an ``AppearanceSpec``.

``stamp_style`` is the one entry point ``signing.pades`` uses; styles are cached per spec, and the
font is cut down to Vietnamese once per process."""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.stamp import BaseStampStyle, TextStampStyle

from signing.errors import SigningError
from signing.interfaces import AppearanceSpec

_DEFAULT_LINES = ("Ký bởi: %(signer)s", "%(org)s", "Thời gian: %(ts)s")


# --- fonts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _CachedFontFactory(GlyphAccumulatorFactory):
    """Reads the font file once per process, not once per signature."""

    def create_font_engine(self, writer, obj_stream=None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(writer=writer, font_handle=io.BytesIO(_font_bytes(self.font_file)),
                                font_size=self.font_size, obj_stream=obj_stream)


# Latin, Vietnamese (Latin Extended Additional), combining marks, punctuation, ₫ and №.
_VIETNAMESE_RANGES = ((0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x1E00, 0x1EFF),
                      (0x2000, 0x206F), (0x20A0, 0x20BF), (0x2116, 0x2116))


@lru_cache(maxsize=8)
def _font_bytes(path: str) -> bytes:
    """The font cut down once per process to what Vietnamese text needs.

    pyHanko subsets the font for every signature; on the full Noto Serif (thousands of glyphs and
    large layout tables) that costs ~300 ms, on this cut-down copy a few ms."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    try:
        font = TTFont(path)
    except (OSError, ValueError) as exc:
        raise SigningError(f"cannot read font {path}: {exc}") from exc
    options = subset.Options()
    # No GSUB/GPOS: pyHanko re-reads them on every signature, and NFC text needs no shaping
    # (Vietnamese letters are precomposed in U+1E00-1EFF); only kerning is lost.
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[c for low, high in _VIETNAMESE_RANGES for c in range(low, high + 1)])
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@lru_cache(maxsize=32)
def stamp_style(appearance: AppearanceSpec) -> BaseStampStyle:
    """The pyHanko stamp style drawing ``appearance`` (cached: specs are frozen)."""
    font = (_CachedFontFactory(appearance.font_path, font_size=int(appearance.font_size))
            if appearance.font_path else None)
    box_style = TextBoxStyle(font=font, font_size=int(appearance.font_size)) if font else TextBoxStyle(
        font_size=int(appearance.font_size))
    background = None
    if appearance.image_path:
        try:
            from PIL import Image

            background = PdfImage(Image.open(appearance.image_path))
        except OSError as exc:
            raise SigningError(f"cannot read image {appearance.image_path}: {exc}") from exc
    return TextStampStyle(
        stamp_text=unicodedata.normalize("NFC", "\n".join(appearance.lines or _DEFAULT_LINES)),
        text_box_style=box_style,
        background=background,
        border_width=appearance.border_width,
        timestamp_format="%d/%m/%Y %H:%M:%S %z",
    )
