"""Readable validation reports: a ``ValidationReport`` as an HTML page or a PDF, labelled in
Vietnamese and English for the citizen or clerk who checks a signed document.

Both renderers draw from one description (:func:`describe`), so the page and the PDF always say
the same thing. Every value taken from the file (signer names, issuer names, reasons) is
untrusted: the HTML escapes it, and both strip control characters."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from signing.errors import SigningError
from signing.validation import SignatureResult, ValidationReport

Tone = Literal["ok", "bad", "warn", "neutral"]

INDICATION_LABELS = {
    "TOTAL-PASSED": "Hợp lệ / Valid",
    "TOTAL-FAILED": "Không hợp lệ / Invalid",
    "INDETERMINATE": "Chưa xác định được / Indeterminate",
}
INDICATION_TONES: dict[str, Tone] = {"TOTAL-PASSED": "ok", "TOTAL-FAILED": "bad", "INDETERMINATE": "warn"}

#: What the common EN 319 102-1 sub-indications mean for a reader (others are shown as they are).
SUB_INDICATION_LABELS = {
    "HASH_FAILURE": "Nội dung đã bị thay đổi sau khi ký / The signed content was changed after signing",
    "SIG_CRYPTO_FAILURE": "Giá trị chữ ký không khớp khóa công khai / The signature value does not verify",
    "FORMAT_FAILURE": "Chữ ký sai định dạng hoặc không bao phủ tài liệu / Malformed signature or incomplete coverage",
    "SIG_CONSTRAINTS_FAILURE": "Tài liệu bị sửa đổi không được phép sau khi ký / "
                               "The document was changed in a way that is not permitted after signing",
    "NO_CERTIFICATE_CHAIN_FOUND": "Chứng thư không dẫn đến CA gốc tin cậy / "
                                  "The certificate does not chain to a trusted root",
    "REVOKED": "Chứng thư đã bị thu hồi / The certificate was revoked",
    "REVOKED_NO_POE": "Chứng thư bị thu hồi, không chứng minh được thời điểm ký / "
                      "Revoked certificate, signing time not proven",
    "REVOKED_CA_NO_POE": "Chứng thư CA bị thu hồi / A CA certificate was revoked",
    "TRY_LATER": "Chưa có thông tin thu hồi / Revocation information not yet available",
    "OUT_OF_BOUNDS_NO_POE": "Chứng thư hết hạn hoặc chưa có hiệu lực / Certificate expired or not yet valid",
    "OUT_OF_BOUNDS_NOT_REVOKED": "Chứng thư hết hạn (không bị thu hồi) / Certificate expired (not revoked)",
    "CHAIN_CONSTRAINTS_FAILURE": "Chuỗi chứng thư vi phạm ràng buộc / The certificate chain violates its constraints",
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": "Không kiểm tra được chuỗi chứng thư / "
                                         "The certificate chain could not be checked",
    "TIMESTAMP_ORDER_FAILURE": "Dấu thời gian không hợp lệ / The timestamp is not valid",
    "NO_SIGNATURE_FOUND": "Tài liệu không có chữ ký số / The document has no digital signature",
}
KIND_LABELS = {
    "signature": "Chữ ký số / Signature",
    "certification": "Chữ ký chứng nhận (khóa tài liệu) / Certification signature",
    "document-timestamp": "Dấu thời gian tài liệu / Document timestamp",
}
MODIFICATION_LABELS = {
    "NONE": "Không có thay đổi / No changes",
    "LTA_UPDATES": "Bổ sung dữ liệu kiểm tra, dấu thời gian (DSS) / Validation data and timestamps added (DSS)",
    "FORM_FILLING": "Điền biểu mẫu, chữ ký tiếp theo / Form filling, later signatures",
    "ANNOTATIONS": "Thêm chú thích / Annotations",
    "OTHER": "Thay đổi khác / Other changes",
}
DOCMDP_LABELS = {
    "NO_CHANGES": "Không cho phép thay đổi / No changes allowed",
    "FILL_FORMS": "Cho phép điền biểu mẫu và ký tiếp / Form filling and signing allowed",
    "ANNOTATE": "Cho phép điền biểu mẫu, ký và chú thích / Form filling, signing and annotations allowed",
}
NOT_AVAILABLE = "Không có / None"
UNKNOWN = "Không rõ / Unknown"


@dataclass(frozen=True)
class ReportLine:
    """One labelled value of the report."""

    label: str
    """Bilingual label (``Vietnamese / English``)."""
    value: str
    """The value, as plain text (renderers escape it)."""
    tone: Tone = "neutral"
    """How the value reads: good, bad, a warning, or neutral information."""


@dataclass(frozen=True)
class ReportSection:
    """The overall verdict or one signature, with its lines."""

    title: str
    indication: str
    sub_indication: str | None
    lines: tuple[ReportLine, ...]


@dataclass(frozen=True)
class ReportFont:
    """TrueType files with Vietnamese glyphs for the PDF report."""

    regular: Path
    bold: Path


class ReportFontNotFoundError(SigningError):
    """No TrueType font with Vietnamese glyphs is installed for the PDF report."""


_FONT_CANDIDATES = (
    (Path("/usr/share/fonts/truetype/noto"), "NotoSerif-Regular.ttf", "NotoSerif-Bold.ttf"),
    (Path("/usr/share/fonts/truetype/dejavu"), "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(value: object) -> str:
    """NFC text without control characters: values come from untrusted certificates and PDFs."""
    return _CONTROL.sub("", unicodedata.normalize("NFC", str(value)))


def find_report_font() -> ReportFont:
    """Noto Serif (fonts-noto-core), else DejaVu Serif; :class:`ReportFontNotFoundError` if neither."""
    for folder, regular, bold in _FONT_CANDIDATES:
        if (folder / regular).is_file() and (folder / bold).is_file():
            return ReportFont(folder / regular, folder / bold)
    raise ReportFontNotFoundError("no serif TrueType font with Vietnamese glyphs found; install fonts-noto-core")


# --- the description both renderers use --------------------------------------------------------

def _yes_no(flag: bool | None, yes: str, no: str) -> tuple[str, Tone]:
    if flag is None:
        return UNKNOWN, "warn"
    return (yes, "ok") if flag else (no, "bad")


def _verdict_text(indication: str, sub_indication: str | None) -> str:
    text = f"{indication} — {INDICATION_LABELS.get(indication, indication)}"
    if sub_indication:
        text += f" ({sub_indication}: {SUB_INDICATION_LABELS.get(sub_indication, sub_indication)})"
    return text


def _coverage(sig: SignatureResult, revisions: int) -> tuple[str, Tone]:
    if sig.coverage == "ENTIRE_FILE":
        return "Toàn bộ tệp / The whole file", "ok"
    if sig.coverage == "ENTIRE_REVISION":
        return (f"Phiên bản {sig.signed_revision + 1}/{revisions}; phần sau được thêm sau khi ký / "
                f"Revision {sig.signed_revision + 1} of {revisions}; later revisions were appended", "neutral")
    return (sig.coverage or UNKNOWN), "bad"


def _later_changes(sig: SignatureResult) -> tuple[str, Tone]:
    if sig.modification_level is None and sig.suspicious_modification is None:
        return UNKNOWN, "warn"
    text = MODIFICATION_LABELS.get(sig.modification_level or "OTHER", sig.modification_level or "")
    if sig.suspicious_modification:
        return f"{text}; đáng ngờ / suspicious: {sig.suspicious_modification}", "bad"
    if sig.modification_level == "NONE":
        return text, "ok"
    if sig.modifications_permitted:
        return f"{text}; được phép / permitted", "ok"
    if sig.modifications_permitted is False:
        return f"{text}; không được phép / not permitted", "bad"
    return text, "warn"


def _chain(sig: SignatureResult) -> tuple[str, Tone]:
    if sig.chain_trusted:
        return f"Dẫn đến CA gốc tin cậy / Chains to a trusted root: {sig.trust_root or UNKNOWN}", "ok"
    return "Không dẫn đến CA gốc tin cậy / Does not chain to a trusted root", "bad"


REVOCATION_SOURCES = {
    "embedded": "dữ liệu nhúng trong tài liệu / data embedded in the document",
    "fetched": "tra cứu trực tuyến OCSP/CRL / fetched online (OCSP/CRL)",
    "none": "không có dữ liệu / no data",
}


def _revocation(sig: SignatureResult) -> tuple[str, Tone]:
    """Status, the moment it is about and where the data came from, so a reader can tell
    "checked against the document's own proof" from "asked the CA today"."""
    rev = sig.revocation
    if rev.status == "not_checked":
        return ("Không kiểm tra (không có chuỗi tin cậy, hoặc chữ ký hỏng) / "
                "Not checked (no trusted chain, or a broken signature)"), "neutral"
    where = (f"tại thời điểm / as of {rev.checked_at or UNKNOWN}; "
             f"nguồn / source: {REVOCATION_SOURCES.get(rev.source, rev.source)}")
    if rev.status == "revoked":
        return f"Đã bị thu hồi / Revoked ({rev.revoked_at or UNKNOWN}) — {where}", "bad"
    if rev.status == "good":
        text, tone = f"Chưa bị thu hồi / Not revoked — {where}", "ok"
        if rev.revoked_at:  # revoked after the moment that counts: the signature stands, but say so
            text, tone = f"{text}; bị thu hồi sau đó / revoked later: {rev.revoked_at}", "warn"
        return text, tone
    return f"Không xác định được / Unknown (no usable revocation data) — {where}", "warn"


def _timestamp(sig: SignatureResult) -> tuple[str, Tone]:
    if sig.timestamp_time is None and sig.timestamp_valid is None:
        return NOT_AVAILABLE, "neutral"
    state, tone = _yes_no(sig.timestamp_valid, "hợp lệ / valid", "không hợp lệ / invalid")
    return f"{sig.timestamp_time or UNKNOWN} — {state}", tone


def _signature_section(sig: SignatureResult, index: int, revisions: int) -> ReportSection:
    signer = sig.signer
    lines = [
        ReportLine("Loại / Kind", KIND_LABELS.get(sig.kind, sig.kind)),
        ReportLine("Trường chữ ký / Signature field", sig.field_name),
        ReportLine("Kết quả / Result", _verdict_text(sig.indication, sig.sub_indication),
                   INDICATION_TONES.get(sig.indication, "warn")),
        ReportLine("Toàn vẹn / Integrity", *_yes_no(sig.intact, "Nguyên vẹn / Intact",
                                                     "Đã bị thay đổi / Altered")),
        ReportLine("Giá trị chữ ký / Signature value", *_yes_no(sig.valid, "Đúng / Verifies",
                                                                  "Sai / Does not verify")),
        ReportLine("Người ký / Signer", (signer.name if signer else None) or UNKNOWN),
        ReportLine("Tổ chức / Organisation", (signer.organisation if signer else None) or UNKNOWN),
        ReportLine("Số hiệu chứng thư / Certificate serial", signer.serial if signer else UNKNOWN),
        ReportLine("Tổ chức cấp chứng thư / Certificate issuer", signer.issuer if signer else UNKNOWN),
        ReportLine("Chuỗi chứng thư / Certificate chain", *_chain(sig)),
        ReportLine("Tình trạng thu hồi / Revocation status", *_revocation(sig)),
        ReportLine("Thời điểm ký (người ký khai) / Signing time (claimed)", sig.signing_time or NOT_AVAILABLE),
        ReportLine("Dấu thời gian / Timestamp", *_timestamp(sig)),
        ReportLine("Mức PAdES / PAdES level", sig.pades_level or "Không phải PAdES / Not PAdES"),
        ReportLine("Phạm vi ký / Coverage", *_coverage(sig, revisions)),
        ReportLine("Thay đổi sau khi ký / Changes after signing", *_later_changes(sig)),
    ]
    if sig.docmdp_permission:
        lines.append(ReportLine("Quyền sau chứng nhận / DocMDP permission",
                                DOCMDP_LABELS.get(sig.docmdp_permission, sig.docmdp_permission)))
    lines += [ReportLine("Ghi chú / Note", message, "warn") for message in sig.messages]
    title = f"{index}. {KIND_LABELS.get(sig.kind, sig.kind)}: {(signer.name if signer else None) or sig.field_name}"
    return ReportSection(title, sig.indication, sig.sub_indication, tuple(lines))


def _revocation_counts(counts: dict[str, int]) -> str:
    return (f"chưa thu hồi / good: {counts['good']}; đã thu hồi / revoked: {counts['revoked']}; "
            f"không rõ / unknown: {counts['unknown']}; không kiểm tra / not checked: {counts['not_checked']}")


def _revocation_counts_tone(counts: dict[str, int]) -> Tone:
    if counts["revoked"]:
        return "bad"
    if counts["unknown"]:
        return "warn"
    return "ok" if counts["good"] else "neutral"


def describe(report: ValidationReport, *, document_name: str | None = None,
             generated_at: datetime | None = None) -> list[ReportSection]:
    """The overall verdict followed by one section per signature, as plain text lines."""
    counts = report.to_dict()["summary"]
    summary = [
        ReportLine("Kết quả chung / Overall result", _verdict_text(report.indication, report.sub_indication),
                   INDICATION_TONES.get(report.indication, "warn")),
        ReportLine("Số chữ ký / Signatures", str(counts["signature_count"])),
        ReportLine("Hợp lệ / Passed", str(counts["passed"]), "ok" if counts["passed"] else "neutral"),
        ReportLine("Không hợp lệ / Failed", str(counts["failed"]), "bad" if counts["failed"] else "neutral"),
        ReportLine("Chưa xác định / Indeterminate", str(counts["indeterminate"]),
                   "warn" if counts["indeterminate"] else "neutral"),
        ReportLine("Dẫn đến CA gốc tin cậy / Chain to a trusted root",
                   f"{counts['chains_trusted']}/{counts['signature_count']}",
                   "neutral" if not report.signatures else
                   "ok" if counts["chains_trusted"] == counts["signature_count"] else "bad"),
        ReportLine("Tình trạng thu hồi / Revocation status", _revocation_counts(counts["revocation"]),
                   _revocation_counts_tone(counts["revocation"])),
        ReportLine("Số phiên bản của tệp / Revisions in the file", str(counts["revisions"])),
        ReportLine("Thời điểm kiểm tra / Validated at",
                   (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")),
    ]
    if document_name:
        summary.insert(0, ReportLine("Tệp / File", document_name))
    sections = [ReportSection("Tổng hợp / Summary", report.indication, report.sub_indication, tuple(summary))]
    sections += [_signature_section(sig, n, report.revisions) for n, sig in enumerate(report.signatures, 1)]
    return sections


# --- HTML --------------------------------------------------------------------------------------

TITLE = "Kết quả kiểm tra chữ ký số / Digital signature validation report"
_CSS = """
body{font-family:"Noto Serif","DejaVu Serif",serif;margin:2em auto;max-width:60em;color:#1a1a1a;padding:0 1em}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
.verdict{padding:.8em 1em;border-radius:6px;font-weight:bold;font-size:1.1em}
.verdict.ok{background:#e3f4e1;border:1px solid #3c8d2f} .verdict.bad{background:#fbe3e1;border:1px solid #b3261e}
.verdict.warn{background:#fff4d6;border:1px solid #b07d00}
table{border-collapse:collapse;width:100%} th,td{text-align:left;vertical-align:top;padding:.35em .6em;
border-bottom:1px solid #ddd} th{width:34%;font-weight:normal;color:#444}
td.ok{color:#23661a} td.bad{color:#b3261e;font-weight:bold} td.warn{color:#8a6100}
td{overflow-wrap:anywhere} footer{margin-top:2em;font-size:.85em;color:#666}
"""


def _e(value: object) -> str:
    return html.escape(clean_text(value), quote=True)


def _html_section(section: ReportSection, heading: str) -> str:
    tone = INDICATION_TONES.get(section.indication, "warn")
    rows = "".join(f'<tr><th scope="row">{_e(line.label)}</th><td class="{line.tone}">{_e(line.value)}</td></tr>'
                   for line in section.lines)
    verdict = _e(_verdict_text(section.indication, section.sub_indication))
    return (f'<section><{heading}>{_e(section.title)}</{heading}>'
            f'<p class="verdict {tone}" data-indication="{_e(section.indication)}">{verdict}</p>'
            f"<table>{rows}</table></section>")


def render_html(report: ValidationReport, *, document_name: str | None = None,
                generated_at: datetime | None = None) -> str:
    """A self-contained HTML page (inline CSS, no scripts) for ``report``; every value is escaped."""
    sections = describe(report, document_name=document_name, generated_at=generated_at)
    body = _html_section(sections[0], "h2") + "".join(_html_section(s, "h2") for s in sections[1:])
    return ("<!DOCTYPE html>\n"
            f'<html lang="vi"><head><meta charset="utf-8"><title>{_e(TITLE)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body><h1>{_e(TITLE)}</h1>{body}"
            "<footer>Đánh giá theo ETSI EN 319 102-1 / Assessed per ETSI EN 319 102-1 "
            "(TOTAL-PASSED, TOTAL-FAILED, INDETERMINATE).</footer></body></html>\n")


# --- PDF ---------------------------------------------------------------------------------------

_PDF_COLOURS = {"ok": (35, 102, 26), "bad": (179, 38, 30), "warn": (138, 97, 0), "neutral": (26, 26, 26)}
_PDF_FILL = {"ok": (227, 244, 225), "bad": (251, 227, 225), "warn": (255, 244, 214)}


def _pdf_section(pdf, section: ReportSection) -> None:
    from fpdf.enums import XPos, YPos
    from fpdf.fonts import FontFace

    tone = INDICATION_TONES.get(section.indication, "warn")
    pdf.set_font("serif", "B", 12)
    pdf.set_text_color(*_PDF_COLOURS["neutral"])
    pdf.multi_cell(0, 6.5, clean_text(section.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_fill_color(*_PDF_FILL[tone])
    pdf.set_text_color(*_PDF_COLOURS[tone])
    pdf.multi_cell(0, 6, clean_text(_verdict_text(section.indication, section.sub_indication)), fill=True,
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_fill_color(255, 255, 255)  # fpdf2 tables paint cells with the current fill colour
    pdf.ln(1.5)
    pdf.set_font("serif", "", 9.5)
    with pdf.table(col_widths=(34, 66), text_align="LEFT", first_row_as_headings=False, line_height=4.8,
                   borders_layout="HORIZONTAL_LINES", padding=1) as table:
        for line in section.lines:
            row = table.row()
            row.cell(clean_text(line.label), style=FontFace(color=(68, 68, 68)))
            row.cell(clean_text(line.value), style=FontFace(color=_PDF_COLOURS[line.tone],
                                                           emphasis="BOLD" if line.tone == "bad" else None))
    pdf.ln(5)


def render_pdf(report: ValidationReport, *, document_name: str | None = None, generated_at: datetime | None = None,
               font: ReportFont | None = None) -> bytes:
    """An A4 PDF of the same content as :func:`render_html`, with embedded Vietnamese fonts."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    font = font or find_report_font()
    moment = generated_at or datetime.now(UTC)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(20, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_font("serif", "", str(font.regular))
    pdf.add_font("serif", "B", str(font.bold))
    pdf.set_creation_date(moment)
    pdf.set_creator("docsvc signing.report")
    pdf.set_title(TITLE)
    pdf.add_page()
    pdf.set_font("serif", "B", 15)
    pdf.multi_cell(0, 8, TITLE, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    for section in describe(report, document_name=document_name, generated_at=moment):
        _pdf_section(pdf, section)
    pdf.set_font("serif", "", 8.5)
    pdf.set_text_color(102, 102, 102)
    pdf.multi_cell(0, 4.5, "Đánh giá theo ETSI EN 319 102-1 / Assessed per ETSI EN 319 102-1.",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def render_text(report: ValidationReport, *, document_name: str | None = None) -> str:
    """The same content as plain text, one ``label: value`` per line (terminals, logs)."""
    out = []
    for section in describe(report, document_name=document_name):
        out.append(f"== {clean_text(section.title)}")
        out += [f"   {clean_text(line.label)}: {clean_text(line.value)}" for line in section.lines]
    return "\n".join(out)
