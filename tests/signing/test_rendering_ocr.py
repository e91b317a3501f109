"""Vietnamese stamp text must RENDER correctly, not only extract correctly: the signed page is
rasterised with poppler's pdftoppm, the stamp region is read back by Tesseract OCR (Vietnamese
model), and the recognised lines are compared with the text we meant to print (diacritics
included) and with where pdftotext and the profile say each line is.

pdftotext alone proves the text layer (ToUnicode map); a font drawing .notdef boxes or the
wrong glyphs still extracts perfectly. OCR of the pixels is what a reader sees.

Only the stamp region is rendered (pdftoppm -x/-y/-W/-H), at a resolution giving the text about
50 px of line height, so every OCR run takes a fraction of a second."""

from __future__ import annotations

import csv
import difflib
import io
import os
import subprocess
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from signing.anchors import PageText, page_text
from signing.images import signature_png
from signing.interfaces import AppearanceSpec, SignatureSpec
from signing.pades import sign_pdf
from signing.profiles import ProfileRequest, signature_spec
from tests.support.pdfs import tiny_pdf, vietnamese_pdf
from tests.support.tools import require_command, require_file

ORG = "Sở Thông tin và Truyền thông tỉnh Nghệ An"  # the test PKI's organisation (tests/signing/conftest.py)
SIGNER = "Nguyễn Văn An"
WHEN = datetime(2024, 3, 5, 3, 15, 30, tzinfo=UTC)
WHEN_TEXT = "2024-03-05T10:15:30+07:00"
MIN_RATIO = 0.85  # difflib similarity of a recognised line with the expected one
MIN_DIACRITICS = 0.8  # share of the expected non-ASCII letters (ễ, ă, Đ …) recognised in place

Rect = tuple[float, float, float, float]


@pytest.fixture(scope="module", autouse=True)
def tesseract() -> None:
    require_command("tesseract", "tesseract-ocr")
    langs = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout.split()
    if "vie" not in langs:
        pytest.fail("tesseract has no Vietnamese model: run scripts/system-deps.sh (tesseract-ocr-vie)")


# --- rendering and OCR ------------------------------------------------------------------------

@dataclass(frozen=True)
class OcrLine:
    text: str
    rect: Rect
    """Ink bounds in PDF points, bottom-left origin."""


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _dpi_for(line_height: float) -> int:
    """About 50 px per text line: Tesseract reads best with capitals ~20-30 px high."""
    return max(300, min(1200, round(3600 / line_height / 50) * 50))


def ocr_region(pdf: Path, page: int, region: Rect, dpi: int, workdir: Path) -> list[OcrLine]:
    """Render ``region`` (PDF points, bottom-left origin) of zero-based ``page`` and OCR it."""
    height = page_text(str(pdf), page).height
    scale = dpi / 72
    x1, y1, x2, y2 = region
    left, top = int(x1 * scale), int((height - y2) * scale)
    stem = workdir / f"ocr-{page}-{int(x1)}-{int(y1)}-{dpi}"
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", "-f", str(page + 1), "-l", str(page + 1),
                    "-x", str(left), "-y", str(top), "-W", str(int((x2 - x1) * scale) + 1),
                    "-H", str(int((y2 - y1) * scale) + 1), str(pdf), str(stem)], check=True, timeout=60)
    # --psm 6: one uniform block of text, which a stamp is. One thread: the machine is shared.
    tsv = subprocess.run(["tesseract", f"{stem}.png", "-", "-l", "vie", "--psm", "6", "tsv"], capture_output=True,
                         text=True, check=True, timeout=60, env={**os.environ, "OMP_THREAD_LIMIT": "1"}).stdout
    lines: dict[tuple[str, str, str], list[dict]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row["level"] == "5" and row["text"].strip():
            lines.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(row)
    out = []
    for words in lines.values():
        px1 = min(int(w["left"]) for w in words)
        py1 = min(int(w["top"]) for w in words)
        px2 = max(int(w["left"]) + int(w["width"]) for w in words)
        py2 = max(int(w["top"]) + int(w["height"]) for w in words)
        rect = ((left + px1) / scale, height - (top + py2) / scale, (left + px2) / scale, height - (top + py1) / scale)
        out.append(OcrLine(_fold(" ".join(w["text"] for w in words)), rect))
    return out


# --- comparing --------------------------------------------------------------------------------

def _ratio(expected: str, got: str) -> float:
    return difflib.SequenceMatcher(None, _fold(expected), _fold(got), autojunk=False).ratio()


def _diacritics_kept(expected: str, got: str) -> float:
    """Share of the expected non-ASCII letters that OCR found at the matching place."""
    expected, got = _fold(expected), _fold(got)
    wanted = [i for i, c in enumerate(expected) if ord(c) > 127]
    if not wanted:
        return 1.0
    matcher = difflib.SequenceMatcher(None, expected, got, autojunk=False)
    kept = {i for a, _, size in matcher.get_matching_blocks() for i in range(a, a + size)}
    return sum(i in kept for i in wanted) / len(wanted)


def _text_line(text: PageText, expected: str, region: Rect):
    """pdftotext's line holding exactly ``expected`` inside ``region`` (the text layer)."""
    for line in text.lines:
        cx, cy = (line.rect[0] + line.rect[2]) / 2, (line.rect[1] + line.rect[3]) / 2
        if _fold(line.text) == _fold(expected) and region[0] <= cx <= region[2] and region[1] <= cy <= region[3]:
            return line
    return None


def rendering_problems(pdf: Path, page: int, region: Rect, expected: list[str], box: Rect,
                       workdir: Path) -> list[str]:
    """What is wrong with how the ``expected`` lines render in ``region``: every line must be
    recognised (similarity ≥ MIN_RATIO, diacritics kept), lie inside the signature ``box``, and
    sit where pdftotext puts the same line, within a tolerance scaled to the text size."""
    text = page_text(str(pdf), page)
    layer = {line: _text_line(text, line, region) for line in expected}
    problems = [f"{line!r} not in the text layer" for line, found in layer.items() if found is None]
    heights = [found.rect[3] - found.rect[1] for found in layer.values() if found is not None]
    line_height = min(heights) if heights else (region[3] - region[1]) / len(expected)
    recognised = ocr_region(pdf, page, region, _dpi_for(line_height), workdir)
    for line in expected:
        best = max(recognised, key=lambda r: _ratio(line, r.text), default=None)
        if best is None or _ratio(line, best.text) < MIN_RATIO:
            problems.append(f"{line!r} not recognised; OCR read {[r.text for r in recognised]!r}")
            continue
        if _diacritics_kept(line, best.text) < MIN_DIACRITICS:
            problems.append(f"{line!r}: diacritics lost, OCR read {best.text!r}")
        if layer[line] is None:
            continue
        lx1, ly1, lx2, ly2 = layer[line].rect
        ox1, oy1, ox2, oy2 = best.rect
        size = ly2 - ly1
        # Ink starts and ends within a side bearing of the text box pdftotext computes from the
        # font's advances, and lies inside its ascent-descent band.
        tol_x, tol_y = 0.2 * size + 0.5, 0.1 * size + 0.5
        if abs(ox1 - lx1) > tol_x or abs(ox2 - lx2) > tol_x:
            problems.append(f"{line!r}: drawn at x {ox1:.1f}..{ox2:.1f}, text layer says {lx1:.1f}..{lx2:.1f}")
        if oy1 < ly1 - tol_y or oy2 > ly2 + tol_y:
            problems.append(f"{line!r}: drawn at y {oy1:.1f}..{oy2:.1f}, outside its line {ly1:.1f}..{ly2:.1f}")
        bx1, by1, bx2, by2 = box
        if ox1 < bx1 - 0.5 or oy1 < by1 - 0.5 or ox2 > bx2 + 0.5 or oy2 > by2 + 0.5:
            problems.append(f"{line!r}: drawn at {best.rect} outside the signature box {box}")
    return problems


def _grow(rect: Rect, by: float) -> Rect:
    return rect[0] - by, rect[1] - by, rect[2] + by, rect[3] + by


# --- the profiles -----------------------------------------------------------------------------

@pytest.fixture
def doc(tmp_path) -> Path:
    path = tmp_path / "vb.pdf"
    path.write_bytes(vietnamese_pdf())
    return path


def _sign(src: Path, out: Path, key, request: ProfileRequest) -> SignatureSpec:
    spec = signature_spec(src, request, key.certificate)
    sign_pdf(src, out, key, spec)
    return spec


def test_personal_details_render_in_vietnamese(doc, tmp_path, rsa_key):
    image = tmp_path / "chu-ky.png"
    image.write_bytes(signature_png(SIGNER))
    out = tmp_path / "signed.pdf"
    spec = _sign(doc, out, rsa_key, ProfileRequest("personal", image_path=str(image), signing_time=WHEN))

    box = spec.appearance.box
    # Only the details' own area of the box (beside or under the signature image): the blue strokes
    # are no text, and the page's own copy of the name sits right under the box.
    tx1, ty1, tx2, ty2 = spec.appearance.text_box
    width, height = box[2] - box[0], box[3] - box[1]
    band = (box[0] + width * tx1, box[1] + height * ty1, box[0] + width * tx2, box[1] + height * ty2)
    assert rendering_problems(out, spec.appearance.page, band, [SIGNER, ORG, WHEN_TEXT], box, tmp_path) == []
    # Legible on paper: each details line is at least 5 pt high as drawn (a third of the short box
    # between position and name used to squeeze them to about 3 pt).
    text = page_text(str(out), spec.appearance.page)
    for line in (SIGNER, ORG, WHEN_TEXT):
        found = _text_line(text, line, band)
        assert found is not None and found.rect[3] - found.rect[1] >= 5.0, (line, found)


def test_attachment_stamp_renders_number_symbol_and_time(doc, tmp_path, rsa_key):
    out = tmp_path / "phu-luc.pdf"
    spec = _sign(doc, out, rsa_key, ProfileRequest("attachment", number_symbol="12/QĐ-UBND", signing_time=WHEN))
    box = spec.appearance.box
    assert rendering_problems(out, 0, _grow(box, 2), ["12/QĐ-UBND", WHEN_TEXT], box, tmp_path) == []


@pytest.mark.parametrize("form", ["SAO LỤC", "TRÍCH SAO"])
def test_copy_stamp_renders_form_organisation_and_time(doc, tmp_path, rsa_key, form):
    out = tmp_path / "ban-sao.pdf"
    spec = _sign(doc, out, rsa_key, ProfileRequest("copy", copy_form=form, signing_time=WHEN))
    box = spec.appearance.box
    assert rendering_problems(out, 0, _grow(box, 2), [form, ORG, WHEN_TEXT], box, tmp_path) == []


# --- the check can fail -----------------------------------------------------------------------

def test_a_font_without_vietnamese_glyphs_is_caught(tmp_path, rsa_key):
    """Noto Sans Math has Latin letters but no Vietnamese ones: ễ, ă, ơ … are drawn as .notdef.
    OCR of the pixels must notice on its own, whatever the text layer says."""
    font = "/usr/share/fonts/truetype/noto/NotoSansMath-Regular.ttf"
    require_file(font, "fonts-noto-core")
    src, out = tmp_path / "in.pdf", tmp_path / "out.pdf"
    src.write_bytes(tiny_pdf())
    box = (100.0, 500.0, 400.0, 560.0)
    sign_pdf(src, out, rsa_key, SignatureSpec(appearance=AppearanceSpec(
        box=box, lines=(SIGNER, ORG), font_path=font, font_size=12, border_width=0)))

    problems = rendering_problems(out, 0, _grow(box, 2), [SIGNER, ORG], box, tmp_path)
    seen = [p for p in problems if "not recognised" in p or "diacritics lost" in p]
    assert len(seen) == 2, problems  # both lines, from the pixels alone
