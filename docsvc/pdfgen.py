"""Render a plain A4 Vietnamese administrative document (Decree 30/2020 layout) as a PDF.

Used for demo data and tests: the layout follows Appendix I of Decree 30 closely enough to
look familiar (national motto, agency, number, place and date, title, body, signer block,
recipients), not to be a legally formatted original. Text is embedded with a TrueType font
that has Vietnamese glyphs, so copy-paste and ``pdftotext`` give the text back."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

NATIONAL_MOTTO = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO_SUBTITLE = "Độc lập - Tự do - Hạnh phúc"

_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/noto"),  # fonts-noto-core: preferred, also used for signing stamps
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/truetype/liberation"),
    Path("/usr/share/fonts/truetype/liberation2"),
)


@dataclass(frozen=True)
class SerifFont:
    """Files of one serif family; italic falls back to regular when the family has none."""

    regular: Path
    bold: Path
    italic: Path | None = None


#: Searched in order; the first family whose regular and bold files exist is used.
FONT_CANDIDATES: tuple[tuple[str, str, str], ...] = (
    ("NotoSerif-Regular.ttf", "NotoSerif-Bold.ttf", "NotoSerif-Italic.ttf"),
    ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf"),
    ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf", "LiberationSerif-Italic.ttf"),
)


class FontNotFoundError(RuntimeError):
    """No TrueType serif font with Vietnamese glyphs is installed."""


@dataclass(frozen=True)
class AdministrativeDocument:
    """What goes on the page. All strings are printed as given (after NFC normalisation)."""

    agency: str
    """The issuing agency, printed in capitals, e.g. ``Sở Thông tin và Truyền thông``."""
    number_symbol: str
    """``12/CT-UBND``; printed as ``Số: 12/CT-UBND``."""
    place_date: str
    """``Nghệ An, ngày 05 tháng 3 năm 2024``."""
    title: str
    """Document type name, e.g. ``Chỉ thị``, printed in capitals; empty for a công văn."""
    subject: str
    """Trích yếu, printed under the title."""
    paragraphs: Sequence[str]
    signer_position: str
    signer_name: str
    parent_agency: str | None = None
    """The governing agency printed above ``agency`` (``UBND tỉnh Nghệ An``), if any."""
    signer_competence: str | None = None
    """``TM. Ủy ban nhân dân``, ``KT. Giám đốc`` …, printed above the position."""
    recipients: Sequence[str] = field(default_factory=tuple)
    created: datetime | None = None
    """PDF creation date; fixed values make the output byte-for-byte reproducible."""


def nfc(text: str) -> str:
    """Vietnamese text arrives composed or decomposed; fonts and search want one form."""
    return unicodedata.normalize("NFC", text)


def date_line(place: str, day: date) -> str:
    """``Nghệ An, ngày 05 tháng 3 năm 2024``: Decree 30 pads days below 10 and months below 3."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"{place}, ngày {day.day:02d} tháng {month} năm {day.year}"


def find_serif_font(dirs: Sequence[Path] = _FONT_DIRS) -> SerifFont:
    """The first installed candidate family, or ``FontNotFoundError`` naming what to install."""
    for regular, bold, italic in FONT_CANDIDATES:
        for folder in dirs:
            if (folder / regular).is_file() and (folder / bold).is_file():
                italic_path = folder / italic
                return SerifFont(folder / regular, folder / bold, italic_path if italic_path.is_file() else None)
    raise FontNotFoundError(
        "no serif TrueType font with Vietnamese glyphs found (looked for Noto Serif, DejaVu Serif, "
        f"Liberation Serif in {', '.join(map(str, dirs))}); install fonts-noto-core"
    )


def render_document(doc: AdministrativeDocument, font: SerifFont | None = None) -> bytes:
    """Render ``doc`` on A4 pages and return the PDF bytes."""
    pdf = _new_pdf(font or find_serif_font(), doc.created)
    _header(pdf, doc)
    _title(pdf, doc)
    _body(pdf, doc.paragraphs)
    _closing(pdf, doc)
    return bytes(pdf.output())


# Decree 30 margins: top 20-25 mm, bottom 20-25 mm, left 30-35 mm, right 15-20 mm.
_LEFT, _RIGHT, _TOP, _BOTTOM = 30.0, 15.0, 20.0, 20.0
_LINE = 6.5  # mm per body line at 13 pt, about 1.15 line spacing


def _new_pdf(font: SerifFont, created: datetime | None) -> FPDF:
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(_LEFT, _TOP, _RIGHT)
    pdf.set_auto_page_break(True, margin=_BOTTOM)
    pdf.add_font("serif", "", str(font.regular))
    pdf.add_font("serif", "B", str(font.bold))
    pdf.add_font("serif", "I", str(font.italic or font.regular))
    pdf.set_creation_date(created or datetime.now(UTC))
    pdf.set_creator("docsvc")
    pdf.add_page()
    return pdf


def _column(pdf: FPDF, x: float, y: float, width: float, lines: Sequence[tuple[str, str, float]]) -> float:
    """Print centred lines (text, style, size) in a column starting at (x, y); return the end y."""
    pdf.set_xy(x, y)
    for text, style, size in lines:
        pdf.set_font("serif", style, size)
        pdf.set_x(x)
        pdf.multi_cell(width, size * 0.45, nfc(text), align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    return pdf.get_y()


def _header(pdf: FPDF, doc: AdministrativeDocument) -> None:
    """Agency and number on the left, national motto and place/date on the right."""
    left_width = 70.0
    right_width = pdf.epw - left_width
    top = pdf.get_y()
    agency_lines = [(doc.parent_agency.upper(), "", 12)] if doc.parent_agency else []
    agency_lines += [(doc.agency.upper(), "B", 12), ("", "", 4), (f"Số: {doc.number_symbol}", "", 13)]
    left_end = _column(pdf, _LEFT, top, left_width, agency_lines)
    right_end = _column(pdf, _LEFT + left_width, top, right_width, [
        (NATIONAL_MOTTO, "B", 12), (MOTTO_SUBTITLE, "B", 13), ("", "", 4), (doc.place_date, "I", 13)])
    pdf.set_xy(_LEFT, max(left_end, right_end) + 8)


def _title(pdf: FPDF, doc: AdministrativeDocument) -> None:
    pdf.set_font("serif", "B", 14)
    if doc.title:  # a công văn has no type name above its subject
        pdf.multi_cell(0, 7, nfc(doc.title.upper()), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.multi_cell(0, 7, nfc(doc.subject), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)


def _body(pdf: FPDF, paragraphs: Sequence[str]) -> None:
    pdf.set_font("serif", "", 13)
    for paragraph in paragraphs:
        pdf.multi_cell(0, _LINE, nfc(paragraph.strip()), align="J", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)


def _closing(pdf: FPDF, doc: AdministrativeDocument) -> None:
    """Recipients on the left and the signer block on the right, kept together on one page."""
    block_height = 60.0
    if pdf.get_y() + block_height > pdf.h - _BOTTOM:
        pdf.add_page()
    top = pdf.get_y() + 4
    signer = [(doc.signer_competence.upper(), "B", 13)] if doc.signer_competence else []
    signer += [(doc.signer_position.upper(), "B", 13), ("", "", 30), (doc.signer_name, "B", 13)]
    signer_width = 80.0
    _column(pdf, pdf.w - _RIGHT - signer_width, top, signer_width, signer)
    pdf.set_xy(_LEFT, top)
    pdf.set_font("serif", "B", 12)
    pdf.cell(0, 6, "Nơi nhận:", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("serif", "", 11)
    for recipient in doc.recipients:
        pdf.multi_cell(pdf.epw - signer_width - 5, 5, nfc(f"- {recipient};"), align="L",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
