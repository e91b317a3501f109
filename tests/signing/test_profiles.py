"""Decree 30/2020 signature profiles, signed for real and checked with poppler: pdfsig for validity,
pdftotext -bbox for the stamp text and its position, pdftoppm for where the ink lands."""

from __future__ import annotations

import io
import re
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from signing.errors import InvalidPdfError
from signing.images import seal_png, signature_png
from signing.pades import sign_pdf
from signing.profiles import ProfileError, ProfileRequest, signature_spec
from signing.validation import validate_pdf
from tests.support.pdfs import tiny_pdf, vietnamese_pdf

ORG = "Sở Thông tin và Truyền thông tỉnh Nghệ An"
MM = 72 / 25.4


@pytest.fixture
def doc(tmp_path) -> Path:
    path = tmp_path / "vb.pdf"
    path.write_bytes(vietnamese_pdf())
    return path


@pytest.fixture
def signature_image(tmp_path, pki) -> str:
    path = tmp_path / "chu-ky.png"
    path.write_bytes(signature_png("Nguyễn Văn An"))
    return str(path)


@pytest.fixture
def seal_image(tmp_path) -> str:
    path = tmp_path / "con-dau.png"
    path.write_bytes(seal_png(ORG))
    return str(path)


def _sign(src: Path, out: Path, key, request: ProfileRequest):
    spec = signature_spec(src, request, key.certificate)
    sign_pdf(src, out, key, spec)
    return spec


def _words(pdf: Path, page: int = 1) -> tuple[float, list[tuple[str, tuple[float, float, float, float]]]]:
    """(page height, [(word, (xMin, yMin, xMax, yMax) top-left origin)]) from pdftotext -bbox."""
    html = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
                          capture_output=True, check=True).stdout
    root = ET.fromstring(html)
    ns = "{http://www.w3.org/1999/xhtml}"
    page_el = root.find(f".//{ns}page")
    words = [(w.text, tuple(float(w.get(k)) for k in ("xMin", "yMin", "xMax", "yMax")))
             for w in root.iter(f"{ns}word")]
    return float(page_el.get("height")), words


DPI = 144  # thin pen strokes need more than 72 dpi to come out as coloured pixels


def _render(pdf: Path, tmp_path: Path, name: str) -> Image.Image:
    subprocess.run(["pdftoppm", "-r", str(DPI), "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / name)],
                   check=True)
    return Image.open(next(tmp_path.glob(f"{name}*.png"))).convert("RGB")


def _ink(image: Image.Image, kind: str) -> list[tuple[float, float]]:
    """Points (in PDF points, top-left origin) of blue (signature) or red (seal) ink."""
    px, out, scale = image.load(), [], 72 / DPI
    for y in range(image.height):
        for x in range(image.width):
            r, g, b = px[x, y]
            if (kind == "blue" and b > r + 60 and b > g + 40) or (kind == "red" and r > g + 80 and r > b + 80):
                out.append((x * scale, y * scale))
    return out


def _valid(pdfsig, pdf: Path, count: int = 1) -> None:
    report = pdfsig(pdf)
    assert report.count("Signature is Valid.") == count, report


def _pixel_box(page_height: float, box) -> tuple[float, float, float, float]:
    """A PDF box (bottom-left origin) in top-left-origin coordinates, as pdftotext and _ink give."""
    x1, y1, x2, y2 = box
    return x1, page_height - y2, x2, page_height - y1


def _inside(points, box, slack=1.5) -> bool:
    x1, y1, x2, y2 = box
    return all(x1 - slack <= x <= x2 + slack and y1 - slack <= y <= y2 + slack for x, y in points)


# --- personal ---------------------------------------------------------------------------------

def test_personal_signature_sits_between_position_and_name(doc, tmp_path, rsa_key, pki, pdfsig, signature_image):
    out = tmp_path / "signed.pdf"
    spec = _sign(doc, out, rsa_key, ProfileRequest("personal", image_path=signature_image))
    _valid(pdfsig, out)
    assert validate_pdf(out, [pki.root.asn1]).indication == "TOTAL-PASSED"

    height, words = _words(out)
    position = [b for w, b in words if w == "ĐỐC"][0]
    name = [b for w, b in words if w == "Nguyễn"][-1]
    # The box lies below the position line and above the name (pdftotext top-left coordinates).
    bx1, by1, bx2, by2 = _pixel_box(height, spec.appearance.box)
    assert by1 >= position[3] - 1 and by2 <= name[1] + 1
    assert bx1 < name[0] and bx2 > name[2]  # centred over the name
    blue = _ink(_render(out, tmp_path, "p"), "blue")
    assert len(blue) > 50, "no blue signature ink on the page"
    assert _inside(blue, (bx1, by1, bx2, by2)), "blue ink outside the signature box"
    # Name, organisation (with diacritics) and +07:00 time are in the stamp's text.
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert ORG in text
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", text)


def test_personal_anchor_defaults_to_the_common_name(doc, tmp_path, ec_key, signature_image):
    # The EC signer's name is not on the page: a clear error, no output.
    with pytest.raises(ProfileError) as err:
        signature_spec(doc, ProfileRequest("personal", image_path=signature_image), ec_key.certificate)
    assert err.value.code == "anchor_not_found" and "Trần Thị Bích Ngọc" in str(err.value)
    spec = signature_spec(doc, ProfileRequest("personal", image_path=signature_image, anchor_text="nguyễn văn an"),
                          ec_key.certificate)
    assert spec.appearance.page == 0


def test_explicit_box_wins_over_anchor(doc, signature_image, rsa_key):
    box = (100.0, 100.0, 250.0, 160.0)
    spec = signature_spec(doc, ProfileRequest("personal", image_path=signature_image, box=box,
                                              anchor_text="not on the page"), rsa_key.certificate)
    assert spec.appearance.box == box


# --- organisation -----------------------------------------------------------------------------

def _ink_bbox(image: Image.Image, kind: str) -> tuple[float, float, float, float] | None:
    """Bounds (PDF points, top-left origin) of the blue or red ink of a page rendering, with the
    same colour tests as ``_ink`` but done by PIL on whole channels (a page is ~2 M pixels)."""
    from PIL import ImageChops

    r, g, b = image.split()
    if kind == "blue":
        mask = ImageChops.multiply(ImageChops.subtract(b, r).point(lambda v: 255 if v > 60 else 0),
                                   ImageChops.subtract(b, g).point(lambda v: 255 if v > 40 else 0))
    else:
        mask = ImageChops.multiply(ImageChops.subtract(r, g).point(lambda v: 255 if v > 80 else 0),
                                   ImageChops.subtract(r, b).point(lambda v: 255 if v > 80 else 0))
    box = mask.getbbox()
    scale = 72 / DPI
    return tuple(v * scale for v in box) if box else None


@pytest.mark.parametrize("box", [None, (300.0, 300.0, 520.0, 340.0)], ids=["on-the-name", "wide-explicit-box"])
def test_seal_covers_the_left_third_of_the_signature_image(doc, tmp_path, rsa_key, pki, pdfsig, signature_image,
                                                            seal_image, box):
    personal, sealed = tmp_path / "1.pdf", tmp_path / "2.pdf"
    first = _sign(doc, personal, rsa_key, ProfileRequest("personal", image_path=signature_image, box=box))
    second = _sign(personal, sealed, rsa_key, ProfileRequest("organisation", image_path=seal_image))

    _valid(pdfsig, sealed, 2)  # the personal signature stays valid after the seal's incremental update
    result = validate_pdf(sealed, [pki.root.asn1])
    assert [s.indication for s in result.signatures] == ["TOTAL-PASSED", "TOTAL-PASSED"]
    assert second.appearance.page == first.appearance.page
    sx1, sy1, sx2, sy2 = second.appearance.box
    assert sx2 - sx1 == pytest.approx(40 * MM, abs=1) and sy2 - sy1 == pytest.approx(40 * MM, abs=1)  # real size

    # Blue ink of the signature before the seal, red ink of the seal after it (top-left origin).
    bx1, by1, bx2, by2 = _ink_bbox(_render(personal, tmp_path, "p"), "blue")
    assert bx2 - bx1 > 20, "no blue signature ink on the page"
    rendered = _render(sealed, tmp_path, "s")
    rx1, ry1, rx2, ry2 = _ink_bbox(rendered, "red")
    # The signature image is narrower than its widget (scaled to fit, centred): the seal must
    # reach about a third into the INK, not a third into the widget box.
    covered = (rx2 - bx1) / (bx2 - bx1)
    assert 0.25 <= covered <= 0.42, f"the seal covers {covered:.0%} of the signature from the left"
    assert rx1 < bx1, "the seal must come from the left of the signature"
    assert ry1 < by1 and ry2 > by2, "the seal spans the signature's height"
    height, _ = _words(sealed)
    assert _inside([(rx1, ry1), (rx2, ry2)], _pixel_box(height, second.appearance.box), slack=2)
    # The signature's right two thirds are not under red ink: its blue ink is still seen there.
    right_part = _ink_bbox(rendered.crop((round(rx2 * DPI / 72) + 2, 0, rendered.width, rendered.height)), "blue")
    assert right_part is not None and right_part[2] - right_part[0] > (bx2 - bx1) * 0.5


def test_seal_finds_the_image_in_another_tools_appearance(doc, tmp_path, rsa_key, seal_image, signature_image):
    """A personal signature made elsewhere (pyHanko's stock stamp: the image in nested forms,
    shrunk to fit a wide box): the seal still covers the left third of the image's ink."""
    from pyhanko.pdf_utils.images import PdfImage
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import TextStampStyle

    personal, sealed = tmp_path / "1.pdf", tmp_path / "2.pdf"
    style = TextStampStyle(stamp_text="Ký: %(signer)s", background=PdfImage(Image.open(signature_image)),
                           background_opacity=1.0)
    out = io.BytesIO()
    signers.PdfSigner(signers.PdfSignatureMetadata(field_name="ChuKy"), rsa_key.signer(), stamp_style=style,
                      new_field_spec=fields.SigFieldSpec("ChuKy", box=(300, 300, 520, 340))).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(doc.read_bytes()), strict=False), output=out)
    personal.write_bytes(out.getvalue())
    _sign(personal, sealed, rsa_key, ProfileRequest("organisation", image_path=seal_image))

    bx1, _, bx2, _ = _ink_bbox(_render(personal, tmp_path, "p"), "blue")
    rx1, _, rx2, _ = _ink_bbox(_render(sealed, tmp_path, "s"), "red")
    assert rx1 < bx1 and 0.25 <= (rx2 - bx1) / (bx2 - bx1) <= 0.42


def test_seal_without_personal_signature_needs_a_placement(doc, rsa_key, seal_image):
    with pytest.raises(ProfileError) as err:
        signature_spec(doc, ProfileRequest("organisation", image_path=seal_image), rsa_key.certificate)
    assert err.value.code == "no_placement"
    spec = signature_spec(doc, ProfileRequest("organisation", image_path=seal_image, anchor_text="GIÁM ĐỐC"),
                          rsa_key.certificate)
    assert spec.appearance.box[2] - spec.appearance.box[0] == pytest.approx(40 * MM, abs=1)


# --- attachment and copy ----------------------------------------------------------------------

def test_attachment_stamp_top_right_times_10pt(doc, tmp_path, rsa_key, pki, pdfsig):
    out = tmp_path / "phu-luc.pdf"
    when = datetime(2024, 3, 5, 3, 15, 30, tzinfo=UTC)
    _sign(doc, out, rsa_key, ProfileRequest("attachment", number_symbol="12/CT-UBND", signing_time=when))
    _valid(pdfsig, out)
    assert validate_pdf(out, [pki.root.asn1]).indication == "TOTAL-PASSED"

    height, words = _words(out)
    found = {w: b for w, b in words if w in ("12/CT-UBND", "2024-03-05T10:15:30+07:00")}
    assert set(found) == {"12/CT-UBND", "2024-03-05T10:15:30+07:00"}
    for x1, y1, x2, y2 in found.values():
        assert x1 > 595 / 2 and x2 <= 595 - 15 * MM + 1  # right half, inside the right margin
        assert y1 >= 0 and y2 <= 20 * MM                    # in the 20 mm top margin band
        # Liberation Serif's ascent + descent is 1.107 em: a 10 pt line is ~11.07 pt high.
        assert y2 - y1 == pytest.approx(11.07, abs=0.3)
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"\+(LiberationSerif|Tinos)\S*\s+CID TrueType\s+Identity-H\s+yes\s+yes\s+yes", fonts), fonts
    assert not _ink(_render(out, tmp_path, "a"), "blue") and not _ink(_render(out, tmp_path, "a2"), "red")


@pytest.mark.parametrize("form", ["SAO Y", "SAO LỤC", "TRÍCH SAO"])
def test_copy_stamp_shows_form_organisation_and_time(tmp_path, rsa_key, pdfsig, form):
    src = tmp_path / "ban-chinh.pdf"
    src.write_bytes(vietnamese_pdf())
    out = tmp_path / "ban-sao.pdf"
    when = datetime(2024, 12, 31, 20, 0, 0, tzinfo=timezone(timedelta(hours=-5)))
    _sign(src, out, rsa_key, ProfileRequest("copy", copy_form=form, signing_time=when))
    _valid(pdfsig, out)
    height, words = _words(out)
    lines: dict[float, list[tuple[str, tuple]]] = {}
    for w, b in words:
        if b[3] <= 20 * MM:  # the 20 mm top margin band, above the document's own text
            lines.setdefault(round(b[1], 1), []).append((w, b))
    texts = [" ".join(w for w, _ in sorted(ws, key=lambda i: i[1][0])) for _, ws in sorted(lines.items())]
    assert texts == [form, ORG, "2025-01-01T08:00:00+07:00"]
    assert min(b[0] for ws in lines.values() for _, b in ws) > 595 / 2


def test_copy_uses_the_given_copying_organisation(doc, rsa_key):
    spec = signature_spec(doc, ProfileRequest("copy", copying_organisation="Văn phòng UBND tỉnh"), rsa_key.certificate)
    assert spec.appearance.lines[:2] == ("SAO Y", "Văn phòng UBND tỉnh")
    assert spec.appearance.lines[2] == "%(ts)s"  # the actual signing time, filled in at signing


# --- bad requests -----------------------------------------------------------------------------

@pytest.mark.parametrize("request_, code", [
    (ProfileRequest("signature"), "unknown_profile"),  # type: ignore[arg-type]
    (ProfileRequest("personal"), "image_required"),
    (ProfileRequest("organisation"), "image_required"),
    (ProfileRequest("personal", image_path="/nonexistent/chu-ky.png"), "image_unreadable"),
    (ProfileRequest("attachment"), "number_symbol_required"),
    (ProfileRequest("copy", copy_form="BẢN SAO"), "unknown_copy_form"),
    (ProfileRequest("attachment", number_symbol="1/TB", box=(10, 10, 5, 20)), "invalid_box"),
    (ProfileRequest("attachment", number_symbol="1/TB", page=5), "page_out_of_range"),
])
def test_bad_requests_get_a_profile_error(doc, tmp_path, rsa_key, request_, code):
    before = doc.read_bytes()
    with pytest.raises(ProfileError) as err:
        signature_spec(doc, request_, rsa_key.certificate)
    assert err.value.code == code and str(err.value)
    assert doc.read_bytes() == before


def test_unreadable_image_and_pdf(tmp_path, rsa_key):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not a png")
    src = tmp_path / "in.pdf"
    src.write_bytes(tiny_pdf())
    with pytest.raises(ProfileError) as err:
        signature_spec(src, ProfileRequest("personal", image_path=str(bad)), rsa_key.certificate)
    assert err.value.code == "image_unreadable"
    with pytest.raises(InvalidPdfError):
        signature_spec(io.BytesIO(b"%PDF-1.7\ngarbage"), ProfileRequest("copy"), rsa_key.certificate)


def test_stream_input_is_left_where_it_was(rsa_key):
    stream = io.BytesIO(vietnamese_pdf())
    stream.seek(7)
    spec = signature_spec(stream, ProfileRequest("attachment", number_symbol="05/BNV-VP"), rsa_key.certificate)
    assert stream.tell() == 7 and spec.field_name == "AttachmentSignature1"


def test_a_fan_out_appearance_cannot_stall_seal_placement():
    """An appearance whose form draws another form ten times, nine levels deep, would take 10**9
    content-stream parses to walk; the walk is budgeted, so placement answers at once."""
    import time

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader

    from signing.profiles import drawn_image_rect

    writer = IncrementalPdfFileWriter(io.BytesIO(tiny_pdf()))

    def form(content: bytes, child=None):
        resources = generic.DictionaryObject()
        if child is not None:
            resources["/XObject"] = generic.DictionaryObject({generic.NameObject("/F"): child})
        return writer.add_object(generic.StreamObject(
            {generic.NameObject("/Type"): generic.NameObject("/XObject"),
             generic.NameObject("/Subtype"): generic.NameObject("/Form"),
             generic.NameObject("/BBox"): generic.ArrayObject([generic.FloatObject(v) for v in (0, 0, 100, 50)]),
             generic.NameObject("/Resources"): resources}, stream_data=content))

    child = form(b"")
    for _ in range(9):
        child = form(b"/F Do\n" * 10, child)
    widget_ref = writer.add_object(generic.DictionaryObject({generic.NameObject("/AP"): generic.DictionaryObject(
        {generic.NameObject("/N"): child})}))
    out = io.BytesIO()
    writer.write(out)
    # Read back, as placement reads a document: streams then know where they live.
    widget = PdfFileReader(out, strict=False).get_object(widget_ref.reference)
    start = time.perf_counter()
    assert drawn_image_rect(widget, (0.0, 0.0, 100.0, 50.0)) is None  # no image: the widget box is used
    assert time.perf_counter() - start < 5  # unbudgeted, this walk does not finish in any useful time


@pytest.mark.parametrize("box", [(0.0, 0.0, float("inf"), 10.0), (0.0, 0.0, float("nan"), 10.0),
                                 (0.0, 0.0, 1e9, 10.0)])
def test_a_box_beyond_any_page_is_invalid(box, tmp_path, rsa_key):
    pdf = tmp_path / "in.pdf"
    pdf.write_bytes(tiny_pdf())
    with pytest.raises(ProfileError) as raised:
        signature_spec(pdf, ProfileRequest("attachment", number_symbol="1/QĐ-UBND", box=box), rsa_key.certificate)
    assert raised.value.code == "invalid_box"
