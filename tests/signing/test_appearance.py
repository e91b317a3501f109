"""The appearance engine: embedded Vietnamese font with ToUnicode, cached images, +07:00 times,
layout inside the box; and the development signature/seal images."""

from __future__ import annotations

import io
import subprocess

import pytest
from PIL import Image

from signing.appearance import load_font, load_image, stamp_style, vietnam_time
from signing.errors import SigningError
from signing.images import seal_png, signature_png
from signing.interfaces import NOTO_SERIF, AppearanceSpec, SignatureSpec
from signing.pades import sign_pdf
from signing.validation import validate_pdf
from tests.support.pdfs import tiny_pdf

TEXT = "Ký bởi: Nguyễn Thị Hồng Nhung — Ủy ban nhân dân xã Đồng Tâm"


def test_text_extracts_back_exactly_and_font_is_embedded(tmp_path, rsa_key, pki, pdfsig):
    src, out = tmp_path / "in.pdf", tmp_path / "out.pdf"
    src.write_bytes(tiny_pdf())
    box = (40.0, 500.0, 560.0, 560.0)
    sign_pdf(src, out, rsa_key, SignatureSpec(appearance=AppearanceSpec(
        box=box, lines=(TEXT, "Thời gian: %(ts)s"), border_width=0)))
    assert "Signature is Valid." in pdfsig(out)
    assert validate_pdf(out, [pki.root.asn1]).indication == "TOTAL-PASSED"
    text = subprocess.run(["pdftotext", "-raw", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert TEXT in text
    assert "+07:00" in text.split("Thời gian: ", 1)[1].splitlines()[0]
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True, check=True).stdout
    assert any("NotoSerif" in line and line.split()[-5:-2] == ["yes", "yes", "yes"] for line in fonts.splitlines())


def test_alignment_and_areas(tmp_path, rsa_key):
    src, out = tmp_path / "in.pdf", tmp_path / "out.pdf"
    src.write_bytes(tiny_pdf())
    box = (100.0, 400.0, 500.0, 440.0)
    sign_pdf(src, out, rsa_key, SignatureSpec(appearance=AppearanceSpec(
        box=box, lines=("PHẢI",), text_align="right", text_box=(0.5, 0.0, 1.0, 1.0), border_width=0)))
    html = subprocess.run(["pdftotext", "-bbox", str(out), "-"], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in html.splitlines() if ">PHẢI<" in ln)
    x_max = float(line.split('xMax="')[1].split('"')[0])
    x_min = float(line.split('xMin="')[1].split('"')[0])
    assert x_max == pytest.approx(500 - 2, abs=1.0) and x_min > 300  # right-aligned in the right half


def test_font_is_cut_once_and_covers_vietnamese():
    font = load_font(NOTO_SERIF)
    assert load_font(NOTO_SERIF) is font
    assert 0 not in font.glyphs("ẮẰẲẴẶắằẳẵặĐđƠơƯưỹỵ₫")
    assert font.width("Việt Nam", 10) == pytest.approx(font.width("Việt", 10) + font.width(" Nam", 10))
    assert len(font.font_file) < 40_000  # bytes every signature carries


def test_images_are_decoded_once_and_reloaded_when_changed(tmp_path):
    path = tmp_path / "seal.png"
    path.write_bytes(seal_png("UBND xã Đồng Tâm"))
    first = load_image(str(path))
    assert load_image(str(path)) is first and first.alpha is not None
    assert first.size_pt == pytest.approx((40 * 72 / 25.4, 40 * 72 / 25.4), abs=0.5)
    path.write_bytes(signature_png("Lê Văn Tám"))
    assert load_image(str(path)) is not first


def test_missing_files_fail_before_signing(tmp_path):
    with pytest.raises(SigningError, match="image"):
        stamp_style(AppearanceSpec(image_path=str(tmp_path / "nope.png")))
    with pytest.raises(SigningError, match="font"):
        stamp_style(AppearanceSpec(font_path=str(tmp_path / "nope.ttf")))


def test_vietnam_time():
    from datetime import UTC, datetime

    assert vietnam_time(datetime(2024, 3, 5, 3, 15, 30, 999, tzinfo=UTC)) == "2024-03-05T10:15:30+07:00"
    assert vietnam_time(datetime(2024, 3, 5, 10, 15, 30)) == "2024-03-05T10:15:30+07:00"


def test_dev_images_are_deterministic_coloured_and_transparent():
    sig, seal = signature_png("Nguyễn Văn An"), seal_png("Sở Tư pháp")
    assert sig == signature_png("Nguyễn Văn An") and sig != signature_png("Trần Văn Bình")
    for data, ink in ((sig, "blue"), (seal, "red")):
        image = Image.open(io.BytesIO(data))
        assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0
        opaque = [p for p in image.get_flattened_data() if p[3] > 200]
        assert opaque
        r, g, b = (sum(p[i] for p in opaque) / len(opaque) for i in range(3))
        assert (b > r + 80) if ink == "blue" else (r > b + 80 and r > g + 80)
    assert Image.open(io.BytesIO(seal)).size == (472, 472)  # 40 mm at 300 dpi
