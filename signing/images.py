"""Development stand-ins for the images Decree 30 puts in signatures: a blue handwritten-looking
signature and a red round seal, both transparent PNGs. Deterministic (same input, same bytes), so
the dev PKI, the demo and tests can make them on the fly. Not for production: real agencies upload
their scanned signature and registered seal."""

from __future__ import annotations

import hashlib
import io
import math
import random
import unicodedata

from PIL import Image, ImageDraw, ImageFont

SEAL_DPI = 300
SEAL_DIAMETER_MM = 40.0
SIGNATURE_INK = (20, 50, 200, 255)
"""Blue ink, as Decree 30 asks for the signature image."""
SEAL_INK = (215, 25, 30, 255)
"""Seal red."""

_FONT_BOLD = "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"
_FONT_ITALIC = "/usr/share/fonts/truetype/noto/NotoSerif-Italic.ttf"


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(unicodedata.normalize("NFC", text).encode()).digest()[:8], "big")


def _font(path: str, size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return ImageFont.load_default(size)


def _png(image: Image.Image, dpi: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", dpi=(dpi, dpi), optimize=False)
    return out.getvalue()


def signature_png(name: str) -> bytes:
    """A blue, transparent, handwritten-looking signature for ``name`` (600×220 px at 300 dpi,
    about 51×19 mm): a flourish drawn from a seed of the name, and the name's initials."""
    rng = random.Random(_seed(name))
    w, h = 600, 220
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    # A looping stroke: a sum of sines, different for every name.
    waves = [(rng.uniform(1.5, 4.5), rng.uniform(15, 45), rng.uniform(0, math.tau)) for _ in range(3)]
    points = []
    for i in range(400):
        t = i / 399
        x = 40 + t * (w - 80) + 25 * math.sin(t * math.tau * 5 + waves[0][2])
        y = h / 2 + sum(a * math.sin(t * math.tau * f + p) for f, a, p in waves)
        points.append((x, y))
    draw.line(points, fill=SIGNATURE_INK, width=9, joint="curve")
    # The underline flourish.
    y0 = h * 0.8
    draw.line([(w * 0.15, y0), (w * 0.55, y0 + 12), (w * 0.9, y0 - 6)], fill=SIGNATURE_INK, width=8, joint="curve")
    initials = "".join(part[0] for part in unicodedata.normalize("NFC", name).split()[-2:]) or "?"
    draw.text((24, 10), initials, font=_font(_FONT_ITALIC, 90), fill=SIGNATURE_INK)
    return _png(image, SEAL_DPI)


def seal_png(organisation: str) -> bytes:
    """A red, transparent round seal for ``organisation``: 40 mm across at 300 dpi (real size),
    two rings, the organisation's name around the ring and a star in the middle."""
    size = round(SEAL_DIAMETER_MM / 25.4 * SEAL_DPI)
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    c = size / 2
    draw.ellipse((4, 4, size - 5, size - 5), outline=SEAL_INK, width=12)
    inner = size * 0.30
    draw.ellipse((c - inner, c - inner, c + inner, c + inner), outline=SEAL_INK, width=6)
    _star(draw, c, c, size * 0.17)
    _ring_text(image, unicodedata.normalize("NFC", organisation).upper(), c, size * 0.40)
    return _png(image, SEAL_DPI)


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float) -> None:
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.4
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    draw.polygon(points, fill=SEAL_INK)


def _ring_text(image: Image.Image, text: str, c: float, radius: float) -> None:
    """Letters around the ring, clockwise from the left, each rotated to face outwards."""
    font = _font(_FONT_BOLD, 34)
    if not text:
        return
    span = min(math.radians(300), len(text) * math.radians(11))
    start = -math.pi / 2 - span / 2
    step = span / max(len(text) - 1, 1)
    for i, letter in enumerate(text):
        angle = start + i * step
        glyph = Image.new("RGBA", (56, 56), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((28, 28), letter, font=font, fill=SEAL_INK, anchor="mm")
        glyph = glyph.rotate(-math.degrees(angle) - 90, resample=Image.BICUBIC)
        x = c + radius * math.cos(angle) - 28
        y = c + radius * math.sin(angle) - 28
        image.alpha_composite(glyph, (round(x), round(y)))
