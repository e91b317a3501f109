"""``docsvc demo``: seed a small province to try the service with.

Everything goes through the real services (organisations, users, documents, files) so the
demo data carries the same audit trail, numbering and stored-object guarantees as real data.
Each step first looks for what it would create (organisations by mã định danh, users by
username, documents by organisation and subject, dossiers by code), so running the command
again adds only what is missing and never duplicates or renumbers anything.

Document bodies are excerpts from public provincial texts on administrative reform (the
project's corpus), kept here so the command also works in an installed package."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from docsvc.bootstrap import ensure_root_organisation
from docsvc.documents import files_service
from docsvc.documents import service as documents
from docsvc.documents.models import Document, DocumentFile, DocumentShare
from docsvc.documents.schemas import DocumentCreate, RegisterRequest
from docsvc.documents.types import DOCUMENT_TYPES, Direction, format_number
from docsvc.dossiers import service as dossiers
from docsvc.dossiers.models import Dossier, DossierComponent, DossierDocument
from docsvc.dossiers.schemas import ApplicantIdType, ComponentCreate, DossierCreate, DossierKind, FilingCreate
from docsvc.organisations import service as orgs
from docsvc.organisations.identifiers import AXIS_ORGAN_ID
from docsvc.organisations.models import Organisation
from docsvc.organisations.schemas import OrganisationCreate
from docsvc.pdfgen import AdministrativeDocument, date_line, render_document
from docsvc.principal import SERVICE_ACTOR, Actor, Role
from docsvc.runtime import Runtime
from docsvc.uploads import Upload
from docsvc.users import service as users
from docsvc.users.auth_service import actor_for_user
from docsvc.users.models import User
from docsvc.users.schemas import UserCreate

PROVINCE = "Nghệ An"


class DemoError(RuntimeError):
    """The database cannot take the demo (e.g. the root's identifier has another layout)."""


# --- What the demo province contains -------------------------------------------------------

@dataclass(frozen=True)
class OrgSpec:
    key: str
    """Short ASCII name: the username suffix (``vanthu.stttt``)."""
    code: str
    """Middle groups of the mã định danh: ``00.12`` → ``000.00.12.H41``."""
    name: str
    short_name: str
    level: str
    place: str
    """Place printed on the document's date line."""
    parent: str | None = None
    """``key`` of the parent; ``None`` for organisations directly under the root."""


ORGS: tuple[OrgSpec, ...] = (
    OrgSpec("snv", "00.05", "Sở Nội vụ", "SNV", "department", PROVINCE),
    OrgSpec("stttt", "00.12", "Sở Thông tin và Truyền thông", "STTTT", "department", PROVINCE),
    OrgSpec("stp", "00.15", "Sở Tư pháp", "STP", "department", PROVINCE),
    OrgSpec("quynhluu", "00.24", "Ủy ban nhân dân huyện Quỳnh Lưu", "UBND", "district", "Quỳnh Lưu"),
    OrgSpec("quynhthanh", "46.24", "Ủy ban nhân dân xã Quỳnh Thanh", "UBND", "commune", "Quỳnh Thanh",
            parent="quynhluu"),
    OrgSpec("dienchau", "00.25", "Ủy ban nhân dân huyện Diễn Châu", "UBND", "district", "Diễn Châu"),
    OrgSpec("dienky", "01.25", "Ủy ban nhân dân xã Diễn Kỷ", "UBND", "commune", "Diễn Kỷ", parent="dienchau"),
)

#: role → (username prefix, position). Leaders' positions depend on the organisation's level.
ROLE_ACCOUNTS: dict[Role, tuple[str, str]] = {
    Role.CLERK: ("vanthu", "Văn thư"),
    Role.SPECIALIST: ("chuyenvien", "Chuyên viên"),
    Role.LEADER: ("lanhdao", "Giám đốc"),
    Role.ARCHIVIST: ("luutru", "Lưu trữ viên"),
    Role.ADMIN: ("quantri", "Quản trị hệ thống"),
}

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ")
_MIDDLE = ("Văn", "Thị", "Minh", "Thu", "Quang", "Ngọc", "Đức")
_GIVEN = ("An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hùng", "Lan", "Linh", "Long",
          "Mai", "Nam", "Phương", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Yến")


@dataclass(frozen=True)
class DocSpec:
    org: str
    direction: Direction
    doc_type: str
    subject: str
    paragraphs: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    drafting_unit: str | None = None
    share_with: tuple[str, ...] = ()
    """Demo organisations (keys) the outgoing document is addressed to and shared with."""
    sender: tuple[str, int, str, date] | None = None
    """Incoming only: issuer, number, symbol and issue date as printed."""


DOCUMENTS: tuple[DocSpec, ...] = (
    DocSpec("stttt", Direction.OUTGOING, "ke_hoach",
            "Triển khai quản lý văn bản điện tử, ký số chuyên dùng và kết nối trục liên thông văn bản",
            (
                "Hiện đại hóa phương thức chỉ đạo, điều hành phục vụ người dân, doanh nghiệp: Đã triển khai hệ "
                "thống quản lý văn bản Qoffice tập trung đến tất cả các cơ quan, đơn vị trên địa bàn tỉnh, kết nối "
                "trục liên thông văn bản chính phủ và tích hợp chữ ký số chuyên dùng, phục vụ gửi nhận văn bản "
                "điện tử.",
                "Các đơn vị đều tổ chức sử dụng đồng bộ hệ thống quản lý văn bản và điều hành iOffice trong công "
                "tác quản lý, điều hành công việc nội bộ, ký số và phát hành văn bản điện tử.",
            ),
            ("UBND tỉnh (để báo cáo)", "Các sở, ban, ngành", "UBND các huyện, thành phố, thị xã"),
            share_with=("quynhluu", "dienchau")),
    DocSpec("stttt", Direction.OUTGOING, "cong_van",
            "V/v kết nối, chia sẻ dữ liệu qua nền tảng tích hợp, chia sẻ dữ liệu cấp tỉnh (LGSP)",
            (
                "Báo cáo của UBND tỉnh cho biết, về xây dựng chính quyền điện tử, chính quyền số: Đã triển khai "
                "các ứng dụng dùng chung toàn tỉnh; nền tảng tích hợp, chia sẻ dữ liệu cấp tỉnh (LGSP) đã kết nối "
                "với nền tảng tích hợp, chia sẻ dữ liệu quốc gia; 100% giao dịch trên Cổng Dịch vụ công và Hệ "
                "thống thông tin một cửa điện tử được xác thực điện tử, 100% chế độ báo cáo, chỉ tiêu tổng hợp báo "
                "cáo định kỳ và báo cáo thống kê về kinh tế - xã hội phục vụ sự chỉ đạo, điều hành (không bao "
                "gồm nội dung mật) được kết nối, tích hợp, chia sẻ dữ liệu số trên Hệ thống thông tin báo cáo của "
                "tỉnh.",
                "Phát triển hệ thống mạng chuyên dùng, kết nối thông suốt từ tỉnh tới xã, đáp ứng việc triển khai "
                "các ứng dụng công nghệ thông tin của cơ quan nhà nước.",
            ),
            ("Các sở, ban, ngành",), drafting_unit="CĐS"),
    DocSpec("snv", Direction.OUTGOING, "bao_cao", "Kết quả công tác cải cách hành chính năm 2023",
            (
                "Năm 2023, với nhiều giải pháp quyết liệt trong chỉ đạo, điều hành, công tác cải cách hành chính "
                "(CCHC) trên địa bàn tỉnh đạt nhiều kết quả quan trọng; góp phần xây dựng nền hành chính dân chủ, "
                "chuyên nghiệp, hiện đại, hiệu lực, hiệu quả, tạo động lực mạnh mẽ phát triển bền vững KT – XH.",
                "Kiểm tra CCHC là nhiệm vụ quan trọng nhằm xây dựng nền hành chính hiệu lực, hiệu quả. Năm 2023, "
                "Sở Nội vụ và UBND các huyện, thành phố đã xây dựng kế hoạch, tiến hành kiểm tra nghiêm túc trên "
                "tinh thần thẳng thắn, cởi mở.",
            ),
            ("UBND tỉnh (để báo cáo)", "Bộ Nội vụ")),
    DocSpec("stp", Direction.OUTGOING, "thong_bao",
            "Tiếp nhận, giải quyết thủ tục hành chính lĩnh vực hộ tịch tại Bộ phận Một cửa cấp xã",
            (
                "Thành lập Bộ phận \"một cửa\" để tiếp nhận, giải quyết dứt điểm tất cả các lĩnh vực, yêu cầu của "
                "người dân trong quyền hạn của mình. Những vấn đề không thuộc thẩm quyền, xã hướng dẫn người dân "
                "lên tuyến trên thực hiện cho thuận tiện, không để bà con đi lại nhiều lần gây phiền hà, tốn kém.",
            ),
            ("UBND các huyện, thành phố, thị xã", "UBND các xã, phường, thị trấn")),
    DocSpec("quynhluu", Direction.OUTGOING, "chi_thi",
            "Về đẩy mạnh cải cách hành chính gắn với chính quyền số, dịch vụ đô thị thông minh",
            (
                "Để tiếp tục triển khai hiệu quả công tác cải cách hành chính gắn với chính quyền số, dịch vụ đô "
                "thị thông minh trên địa bàn huyện trong thời gian tới, hướng đến nền hành chính chuyên nghiệp, "
                "hiện đại, minh bạch, hiệu quả, Chủ tịch UBND huyện yêu cầu:",
                "- Chủ động xây dựng, hoàn thiện và phát triển Chính quyền số, kinh tế số và xã hội số giai đoạn "
                "2021 - 2025 với mục tiêu: “4 không” (Làm việc không giấy tờ; Hội họp không tập trung; Dịch vụ công "
                "không gặp mặt; Thanh toán không tiền mặt) và “một có” (Dữ liệu có chuyển đổi số).",
            ),
            ("Các cơ quan, đơn vị trực thuộc UBND huyện", "UBND các xã, thị trấn"), share_with=("quynhthanh",)),
    DocSpec("quynhluu", Direction.OUTGOING, "ke_hoach",
            "Ứng dụng công nghệ thông tin trong cải cách thủ tục hành chính năm 2024",
            (
                "Ứng dụng công nghệ để từng bước hoàn thiện và nâng dần chất lượng trong công tác cải cách thủ tục "
                "hành chính, chuyển đổi số đã phát huy hiệu quả.",
                "Tại nhiều xã ở huyện Bắc Trà My cũng đã thực hiện triển khai ứng dụng công nghệ để từng bước hoàn "
                "thiện, nâng dần chất lượng trong công tác cải cách hành chính với mục tiêu là tiếp nhận, giải "
                "quyết hồ sơ đảm bảo đúng quy định và thuận lợi cho người dân.",
            ),
            ("UBND các xã, thị trấn",)),
    DocSpec("stttt", Direction.INCOMING, "nghi_quyet",
            "Về đẩy mạnh cải cách thủ tục hành chính và hiện đại hóa phương thức chỉ đạo, điều hành phục vụ "
            "người dân, doanh nghiệp",
            sender=("Chính phủ", 131, "NQ-CP", date(2022, 10, 6))),
    DocSpec("quynhluu", Direction.INCOMING, "nghi_quyet",
            "Về đẩy mạnh cải cách thủ tục hành chính và hiện đại hóa phương thức chỉ đạo, điều hành phục vụ "
            "người dân, doanh nghiệp",
            sender=("Chính phủ", 131, "NQ-CP", date(2022, 10, 6))),
    DocSpec("snv", Direction.INCOMING, "bao_cao",
            "Kết quả triển khai Nghị quyết số 131/NQ-CP trong quý III năm 2023",
            sender=("Ủy ban nhân dân tỉnh Quảng Nam", 230, "BC-UBND", date(2023, 10, 3))),
)

#: A Nghệ An-born citizen (province code 040) applying for a birth registration at the commune.
APPLICANT_ID = "040190012345"
PROCEDURE_COMPONENTS = ("Tờ khai đăng ký khai sinh", "Giấy chứng sinh")


# --- The seeding steps ---------------------------------------------------------------------

@dataclass
class _Province:
    """What the steps share: organisations by key, and one user and its actor per (org key, role)."""

    root: Organisation
    orgs: dict[str, Organisation] = field(default_factory=dict)
    actors: dict[tuple[str, Role], Actor] = field(default_factory=dict)
    people: dict[tuple[str, Role], User] = field(default_factory=dict)


def seed(runtime: Runtime) -> Iterator[str]:
    """Create whatever part of the demo province is missing; yield lines for a person to read.

    Generated passwords are yielded once, when their user is created."""
    root = ensure_root_organisation(runtime)
    with runtime.sessions() as session:
        province = _Province(session.merge(root))
        yield f"Demo province under {root.organ_id} {root.name}"
        yield from _seed_organisations(session, province)
        yield from _seed_users(session, province)
        yield from _seed_signing_keys(session, runtime, province)
        yield from _seed_documents(session, runtime, province)
        yield from _seed_dossiers(session, province)
    yield "Demo data is ready. Log in with one of the accounts above (POST /auth/token)."


def organ_id_for(root_organ_id: str, code: str) -> str:
    """``000.00.12.H41`` for code ``00.12`` under a root ``000.00.00.H41`` (same province suffix)."""
    if not AXIS_ORGAN_ID.match(root_organ_id):
        raise DemoError(f"the demo needs a root mã định danh like 000.00.00.H41, not {root_organ_id!r}")
    return f"000.{code}.{root_organ_id.rsplit('.', 1)[1]}"


def _seed_organisations(session: Session, province: _Province) -> Iterator[str]:
    created = 0
    for spec in ORGS:
        organ_id = organ_id_for(province.root.organ_id, spec.code)
        org = orgs.by_organ_id(session, organ_id)
        if org is None:
            parent = province.orgs[spec.parent] if spec.parent else province.root
            org = orgs.create(session, SERVICE_ACTOR, OrganisationCreate(
                organ_id=organ_id, name=spec.name, short_name=spec.short_name, level=spec.level,
                parent_id=parent.id))
            created += 1
        province.orgs[spec.key] = org
    yield f"Organisations: {created} created, {len(ORGS) - created} already present"
    for spec in ORGS:
        org = province.orgs[spec.key]
        yield f"  {org.organ_id:<15} {org.level:<10} {org.name}"


def _full_name(index: int) -> str:
    return (f"{_FAMILY[index % len(_FAMILY)]} {_MIDDLE[(index // 3) % len(_MIDDLE)]} "
            f"{_GIVEN[(index * 7) % len(_GIVEN)]}")


def _position(role: Role, level: str) -> str:
    if role == Role.LEADER and level in ("district", "commune"):
        return "Chủ tịch"
    return ROLE_ACCOUNTS[role][1]


def _seed_users(session: Session, province: _Province) -> Iterator[str]:
    rows: list[tuple[str, str, str, str]] = []
    present = 0
    for index, (spec, role) in enumerate((s, r) for s in ORGS for r in ROLE_ACCOUNTS):
        org = province.orgs[spec.key]
        username = f"{ROLE_ACCOUNTS[role][0]}.{spec.key}"
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user, password = users.create_user(session, SERVICE_ACTOR, UserCreate(
                username=username, full_name=_full_name(index), position=_position(role, org.level),
                organisation_id=org.id, roles=[role]))
            rows.append((username, role.value, org.organ_id, password))
        else:
            present += 1
        province.people[spec.key, role] = user
        province.actors[spec.key, role] = actor_for_user(user)
    yield f"Users: {len(rows)} created, {present} already present (their passwords were shown when created)"
    if rows:
        yield "  Passwords are shown only this once; keep them now:"
        yield from _table(("username", "role", "organisation", "password"), rows)


def _seed_signing_keys(session: Session, runtime: Runtime, province: _Province) -> Iterator[str]:
    """With the development PKI: a seal per organisation and a personal key (under a generated
    PIN, shown once) for each leader and clerk, plus their signature and seal images."""
    settings = runtime.settings
    if not settings.signing.use_dev_pki:
        yield "Signing keys: skipped (signing.use_dev_pki is off; production keys live in the HSM)"
        return
    import secrets

    from docsvc.pki.images import cached_png
    from docsvc.pki.service import ensure_dev_pki
    from docsvc.signatures import keys_service

    ensure_dev_pki(settings)
    images = settings.pki_path / "images"
    organisations = (province.root, *province.orgs.values())
    for org in organisations:
        keys_service.ensure_seal(session, settings, SERVICE_ACTOR, org)
        cached_png(images, "seal", org.name)
    session.commit()
    rows = []
    for (org_key, role), user in province.people.items():
        if role not in (Role.LEADER, Role.CLERK):
            continue
        if keys_service.active_key(session, "personal", user.organisation_id, user.id) is None:
            pin = f"{secrets.randbelow(10**6):06d}"
            key = keys_service.enrol_personal(session, settings, province.actors[org_key, role], pin)
            rows.append((user.username, "PIN", pin, key.serial))
        cached_png(images, "signature", user.full_name)
    yield f"Signing keys: seals for {len(organisations)} organisations; {len(rows)} personal keys enrolled"
    if rows:
        yield "  Signing PINs are shown only this once (sign with PIN + TOTP after enrolling TOTP):"
        yield from _table(("username", "", "PIN", "certificate serial"), rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> Iterator[str]:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=False)]
    for row in (header, tuple("-" * w for w in widths), *rows):
        yield "  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip()


def _seed_documents(session: Session, runtime: Runtime, province: _Province) -> Iterator[str]:
    yield "Documents:"
    for spec in DOCUMENTS:
        doc, created = _ensure_document(session, province, spec)
        if doc.registered_at is None:  # also finishes a registration an interrupted run left undone
            documents.register(session, province.actors[spec.org, Role.CLERK], doc.id, RegisterRequest())
        if spec.direction == Direction.OUTGOING:
            _share(session, province, spec, doc)
            file = _ensure_pdf(session, runtime, province, spec, doc)
            label, extra = format_number(doc.number, doc.symbol), f"PDF v{file.seq}, sha256 {file.sha256[:12]}…"
        else:
            label = f"đến số {doc.arrival_number}/{doc.arrival_year}"
            extra = f"from {doc.sender_name}, {format_number(doc.number, doc.symbol)}"
        state = "created" if created else "present"
        subject = spec.subject if len(spec.subject) <= 60 else spec.subject[:59] + "…"
        yield f"  {state:<8} {province.orgs[spec.org].organ_id:<15} {label:<20} {subject} ({extra})"


def _ensure_document(session: Session, province: _Province, spec: DocSpec) -> tuple[Document, bool]:
    org = province.orgs[spec.org]
    doc = session.scalar(select(Document).where(
        Document.organisation_id == org.id, Document.direction == spec.direction, Document.subject == spec.subject))
    if doc is not None:
        return doc, False
    leader = province.people[spec.org, Role.LEADER]
    data = dict(direction=spec.direction, doc_type=spec.doc_type, subject=spec.subject)
    if spec.direction == Direction.INCOMING:
        sender, number, symbol, issued = spec.sender
        data.update(sender_name=sender, number=number, symbol=symbol, issued_date=issued)
        author = province.actors[spec.org, Role.CLERK]  # the văn thư records what arrives
    else:
        competence = "TM." if org.level in ("district", "commune") else None
        data.update(place=_spec(spec.org).place, signer_name=leader.full_name, signer_position=leader.position,
                    signer_competence=competence, drafting_unit=spec.drafting_unit,
                    recipients=[*spec.recipients, f"Lưu: VT, {spec.drafting_unit or 'VP'}"])
        author = province.actors[spec.org, Role.SPECIALIST]  # a chuyên viên drafts
    return documents.create(session, author, DocumentCreate(**data)), True


def _spec(key: str) -> OrgSpec:
    return next(s for s in ORGS if s.key == key)


def _share(session: Session, province: _Province, spec: DocSpec, doc: Document) -> None:
    for key in spec.share_with:
        org_id = province.orgs[key].id
        if session.get(DocumentShare, (doc.id, org_id)) is None:  # sharing again would add audit noise
            documents.share(session, province.actors[spec.org, Role.CLERK], doc.id, org_id)


def _ensure_pdf(session: Session, runtime: Runtime, province: _Province, spec: DocSpec,
                doc: Document) -> DocumentFile:
    """The registered document's first PDF version: rendered with its number, then stored
    before the row that points at it is written."""
    existing = session.scalar(select(DocumentFile).where(
        DocumentFile.document_id == doc.id, DocumentFile.kind == files_service.FileKind.VERSION)
        .order_by(DocumentFile.seq))
    if existing is not None:
        return existing
    pdf = render_document(_printable(session, province, spec, doc))
    stored = runtime.store.put([pdf], content_type="application/pdf")
    filename = f"{doc.number:02d}-{doc.symbol}.pdf"
    return files_service.record(session, province.actors[spec.org, Role.CLERK], doc.id,
                                files_service.FileKind.VERSION, Upload(stored, filename, "application/pdf"),
                                note="demo: generated PDF")


def _printable(session: Session, province: _Province, spec: DocSpec, doc: Document) -> AdministrativeDocument:
    org = province.orgs[spec.org]
    parent = session.get(Organisation, org.parent_id) if org.parent_id else None
    competence = f"{doc.signer_competence} Ủy ban nhân dân" if doc.signer_competence else None
    title = "" if spec.doc_type == "cong_van" else DOCUMENT_TYPES[spec.doc_type][0]
    return AdministrativeDocument(
        agency=org.name, parent_agency=parent.name if parent else None,
        number_symbol=format_number(doc.number, doc.symbol), place_date=date_line(doc.place, doc.issued_date),
        title=title, subject=doc.subject, paragraphs=spec.paragraphs, signer_competence=competence,
        signer_position=doc.signer_position, signer_name=doc.signer_name, recipients=doc.recipients,
        created=datetime.combine(doc.issued_date, datetime.min.time(), UTC))


# --- Dossiers ------------------------------------------------------------------------------

def _seed_dossiers(session: Session, province: _Province) -> Iterator[str]:
    yield "Dossiers:"
    yield _work_dossier(session, province)
    yield _procedure_dossier(session, province)


def _work_dossier(session: Session, province: _Province) -> str:
    """A hồ sơ công việc at the department holding its outgoing documents."""
    org, actor = province.orgs["stttt"], province.actors["stttt", Role.SPECIALIST]
    members = list(session.scalars(select(Document).where(
        Document.organisation_id == org.id, Document.direction == Direction.OUTGOING).order_by(Document.id)))
    # The year the work started, not today's, so that a re-run next year finds the same file.
    title = f"Hồ sơ triển khai quản lý văn bản điện tử và ký số chuyên dùng năm {members[0].year}"
    dossier = session.scalar(select(Dossier).where(
        Dossier.organisation_id == org.id, Dossier.kind == DossierKind.WORK, Dossier.title == title))
    state = "present" if dossier else "created"
    if dossier is None:
        dossier = dossiers.create(session, actor, DossierCreate(kind=DossierKind.WORK, title=title,
                                                                retention="10 năm"))
    for member in members:
        if session.get(DossierDocument, (dossier.id, member.id)) is None:
            dossiers.file_document(session, actor, dossier.id, FilingCreate(document_id=member.id))
    return f"  {state:<8} {dossier.code} {title} ({len(members)} documents)"


def _procedure_dossier(session: Session, province: _Province) -> str:
    """A hồ sơ TTHC received at the commune's one-stop shop, identified by the applicant's
    12-digit personal id so that later procedures can reuse it instead of asking for paper."""
    org, actor = province.orgs["quynhthanh"], province.actors["quynhthanh", Role.SPECIALIST]
    dossier = session.scalar(select(Dossier).where(
        Dossier.organisation_id == org.id, Dossier.kind == DossierKind.PROCEDURE, Dossier.applicant_id == APPLICANT_ID))
    state = "present" if dossier else "created"
    if dossier is None:
        received = datetime.now(UTC)
        dossier = dossiers.create(session, actor, DossierCreate(
            kind=DossierKind.PROCEDURE, title="Đăng ký khai sinh", procedure_code="1.001193",
            applicant_id_type=ApplicantIdType.PERSONAL_ID, applicant_id=APPLICANT_ID,
            applicant_name="Nguyễn Thị Hoa", retention="Vĩnh viễn", received_at=received,
            due_at=received + timedelta(days=1)))
    have = set(session.scalars(select(DossierComponent.name).where(DossierComponent.dossier_id == dossier.id)))
    for name in PROCEDURE_COMPONENTS:
        if name not in have:
            dossiers.add_component(session, actor, dossier.id, ComponentCreate(name=name))
    return f"  {state:<8} {dossier.code} {dossier.title} (applicant {APPLICANT_ID})"
