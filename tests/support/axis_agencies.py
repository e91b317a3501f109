"""Two docsvc agencies in one test process, each with its own database, exchanging over a real
``docsvc axis-hub`` process: the province's Sở TT&TT (sender) and the Government Office (receiver).

Both copy the session's development PKI, so each trusts the other's seal, as two agencies under the
same national CA do."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from docsvc.app import create_app
from docsvc.axis import delivery, intake
from docsvc.axis.models import AxisExchange
from tests.conftest import PG_ADMIN_URL, make_settings
from tests.support.axis_hub import DEPARTMENT, GOVERNMENT, Hub
from tests.support.factories import Person, build_province, enrol_totp, make_org, make_person
from tests.support.signing import BASE_URL, PDF, PIN, decree30_pdf, enrol_key, fresh_otp, include_signing_routes


@dataclass
class Agency:
    client: TestClient
    clerk: Person
    org_id: int

    @property
    def rt(self):
        return self.client.runtime

    def poll(self) -> dict[str, int]:
        return intake.poll(self.rt)

    def send_due(self) -> list[str]:
        """What the beat's retry job does, run now (forcing not-yet-due rows is not done here)."""
        documents, statuses = delivery.due_rows(self.rt.sessions)
        states = [delivery.attempt(self.rt.sessions, self.rt.settings, self.rt.store, AxisExchange, i)
                  for i in documents]
        for exchange_id in statuses:
            states += delivery.send_statuses(self.rt.sessions, self.rt.settings, self.rt.store, exchange_id)
        return states


@contextmanager
def second_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second migrated database of the same kind as ``database_url`` (copied from its template)."""
    if database_url.startswith("sqlite"):
        path = tmp_path / "second.sqlite3"
        shutil.copy(sa.make_url(database_url).database, path)
        yield f"sqlite:///{path}"
        return
    template = sa.make_url(database_url).database
    name = f"docsvc_b_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # the fresh per-test database is still empty of rows: copy it
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _client(tmp: Path, database_url: str, pki_template: Path, hub: Hub, organ_id: str, **axis) -> TestClient:
    pki_dir = tmp / "pki"
    shutil.copytree(pki_template, pki_dir)
    settings = make_settings(tmp, database_url, signing={"pki_dir": pki_dir, "public_base_url": BASE_URL,
                                                         "fetch_revocation": False},
                             axis={"endpoint": hub.url, "credentials": {organ_id: hub.secrets[organ_id]},
                                   "poll_seconds": 1, "retry_base_seconds": 0.2, "retry_cap_seconds": 2, **axis})
    app = include_signing_routes(create_app(settings, relay_outbox=False))
    client = TestClient(app)
    client.__enter__()
    client.runtime = app.state.runtime
    return client


@contextmanager
def two_agencies(tmp_path: Path, database_url: str, pki_template: Path, hub: Hub,
                 sender_axis: dict | None = None) -> Iterator[tuple[Agency, Agency]]:
    """(sender: the province with its Sở TT&TT clerk, receiver: the Government Office's clerk);
    ``sender_axis`` overrides the sender's axis settings (retry policy…)."""
    with second_database(database_url, tmp_path) as other_url:
        sender_client = _client(tmp_path / "a", database_url, pki_template, hub, DEPARTMENT, **(sender_axis or {}))
        receiver_client = _client(tmp_path / "b", other_url, pki_template, hub, GOVERNMENT)
        try:
            province = build_province(sender_client)
            clerk = province["clerk"]
            enrol_totp(sender_client, clerk)
            enrol_key(sender_client, clerk)
            gov = make_org(receiver_client, GOVERNMENT, "Văn phòng Chính phủ", "VPCP", "province", None)
            gov_clerk = make_person(receiver_client, "vanthu.vpcp", gov, *_clerk_roles())
            yield Agency(sender_client, clerk, province.dept), Agency(receiver_client, gov_clerk, gov)
        finally:
            for client in (sender_client, receiver_client):
                client.__exit__(None, None, None)


def _clerk_roles():
    from docsvc.principal import Role

    return (Role.CLERK,)


def issue_to(agency: Agency, recipients: list[str], pdf: bytes | None = None, subject: str = "Kế hoạch chuyển đổi số") -> dict:
    """Draft, upload and issue an outgoing document as the agency's clerk; returns the issued document."""
    client, clerk = agency.client, agency.clerk
    body = {"direction": "outgoing", "doc_type": "ke_hoach", "subject": subject, "recipients": recipients,
            "signer_name": "Nguyễn Văn An", "signer_position": "GIÁM ĐỐC"}
    created = client.post("/documents", json=body, headers=clerk.headers)
    assert created.status_code == 201, created.text
    doc = created.json()["id"]
    uploaded = client.post(f"/documents/{doc}/versions?filename=ke-hoach.pdf", content=pdf or decree30_pdf(),
                           headers={**clerk.headers, **PDF})
    assert uploaded.status_code == 201, uploaded.text
    issued = client.post(f"/documents/{doc}/issue", headers=clerk.headers,
                         json={"pin": PIN, "otp": fresh_otp(client, clerk)})
    assert issued.status_code == 201, issued.text
    return issued.json()["document"]


def signed_status(agency: Agency, path: Path, *, code: str, document_id: str, original_sender: str,
                  to: str, description: str = "Thu hồi văn bản điện tử") -> Path:
    """A status package as ``agency`` sends it (built by docsvc, sealed with the organisation's seal),
    written to ``path`` instead of being sent: tests then change its bytes."""
    from datetime import UTC, datetime

    from docsvc.axis import packages
    from docsvc.axis.transport import seal_key
    from docsvc.organisations.models import Organisation

    with agency.rt.sessions() as session:
        org = session.get(Organisation, agency.org_id)
        seal = seal_key(session, agency.rt.settings, org)
        session.commit()
        message = packages.status_message(org, original_sender, document_id, code, description,
                                          datetime.now(UTC), "Trần Thị Bình")
    with packages.signed_file(packages.write_status_to(message, to), seal,
                              agency.rt.settings.axis.max_package_bytes) as (signed, _sha256):
        shutil.copyfile(signed, path)
    return path
