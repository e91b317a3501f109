"""Anchor text lookup on real PDFs (poppler's pdftotext), in PDF coordinates."""

from __future__ import annotations

from pathlib import Path

import pytest

from signing.anchors import find_in_page, line_above, page_text
from tests.support.pdfs import vietnamese_pdf


@pytest.fixture(scope="module")
def doc(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("anchors") / "vb.pdf"
    path.write_bytes(vietnamese_pdf())
    return path


def test_finds_multi_word_anchor_case_and_form_insensitively(doc):
    text = page_text(str(doc), 0)
    assert (round(text.width), round(text.height)) == (595, 842)
    # Decomposed (NFD) and lower-case input still matches the composed capitals on the page.
    import unicodedata
    matches = find_in_page(text, unicodedata.normalize("NFD", "nơi NHẬN"))
    assert len(matches) == 1
    x1, y1, x2, y2 = matches[0].rect
    assert x1 < 100 and 0 < y1 < y2 < text.height and x2 - x1 > 40  # left column, two words wide
    assert find_in_page(text, "Nơi gửi") == []


def test_line_above_the_name_is_the_position(doc):
    text = page_text(str(doc), 0)
    name = find_in_page(text, "Nguyễn Văn An")[-1]
    above = line_above(text, name.line.rect)
    assert above is not None and above.text == "GIÁM ĐỐC"
    assert above.rect[1] > name.rect[3]  # PDF coordinates: above means a larger y


def test_match_covers_only_the_matched_words(doc):
    text = page_text(str(doc), 0)
    whole = find_in_page(text, "Nguyễn Văn An")[-1].rect
    part = find_in_page(text, "Văn An")[-1].rect
    assert part[0] > whole[0] and part[2] == pytest.approx(whole[2])
