"""Two ``docsvc serve`` processes (each with its embedded worker and beat) exchanging over a real
``docsvc axis-hub`` process, all on loopback. Users are created directly in each server's database;
everything else goes through HTTP."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from docsvc.principal import SERVICE_ACTOR, Role
from docsvc.runtime import Runtime
from docsvc.settings import Settings
from docsvc.users import service as users
from docsvc.users.schemas import UserCreate
from tests.conftest import TEST_SECRET
from tests.support.axis_hub import Hub
from tests.support.factories import PASSWORD, Person, enrol_totp, login
from tests.support.server import Server, start_server
from tests.support.signing import BASE_URL

AUTH = {"DOCSVC_AUTH__ARGON2_TIME_COST": "1", "DOCSVC_AUTH__ARGON2_MEMORY_KIB": "8192"}


@dataclass
class AgencyProcess:
    server: Server
    organ_id: str
    client: httpx.Client
    """Talks to the server; ``client.runtime`` reads its database (for fresh TOTP codes)."""
    clerk: Person | None = None

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.clerk.headers)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.client.post(path, headers=self.clerk.headers, **kwargs)


def start_agency(tmp: Path, pki_template: Path, hub: Hub, organ_id: str, name: str) -> AgencyProcess:
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True)
    shutil.copytree(pki_template, data_dir / "pki")
    env = {"DOCSVC_SECRET_KEY": TEST_SECRET, "DOCSVC_ENVIRONMENT": "test", **AUTH,
           "DOCSVC_ROOT_ORGAN_ID": organ_id, "DOCSVC_ROOT_ORGANISATION_NAME": name,
           "DOCSVC_SIGNING__PUBLIC_BASE_URL": BASE_URL, "DOCSVC_SIGNING__FETCH_REVOCATION": "false",
           "DOCSVC_AXIS__ENDPOINT": hub.url, "DOCSVC_AXIS__CREDENTIALS": json.dumps({organ_id: hub.secrets[organ_id]}),
           "DOCSVC_AXIS__POLL_SECONDS": "1", "DOCSVC_AXIS__RETRY_BASE_SECONDS": "0.5",
           "DOCSVC_AXIS__RETRY_CAP_SECONDS": "2"}
    server = start_server(data_dir, env=env, timeout=120)
    client = httpx.Client(base_url=server.url, timeout=60)
    client.runtime = Runtime(Settings(data_dir=data_dir, secret_key=TEST_SECRET, environment="test",
                                      auth={"argon2_time_cost": 1, "argon2_memory_kib": 8192}))
    agency = AgencyProcess(server, organ_id, client)
    agency.clerk = _clerk(agency)
    return agency


def _clerk(agency: AgencyProcess) -> Person:
    from sqlalchemy import select

    from docsvc.organisations.models import Organisation

    with agency.client.runtime.sessions() as session:
        org_id = session.scalar(select(Organisation.id).where(Organisation.organ_id == agency.organ_id))
        user, _ = users.create_user(session, SERVICE_ACTOR, UserCreate(
            username="vanthu", full_name="Trần Thị Bình", organisation_id=org_id, roles=[Role.CLERK],
            password=PASSWORD))
    person = Person(user.id, "vanthu", org_id, login(agency.client, "vanthu"))
    enrol_totp(agency.client, person)
    return person


def stop_agency(agency: AgencyProcess) -> None:
    agency.client.close()
    agency.client.runtime.dispose()
    agency.server.stop()


def wait_for(condition: Callable[[], object], timeout: float = 90.0, what: str = "condition",
             logs: Callable[[], str] = lambda: "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached within {timeout}s\n{logs()[-4000:]}")
