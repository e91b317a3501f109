"""Builders for test data through the real services and the real HTTP API."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyotp
from fastapi.testclient import TestClient

from docsvc.organisations import service as orgs
from docsvc.organisations.schemas import OrganisationCreate
from docsvc.principal import SERVICE_ACTOR, Role
from docsvc.users import service as users
from docsvc.users.schemas import UserCreate

PASSWORD = "correct horse battery staple"


@dataclass
class Person:
    id: int
    username: str
    organisation_id: int
    token: str = ""
    totp_secret: str | None = None
    last_totp_code: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Province:
    root: int
    dept: int  # Sở Thông tin và Truyền thông
    other_dept: int  # Sở Tư pháp
    district: int
    commune: int
    people: dict[str, Person] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Person:
        return self.people[key]


def login(client: TestClient, username: str, password: str = PASSWORD, otp: str | None = None) -> str:
    data = {"username": username, "password": password}
    if otp:
        data["otp"] = otp
    response = client.post("/auth/token", data=data)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def make_org(client: TestClient, organ_id: str, name: str, short: str, level: str, parent: int | None) -> int:
    with client.runtime.sessions() as session:
        org = orgs.create(session, SERVICE_ACTOR, OrganisationCreate(
            organ_id=organ_id, name=name, short_name=short, level=level, parent_id=parent))
        return org.id


def make_person(client: TestClient, username: str, org_id: int, *roles: Role, full_name: str | None = None) -> Person:
    with client.runtime.sessions() as session:
        user, _ = users.create_user(session, SERVICE_ACTOR, UserCreate(
            username=username, full_name=full_name or username.title(), organisation_id=org_id,
            roles=list(roles), password=PASSWORD))
    return Person(user.id, username, org_id, login(client, username))


def enrol_totp(client: TestClient, person: Person) -> str:
    secret = client.post("/auth/totp/enrol", headers=person.headers).json()["secret"]
    code = pyotp.TOTP(secret).now()
    assert client.post("/auth/totp/confirm", json={"code": code}, headers=person.headers).status_code == 204
    person.totp_secret, person.last_totp_code = secret, code
    return secret


def build_province(client: TestClient) -> Province:
    root = make_org(client, "000.00.00.H41", "Ủy ban nhân dân tỉnh Nghệ An", "UBND", "province", None)
    dept = make_org(client, "000.00.12.H41", "Sở Thông tin và Truyền thông", "STTTT", "department", root)
    other = make_org(client, "000.00.15.H41", "Sở Tư pháp", "STP", "department", root)
    district = make_org(client, "000.00.24.H41", "Ủy ban nhân dân huyện Quỳnh Lưu", "UBND", "district", root)
    commune = make_org(client, "000.46.24.H41", "Ủy ban nhân dân xã Quỳnh Thanh", "UBND", "commune", district)
    p = Province(root, dept, other, district, commune)
    p.people["admin"] = make_person(client, "admin", root, Role.ADMIN)
    p.people["clerk"] = make_person(client, "vanthu", dept, Role.CLERK, full_name="Trần Thị Bình")
    p.people["specialist"] = make_person(client, "chuyenvien", dept, Role.SPECIALIST)
    p.people["leader"] = make_person(client, "lanhdao", dept, Role.LEADER, full_name="Nguyễn Văn An")
    p.people["archivist"] = make_person(client, "luutru", dept, Role.ARCHIVIST)
    p.people["other_clerk"] = make_person(client, "vanthu.stp", other, Role.CLERK)
    p.people["district_admin"] = make_person(client, "admin.huyen", district, Role.ADMIN)
    return p


def tiny_pdf(text: str = "Hello") -> bytes:
    """A valid one-page PDF, built by hand so tests do not depend on a PDF library."""
    content = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
