"""Build → parse round trip, byte compatibility with the reconstructed VNPT samples, both examples."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
from datetime import datetime

import pytest

from inter_axis.build import write_package
from inter_axis.errors import EdxmlError, InvalidPackageError
from inter_axis.inspect import inspect_package
from inter_axis.model import (
    Business,
    BusinessDocType,
    Organization,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    StaffInfo,
    StatusMessage,
)
from inter_axis.parse import read_package
from inter_axis.status import write_status
from tests.inter_axis.conftest import EXAMPLES, example_package


def _build(package) -> bytes:
    out = io.BytesIO()
    write_package(package, out)
    return out.getvalue()


def test_round_trip_equals(pdf_file):
    package = example_package(pdf_file)
    with read_package(_build(package)) as parsed:
        assert parsed.warnings == ()
        header = dataclasses.replace(package.header, document_id=package.header.effective_document_id)
        assert parsed.document == dataclasses.replace(package, header=header, attachments=())
        [attachment] = parsed.attachments
        assert attachment.path.read_bytes() == pdf_file.read_bytes()
        assert attachment.sha256 == hashlib.sha256(pdf_file.read_bytes()).hexdigest()
        assert attachment.size == pdf_file.stat().st_size


def _without_signature_and_content(text: str) -> str:
    text = re.sub(r"\n *<Signature>.*?</Signature>", "", text, flags=re.S)
    return re.sub(r"(<edXML:ContentTransferEncoded[^>]*>)[^<]*", r"\1", text)


def test_bytes_match_the_vnpt_sample(pdf_file):
    """Element order, the edXML: prefix, Bussiness, empty organisation fields, layout: as in the sample."""
    ours = _build(example_package(pdf_file)).decode()
    sample = (EXAMPLES / "edoc_new.edxml").read_text(encoding="utf-8")
    assert _without_signature_and_content(ours) == _without_signature_and_content(sample)
    assert "<edXML:BussinessDocType>0</edXML:BussinessDocType>" in ours


def test_status_bytes_match_the_sample():
    status = StatusMessage(
        from_org=Organization(
            "000.00.00.G22", "Văn phòng Chính phủ", "Văn phòng Chính phủ", "Số 1 Hoàng Hoa Thám, Ba Đình, Hà Nội"
        ),
        response_for=ResponseFor(
            "000.00.00.H41", "12/CT-UBND", datetime(2025, 3, 14).date(), "000.00.00.H41,2025/03/14,12/CT-UBND"
        ),
        status_code="03",
        description="Đã tiếp nhận, vào sổ văn bản đến số 1234",
        timestamp=datetime(2025, 3, 14, 10, 2, 11),
        staff=StaffInfo("Phòng Hành chính - Văn thư", "Lê Văn C", "vanthu@vpcp.example", "84911111111"),
    )
    out = io.BytesIO()
    write_status(status, out)
    sample = (EXAMPLES / "status_03.edxml").read_text(encoding="utf-8")
    sample = re.sub(r" *<!--.*?-->", "", sample)
    assert out.getvalue().decode() == sample
    with read_package(out.getvalue()) as parsed:
        assert parsed.status == status


@pytest.mark.parametrize("code", ["01", "02", "03", "04", "05", "06", "13", "15", "16"])
def test_status_codes_round_trip_and_status_wrapper(code):
    sample = (EXAMPLES / "status_03.edxml").read_bytes().replace(b">03<", f">{code}<".encode())
    assert inspect_package(sample).status_code == code
    bkav = sample.replace(b"edXML:MessageHeader>", b"edXML:Status>")
    summary = inspect_package(bkav)
    assert (summary.kind, summary.status_code, summary.to_organ_ids) == ("status", code, ("000.00.00.H41",))


@pytest.mark.parametrize("code", ["003", "999", "07", "14", "00", "3a", "٠٣", "٣", "03 03", "1" * 5000])
def test_unknown_status_codes_are_refused_with_a_stable_code(code):
    """Never a warning and a value downstream cannot store (the code is two characters there)."""
    sample = (EXAMPLES / "status_03.edxml").read_bytes().replace(b">03<", f">{code}<".encode())
    for wrapper in (sample, sample.replace(b"edXML:MessageHeader>", b"edXML:Status>")):
        for read in (inspect_package, read_package):
            with pytest.raises(EdxmlError) as info:
                read(wrapper)
            assert info.value.code == "unknown_status_code"
            assert "is not one of 01, 02, 03, 04, 05, 06, 13, 15, 16" in str(info.value)
            assert len(str(info.value)) < 200  # a huge value is not echoed back whole


def test_a_single_digit_status_code_is_read_as_two_with_a_warning():
    sample = (EXAMPLES / "status_03.edxml").read_bytes().replace(b">03<", b">3<")
    summary = inspect_package(sample)
    assert summary.status_code == "03"
    assert any("not two digits" in w for w in summary.warnings)
    empty = (EXAMPLES / "status_03.edxml").read_bytes().replace(b">03<", b"><")
    with pytest.raises(EdxmlError) as info:
        inspect_package(empty)
    assert info.value.code == "missing_field"


def test_parse_both_examples():
    with read_package(EXAMPLES / "edoc_new.edxml") as parsed:
        assert parsed.document.header.effective_document_id == "000.00.00.H41,2025/03/14,12/CT-UBND"
        assert parsed.document.business.doc_type == BusinessDocType.NEW
        assert parsed.signature == "not_xmldsig"
        # The sample's attachment text is a placeholder ("JVBERi0xLjcK...BASE64..."): reported, not fatal.
        assert any("base64" in w for w in parsed.warnings)
    with read_package(EXAMPLES / "status_03.edxml") as parsed:
        assert parsed.kind == "status" and parsed.status.status_code == "03"


REPLACED = "000.00.00.H41,2025/03/10,11/CT-UBND"


@pytest.mark.parametrize(
    "business",
    [
        Business(
            BusinessDocType.UPDATE,
            "Cập nhật văn bản điện tử",
            document_id=REPLACED,
            document_info_changed=True,
            receivers_changed=True,
            receivers=(Receiver("000.00.00.G22", 0), Receiver("000.00.00.H14", 1)),
        ),
        Business(BusinessDocType.REVOKE, "Thu hồi văn bản điện tử", document_id=REPLACED),
        Business(
            BusinessDocType.REPLACE,
            "Văn bản thay thế",
            document_id=REPLACED,
            replacements=(
                ReplacementInfo(REPLACED, ("000.00.00.G22", "000.00.00.H14")),
                ReplacementInfo("000.00.00.H41,2025/03/01,9/CT-UBND", ("000.00.00.G22",)),
            ),
            staff=StaffInfo("Văn thư văn phòng", "Trần Thị B", "vanthu@example.gov.vn", "84900000000"),
        ),
    ],
    ids=["update", "revoke", "replace"],
)
def test_update_revoke_and_replace_round_trip(pdf_file, business):
    package = dataclasses.replace(example_package(pdf_file), business=business)
    data = _build(package)
    with read_package(data) as parsed:
        assert parsed.warnings == ()
        assert parsed.document.business == business
    assert inspect_package(data).business_type == int(business.doc_type)
    if business.doc_type == BusinessDocType.REPLACE:
        # The wire form of VN-STANDARDS §1.6: type 3, the replaced DocumentId, then the list of
        # ReplacementInfo (DocumentId + OrganIdList/OrganId) before StaffInfo.
        text = data.decode()
        assert "<edXML:BussinessDocType>3</edXML:BussinessDocType>" in text
        block = re.search(r"<edXML:Bussiness>.*</edXML:Bussiness>", text, re.S).group()
        order = [m.group(1) for m in re.finditer(r"<edXML:(\w+)>", block)]
        assert order[:6] == ["Bussiness", "DocumentId", "BussinessDocType", "BussinessDocReason", "Paper",
                             "ReplacementInfoList"]
        assert order[-5:] == ["StaffInfo", "Department", "Staff", "Email", "Mobile"]
        assert block.count("<edXML:ReplacementInfo>") == 2 and block.count("<edXML:OrganId>") == 3


def test_build_refuses_invalid_package(pdf_file, tmp_path):
    package = example_package(pdf_file)
    bad = dataclasses.replace(package, header=dataclasses.replace(package.header, to=package.header.to * 2))
    out = io.BytesIO()
    with pytest.raises(InvalidPackageError) as info:
        write_package(bad, out)
    assert info.value.code == "invalid_package" and "listed twice" in str(info.value)
    assert out.getvalue() == b""
