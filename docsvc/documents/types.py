"""Decree 30/2020 administrative document types (Art. 7, Appendix III §I) and code lists."""

from __future__ import annotations

from enum import StrEnum

#: code → (Vietnamese name, abbreviation used in the symbol). Order is Art. 7's order.
DOCUMENT_TYPES: dict[str, tuple[str, str | None]] = {
    "nghi_quyet": ("Nghị quyết", "NQ"),
    "quyet_dinh": ("Quyết định", "QĐ"),
    "chi_thi": ("Chỉ thị", "CT"),
    "quy_che": ("Quy chế", "QC"),
    "quy_dinh": ("Quy định", "QyĐ"),
    "thong_cao": ("Thông cáo", "TC"),
    "thong_bao": ("Thông báo", "TB"),
    "huong_dan": ("Hướng dẫn", "HD"),
    "chuong_trinh": ("Chương trình", "CTr"),
    "ke_hoach": ("Kế hoạch", "KH"),
    "phuong_an": ("Phương án", "PA"),
    "de_an": ("Đề án", "ĐA"),
    "du_an": ("Dự án", "DA"),
    "bao_cao": ("Báo cáo", "BC"),
    "bien_ban": ("Biên bản", "BB"),
    "to_trinh": ("Tờ trình", "TTr"),
    "hop_dong": ("Hợp đồng", "HĐ"),
    "cong_van": ("Công văn", None),
    "cong_dien": ("Công điện", "CĐ"),
    "ban_ghi_nho": ("Bản ghi nhớ", "BGN"),
    "ban_thoa_thuan": ("Bản thỏa thuận", "BTT"),
    "giay_uy_quyen": ("Giấy ủy quyền", "GUQ"),
    "giay_moi": ("Giấy mời", "GM"),
    "giay_gioi_thieu": ("Giấy giới thiệu", "GGT"),
    "giay_nghi_phep": ("Giấy nghỉ phép", "GNP"),
    "phieu_gui": ("Phiếu gửi", "PG"),
    "phieu_chuyen": ("Phiếu chuyển", "PC"),
    "phieu_bao": ("Phiếu báo", "PB"),
    "thu_cong": ("Thư công", None),
}

DocumentTypeCode = StrEnum("DocumentTypeCode", {k.upper(): k for k in DOCUMENT_TYPES})


class Direction(StrEnum):
    OUTGOING = "outgoing"  # văn bản đi
    INCOMING = "incoming"  # văn bản đến
    INTERNAL = "internal"  # văn bản nội bộ


class Priority(StrEnum):
    """Độ khẩn; Decree 30 recognises hỏa tốc, thượng khẩn and khẩn."""

    NORMAL = "thuong"
    URGENT = "khan"
    VERY_URGENT = "thuong_khan"
    EXPRESS = "hoa_toc"


class Confidentiality(StrEnum):
    """Độ mật."""

    NORMAL = "thuong"
    CONFIDENTIAL = "mat"
    SECRET = "toi_mat"
    TOP_SECRET = "tuyet_mat"


class Competence(StrEnum):
    """Signing-authority prefixes (Appendix I §II.7)."""

    TM = "TM."
    Q = "Q."
    KT = "KT."
    TL = "TL."
    TUQ = "TUQ."


class Status(StrEnum):
    DRAFT = "draft"
    RECEIVED = "received"
    REGISTERED = "registered"
    ISSUED = "issued"
    REVOKED = "revoked"


def make_symbol(doc_type: str, org_short_name: str, drafting_unit: str | None) -> str:
    """Ký hiệu: ``CT-UBND`` for typed documents, ``UBND-VX`` for công văn (Art. 15)."""
    abbreviation = DOCUMENT_TYPES[doc_type][1]
    if abbreviation is None:
        return f"{org_short_name}-{drafting_unit}" if drafting_unit else org_short_name
    return f"{abbreviation}-{org_short_name}"


def format_number(number: int, symbol: str) -> str:
    """``05/CT-UBND``: numbers below 10 are zero-padded."""
    return f"{number:02d}/{symbol}"
