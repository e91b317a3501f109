"""The generated administrative PDF is a real PDF whose Vietnamese text survives extraction."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from docsvc.pdfgen import (
    MOTTO_SUBTITLE,
    NATIONAL_MOTTO,
    AdministrativeDocument,
    FontNotFoundError,
    date_line,
    find_serif_font,
    render_document,
)
from tests.support.tools import require_file

CORPUS_FILE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "quang-dien-chi-thi-12-ct-ubnd.txt"
#: The same sentence as in the corpus file, for checkouts without shared/ beside them.
FALLBACK_SENTENCE = ("Việc gửi, nhận, xử lý văn bản điện tử được liên thông cả 4 cấp hành chính; trên 75% dịch vụ "
                     "công được cung cấp trực tuyến mức độ 3, 4; tổ chức hội nghị trực tuyến được triển khai, "
                     "thông suốt từ tỉnh đến cấp xã, qua đó đã phát huy hiệu quả thiết thực công tác chỉ đạo, "
                     "điều hành.")
needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                     reason="pdftotext missing: apt-get install poppler-utils")


def corpus_sentence() -> str:
    if not CORPUS_FILE.is_file():
        return FALLBACK_SENTENCE
    text = CORPUS_FILE.read_text(encoding="utf-8")
    return next(s.strip() + "." for s in text.split(". ") if s.strip().startswith("Việc gửi, nhận"))


def chi_thi(paragraphs: list[str], **overrides) -> AdministrativeDocument:
    values = dict(
        parent_agency="Ủy ban nhân dân tỉnh Nghệ An", agency="Ủy ban nhân dân huyện Quỳnh Lưu",
        number_symbol="12/CT-UBND", place_date=date_line("Quỳnh Lưu", date(2022, 12, 28)), title="Chỉ thị",
        subject="Về đẩy mạnh cải cách hành chính gắn với chính quyền số", paragraphs=paragraphs,
        signer_competence="TM. Ủy ban nhân dân", signer_position="Chủ tịch", signer_name="Nguyễn Văn An",
        recipients=["UBND các xã, thị trấn", "Lưu: VT, VP"], created=datetime(2022, 12, 28, tzinfo=UTC))
    values.update(overrides)
    return AdministrativeDocument(**values)


def extract_text(pdf: bytes) -> str:
    """The PDF's text as a reader would copy it, with line breaks and runs of spaces collapsed."""
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True)
    return " ".join(out.stdout.decode("utf-8").split())


def page_count(pdf: bytes) -> int:
    out = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def test_output_is_a_complete_pdf():
    pdf = render_document(chi_thi(["Nội dung."]))
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")


@needs_pdftotext
def test_vietnamese_text_survives_extraction():
    sentence = corpus_sentence()
    text = extract_text(render_document(chi_thi([sentence])))
    for expected in (NATIONAL_MOTTO, MOTTO_SUBTITLE, "Độc lập - Tự do - Hạnh phúc", "ỦY BAN NHÂN DÂN HUYỆN QUỲNH LƯU",
                     "Số: 12/CT-UBND", "Quỳnh Lưu, ngày 28 tháng 12 năm 2022", "CHỈ THỊ", "Nơi nhận:",
                     "TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH", "Nguyễn Văn An", sentence):
        assert expected in text, expected


@needs_pdftotext
def test_decomposed_input_comes_out_composed():
    decomposed = unicodedata.normalize("NFD", "Thủ tục hành chính được số hóa")
    text = extract_text(render_document(chi_thi([decomposed])))
    assert "Thủ tục hành chính được số hóa" in text


@needs_pdftotext
def test_a_long_body_flows_onto_more_pages_and_keeps_the_signature_block():
    sentence = corpus_sentence()
    pdf = render_document(chi_thi([sentence] * 25))
    assert page_count(pdf) >= 2
    text = extract_text(pdf)
    assert "Nơi nhận:" in text and "Nguyễn Văn An" in text


def test_same_document_and_date_give_identical_bytes():
    # Reproducible output lets the content-addressed store keep one copy of a re-rendered PDF.
    assert render_document(chi_thi(["Nội dung."])) == render_document(chi_thi(["Nội dung."]))


def test_date_line_pads_days_below_10_and_months_below_3():
    assert date_line("Nghệ An", date(2024, 1, 5)) == "Nghệ An, ngày 05 tháng 01 năm 2024"
    assert date_line("Nghệ An", date(2024, 3, 15)) == "Nghệ An, ngày 15 tháng 3 năm 2024"


def test_noto_serif_is_preferred_when_installed():
    require_file("/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf", "fonts-noto-core")
    assert find_serif_font().regular.name == "NotoSerif-Regular.ttf"


def test_missing_fonts_give_a_clear_error(tmp_path):
    with pytest.raises(FontNotFoundError, match="fonts-noto-core"):
        find_serif_font([tmp_path])
