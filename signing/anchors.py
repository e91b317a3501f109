"""Finding text on a PDF page, so a signature box can be placed relative to words such as the
signer's name or "Nơi nhận" instead of hand-typed coordinates.

Text and its positions come from poppler's ``pdftotext -bbox-layout`` (already a dependency of the
test suite and of the service's validation tools): it understands every font encoding and ToUnicode
map real templates use, which a hand-written content-stream reader would not. Anchors match within
one text line, case-insensitively, after NFC normalisation and whitespace folding."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass

Rect = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)`` in PDF points, origin at the bottom left of the page."""

_XHTML = "{http://www.w3.org/1999/xhtml}"


class AnchorLookupError(Exception):
    """The page text could not be read (pdftotext missing, failed or timed out)."""


@dataclass(frozen=True)
class TextLine:
    """One line of text on a page, with the boxes of its words."""

    text: str
    rect: Rect
    words: tuple[tuple[str, Rect], ...]


@dataclass(frozen=True)
class PageText:
    """The text lines of one page and the page size pdftotext saw."""

    page: int
    """Zero-based page index."""
    width: float
    height: float
    lines: tuple[TextLine, ...]


@dataclass(frozen=True)
class AnchorMatch:
    """Where an anchor text was found."""

    page: int
    rect: Rect
    """Box of the matched words."""
    line: TextLine
    """The whole line holding the match."""


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def page_text(pdf_path: str, page: int, *, timeout: float = 30.0) -> PageText:
    """The text lines of zero-based ``page`` of the PDF at ``pdf_path``."""
    exe = shutil.which("pdftotext")
    if exe is None:
        raise AnchorLookupError("pdftotext (poppler-utils) is not installed; it is needed to find anchor text")
    args = [exe, "-q", "-enc", "UTF-8", "-bbox-layout", "-f", str(page + 1), "-l", str(page + 1), pdf_path, "-"]
    try:
        result = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AnchorLookupError(f"pdftotext timed out on page {page + 1}") from exc
    if result.returncode != 0:
        raise AnchorLookupError(f"pdftotext failed on page {page + 1}: {result.stderr.decode(errors='replace')}")
    try:
        root = ET.fromstring(result.stdout)
    except ET.ParseError as exc:
        raise AnchorLookupError(f"unreadable pdftotext output: {exc}") from exc
    page_el = root.find(f".//{_XHTML}page")
    if page_el is None:
        raise AnchorLookupError(f"pdftotext returned no page {page + 1}")
    height = float(page_el.get("height"))

    def rect(el) -> Rect:  # pdftotext measures from the top left; PDF from the bottom left
        return (float(el.get("xMin")), height - float(el.get("yMax")),
                float(el.get("xMax")), height - float(el.get("yMin")))

    lines = []
    for line_el in page_el.iter(f"{_XHTML}line"):
        words = tuple((w.text or "", rect(w)) for w in line_el.iter(f"{_XHTML}word"))
        if words:
            lines.append(TextLine(" ".join(w for w, _ in words), rect(line_el), words))
    return PageText(page, float(page_el.get("width")), height, tuple(lines))


def find_in_page(text: PageText, anchor: str) -> list[AnchorMatch]:
    """Every line of ``text`` holding ``anchor``, in reading order, with the matched words' box."""
    wanted = _fold(anchor)
    if not wanted:
        return []
    matches = []
    for line in text.lines:
        folded = [_fold(w) for w, _ in line.words]
        joined = " ".join(folded)
        start = joined.find(wanted)
        if start < 0:
            continue
        end = start + len(wanted)
        # Words overlapping [start, end) of the joined line.
        covered, pos = [], 0
        for word, (_, box) in zip(folded, line.words, strict=True):
            if pos < end and pos + len(word) > start:
                covered.append(box)
            pos += len(word) + 1
        matches.append(AnchorMatch(text.page, (min(b[0] for b in covered), min(b[1] for b in covered),
                                               max(b[2] for b in covered), max(b[3] for b in covered)), line))
    return matches


def line_above(text: PageText, rect: Rect, *, max_gap: float = 200.0) -> TextLine | None:
    """The nearest line above ``rect`` that overlaps it horizontally (e.g. the position line above
    the signer's name), within ``max_gap`` points."""
    best = None
    for line in text.lines:
        x1, y1, x2, _ = line.rect
        if y1 < rect[3] - 1.0 or y1 - rect[3] > max_gap:
            continue
        if x2 < rect[0] or x1 > rect[2]:
            continue
        if best is None or y1 < best.rect[1]:
            best = line
    return best
