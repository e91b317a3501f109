"""PDF builders for the signing tests: plain documents, a big one, an encrypted one, and an
incremental update that changes page content after signing (the attack the validator must flag)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from tests.support.factories import tiny_pdf

__all__ = ["tiny_pdf", "big_pdf", "write_big_pdf", "encrypted_pdf", "vietnamese_pdf", "append_content_change"]


def vietnamese_pdf() -> bytes:
    """A one-page administrative document in Vietnamese, rendered by docsvc's own generator."""
    from docsvc.pdfgen import AdministrativeDocument, render_document

    return render_document(AdministrativeDocument(
        agency="Sở Thông tin và Truyền thông", parent_agency="UBND tỉnh Nghệ An",
        number_symbol="12/QĐ-STTTT", place_date="Nghệ An, ngày 05 tháng 3 năm 2024",
        title="Quyết định", subject="Về việc thử nghiệm chữ ký số trên văn bản điện tử",
        paragraphs=("Căn cứ Luật Giao dịch điện tử năm 2023;", "Điều 1. Thử nghiệm ký số văn bản."),
        signer_position="Giám đốc", signer_name="Nguyễn Văn An"))


def big_pdf(size: int) -> bytes:
    """A valid one-page PDF of about ``size`` bytes: the bulk is an unreferenced stream of random bytes."""
    out = io.BytesIO()
    write_big_pdf(out, size)
    return out.getvalue()


def write_big_pdf(stream, size: int) -> None:
    """Write a valid PDF of about ``size`` bytes to ``stream`` without holding it in memory."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        None,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    content = b"BT /F1 24 Tf 72 720 Td (Big file) Tj ET"
    objects[3] = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
    pos, offsets = 0, []

    def write(data: bytes) -> None:
        nonlocal pos
        stream.write(data)
        pos += len(data)

    write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    for number, body in enumerate(objects, 1):
        offsets.append(pos)
        write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    bulk = max(size - 1024, 0)
    offsets.append(pos)
    write(b"6 0 obj\n<< /Length %d >>\nstream\n" % bulk)
    chunk = os.urandom(1024 * 1024)
    remaining = bulk
    while remaining:
        n = min(remaining, len(chunk))
        write(chunk[:n])
        remaining -= n
    write(b"\nendstream\nendobj\n")
    xref = pos
    write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
    write(b"".join(b"%010d 00000 n \n" % off for off in offsets))
    write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref))


def encrypted_pdf(password: str = "mật khẩu") -> bytes:
    """``tiny_pdf`` encrypted with a user password (AES-256)."""
    from pyhanko.pdf_utils.crypt import StandardSecurityHandler
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    reader = PdfFileReader(io.BytesIO(tiny_pdf("Secret")))
    writer = copy_into_new_writer(reader)
    writer._assign_security_handler(StandardSecurityHandler.build_from_pw(password, password))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def append_content_change(path: Path, text: str = "FORGED") -> None:
    """Append an incremental update that replaces page 1's content stream (no new signature)."""
    data = path.read_bytes()
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    content = f"BT /F1 36 Tf 72 400 Td ({text}) Tj ET".encode()
    stream = writer.add_object(generic.StreamObject(stream_data=content))
    page["/Contents"] = stream
    writer.update_container(page)
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    path.write_bytes(out.getvalue())
