"""Fixtures for inter_axis: a real development PKI, an organisation seal, and a sample package."""

from __future__ import annotations

import subprocess
from datetime import date, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from inter_axis.build import write_package
from inter_axis.model import (
    AttachmentSource,
    Business,
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    OtherInfo,
    SignerInfo,
    StaffInfo,
    TraceHeader,
)
from inter_axis.xmldsig import sign_package
from signing.devpki import DevPki

EXAMPLES = Path("/work/shared/standards/examples")
PEM = serialization.Encoding.PEM


@pytest.fixture(scope="session")
def seal(tmp_path_factory):
    """(key PEM, cert+chain PEM, root PEM path) of an organisation seal from a real dev PKI."""
    directory = tmp_path_factory.mktemp("pki")
    pki = DevPki.init(directory / "pki", base_url="http://127.0.0.1:1")
    issued = pki.issue_seal("Ủy ban nhân dân tỉnh Nghệ An", "000.00.00.H41")
    key = issued.private_key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cert = issued.certificate.public_bytes(PEM) + pki.issuing.cert.public_bytes(PEM)
    root = directory / "root.pem"
    root.write_bytes(pki.root.cert.public_bytes(PEM))
    return key, cert, root


def example_package(attachment: Path) -> DocumentPackage:
    """The package of examples/edoc_new.edxml, field for field."""
    return DocumentPackage(
        header=MessageHeader(
            from_org=Organization(
                "000.00.00.H41",
                "Ủy ban nhân dân tỉnh Nghệ An",
                "UBND tỉnh Nghệ An",
                "Số 03 đường Trường Thi, TP Vinh, Nghệ An",
                "vanthu@example.gov.vn",
                "0238 0000000",
                "0238 0000001",
                "www.example.gov.vn",
            ),
            to=(
                Organization(
                    "000.00.00.G22",
                    "Văn phòng Chính phủ",
                    "Văn phòng Chính phủ",
                    "Số 1 Hoàng Hoa Thám, Ba Đình, Hà Nội",
                ),
            ),
            code=DocumentCode("12", "CT-UBND"),
            promulgation_place="Nghệ An",
            promulgation_date=date(2025, 3, 14),
            document_type=DocumentType(1, "Chỉ thị", 0),
            subject="Về tăng cường công tác phòng, chống lụt bão",
            content="Về tăng cường công tác phòng, chống lụt bão",
            signer=SignerInfo("KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "Nguyễn Văn A"),
            due_date=date(2025, 3, 31),
            other_info=OtherInfo(
                1, "Liên thông văn bản quốc gia", "VX", 3, 4, False, ("Phụ lục I - Danh sách đơn vị",)
            ),
            steering_type=1,
            to_places=("Như trên", "Các sở, ban, ngành tỉnh", "Lưu: VT, VX"),
        ),
        traces=(TraceHeader("000.00.00.H41", datetime(2025, 3, 14, 9, 15)),),
        business=Business(staff=StaffInfo("Văn thư văn phòng", "Trần Thị B", "vanthu@example.gov.vn", "84900000000")),
        attachments=(
            AttachmentSource(
                "cid:6f1c2a9e-1111-4c4c-9d9d-000000000001",
                "12_CT-UBND_signed.pdf",
                "application/pdf",
                attachment,
                "Chỉ thị 12/CT-UBND (bản ký số)",
            ),
        ),
    )


@pytest.fixture
def pdf_file(tmp_path) -> Path:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 300 + b"%%EOF\n")
    return path


def signed_package(attachment: Path, seal, directory: Path) -> Path:
    """The example package signed with ``seal`` by our signer, as a file in ``directory``."""
    key, cert, _root = seal
    unsigned = directory / "u.edxml"
    with open(unsigned, "wb") as out:
        write_package(example_package(attachment), out)
    signed = directory / "s.edxml"
    with open(signed, "wb") as out:
        sign_package(unsigned, out, key, cert)
    return signed


def xmlsec_verifies(path: Path, *options: str) -> bool:
    """``xmlsec1 --verify`` (Debian's xmlsec1, an independent XML-DSig implementation) accepts ``path``.

    ``options`` say which key to use, e.g. ``--trusted-pem root.pem`` or ``--hmackey file``."""
    done = subprocess.run(["xmlsec1", "--verify", *options, str(path)], capture_output=True, timeout=60)
    return done.returncode == 0
