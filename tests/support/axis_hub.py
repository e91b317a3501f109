"""Run ``python -m docsvc.axis_hub`` (= ``docsvc axis-hub``) as a real process on a free loopback
port, register agencies, and build test packages from the two edXML examples."""

from __future__ import annotations

import base64
import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from lxml import etree

from docsvc.axis_hub.cli import add_agency
from inter_axis.client import HubAxisTransport, HubEndpointSpec
from tests.support.server import free_port

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "standards" / "examples"
NS = {"e": "http://www.mic.gov.vn/TBT/QCVN_102_2016"}

PROVINCE = "000.00.00.H41"   # UBND tỉnh Nghệ An
DEPARTMENT = "000.00.12.H41"  # a department of the province
GOVERNMENT = "000.00.00.G22"  # Văn phòng Chính phủ


@dataclass
class Hub:
    """A running hub process and what is needed to restart it on the same state."""

    data_dir: Path
    agencies_file: Path
    database_url: str | None
    max_package_bytes: int
    port: int = field(default_factory=free_port)
    secrets: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    options: tuple[str, ...] = ()
    """More ``docsvc axis-hub`` options, e.g. ``("--max-batch-packages", "5")``."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Hub:
        self.log_path = self.data_dir.parent / f"hub-{self.port}-{time.monotonic_ns()}.log"
        cmd = [sys.executable, "-m", "docsvc.axis_hub", "--port", str(self.port), "--data-dir", str(self.data_dir),
               "--agencies-file", str(self.agencies_file), "--max-package-bytes", str(self.max_package_bytes)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        cmd += list(self.options)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCSVC_")} | {"PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, env=env, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"hub exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"hub did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing: what a power cut leaves."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def register(self, organ_id: str, name: str) -> str:
        """Add an agency to the agencies file (takes effect at the next start)."""
        self.secrets[organ_id] = add_agency(self.agencies_file, organ_id, name)
        return self.secrets[organ_id]

    def client(self, organ_id: str, secret: str | None = None, **spec) -> HubAxisTransport:
        return HubAxisTransport(HubEndpointSpec(endpoint=self.url, agency_id=organ_id,
                                                secret=secret or self.secrets[organ_id], **spec))

    def stored_packages(self) -> list[Path]:
        return sorted((self.data_dir / "packages").glob("*/*.edxml"))

    def partial_uploads(self) -> list[Path]:
        return sorted((self.data_dir / "incoming").glob("*.part"))

    def _engine(self) -> sa.Engine:
        return sa.create_engine(self.database_url or f"sqlite:///{self.data_dir / 'hub.sqlite3'}")

    def deliveries(self, recipient: str, kind: str | None = None) -> list[tuple[str, str, str]]:
        """(message id, kind, state) of every delivery to ``recipient``, read from the hub's own database."""
        from docsvc.axis_hub.models import HubDelivery, HubMessage

        query = (sa.select(HubMessage.id, HubMessage.kind, HubDelivery.state)
                 .join(HubDelivery, HubDelivery.message_id == HubMessage.id)
                 .where(HubDelivery.recipient == recipient).order_by(HubMessage.received_at, HubMessage.id))
        if kind is not None:
            query = query.where(HubMessage.kind == kind)
        engine = self._engine()
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(query)]
        finally:
            engine.dispose()

    def deliver_unchecked(self, package: Path, *, sender: str, recipient: str, kind: str) -> str:
        """Put ``package`` in ``recipient``'s inbox without the hub's checks, as another axis that does
        not check (or an older hub) would deliver it; returns its message id. Written the way the hub
        writes (file first, then the rows), so the running hub lists and serves it."""
        import hashlib

        from docsvc.axis_hub.models import HubDelivery, HubMessage, utcnow

        data = package.read_bytes()
        message_id = uuid.uuid4().hex
        key = f"{message_id[:2]}/{message_id}.edxml"
        target = self.data_dir / "packages" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        engine = self._engine()
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(HubMessage).values(
                    id=message_id, sender=sender, idempotency_key=f"unchecked-{message_id}", kind=kind,
                    document_id="unchecked", business_type=None, status_code=None, size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(), storage_key=key, received_at=utcnow()))
                conn.execute(sa.insert(HubDelivery).values(message_id=message_id, recipient=recipient, sender=sender,
                                                           new_document_id=None, state="pending"))
        finally:
            engine.dispose()
        return message_id

    def requests(self, method: str, path: str) -> int:
        """How many ``method path`` requests the hub answered, from its access log (all its runs)."""
        logs = sorted(self.data_dir.parent.glob(f"hub-{self.port}-*.log"))
        return sum(p.read_text(errors="replace").count(f'"{method} {path} ') for p in logs)

    def content_fetches(self, message_id: str) -> int:
        """How often the package's bytes were downloaded, alone or in a ``get_many`` answer, from the
        hub's log (all its runs)."""
        logs = sorted(self.data_dir.parent.glob(f"hub-{self.port}-*.log"))
        count = 0
        for path in logs:
            for line in path.read_text(errors="replace").splitlines():
                if f"GET /v1/messages/{message_id}/content " in line:
                    count += 1
                elif "get_many by " in line:
                    count += line.rpartition(": ")[2].split().count(message_id)
        return count


def new_hub(tmp_path: Path, database_url: str | None = None, max_package_bytes: int = 8 * 1024**2,
            options: tuple[str, ...] = ()) -> Hub:
    """A hub (not yet started) with the province, a department and the Government Office registered."""
    hub = Hub(data_dir=tmp_path / "hub", agencies_file=tmp_path / "agencies.json", database_url=database_url,
              max_package_bytes=max_package_bytes, options=options)
    hub.register(PROVINCE, "Ủy ban nhân dân tỉnh Nghệ An")
    hub.register(DEPARTMENT, "Sở Thông tin và Truyền thông tỉnh Nghệ An")
    hub.register(GOVERNMENT, "Văn phòng Chính phủ")
    return hub


# -- packages -----------------------------------------------------------------------------------
def document_package(path: Path, *, sender: str = PROVINCE, recipients: tuple[str, ...] = (GOVERNMENT,),
                     document_id: str | None = None, attachment_bytes: int = 0, business_type: str = "0") -> Path:
    """``edoc_new.edxml`` with its From, To list, DocumentId (and optionally a big attachment) replaced."""
    tree = etree.parse(str(EXAMPLES / "edoc_new.edxml"))
    header = tree.find(".//e:MessageHeader", NS)
    header.find("e:From/e:OrganId", NS).text = sender
    tos = [header.find("e:To", NS)]
    for _ in recipients[1:]:
        tos.append(copy.deepcopy(tos[0]))
        tos[-2].addnext(tos[-1])
    for to, organ_id in zip(tos, recipients, strict=False):
        to.find("e:OrganId", NS).text = organ_id
    if not recipients:
        header.remove(tos[0])
    header.find("e:DocumentId", NS).text = document_id or f"{sender},2025/03/14,12/CT-UBND"
    tree.find(".//e:BussinessDocType", NS).text = business_type
    if attachment_bytes:
        raw = os.urandom(attachment_bytes * 3 // 4)
        tree.find(".//e:ContentTransferEncoded", NS).text = base64.encodebytes(raw).decode()
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    return path


def status_package(path: Path, *, sender: str = GOVERNMENT, original_sender: str = PROVINCE,
                   document_id: str | None = None, code: str = "03", to: tuple[str, ...] = ()) -> Path:
    """``status_03.edxml`` from ``sender`` about ``original_sender``'s document; ``to`` adds a ``To``
    per OrganId after ``From`` (as docsvc addresses its statuses; §1.9 itself names none)."""
    tree = etree.parse(str(EXAMPLES / "status_03.edxml"))
    tree.find(".//e:From/e:OrganId", NS).text = sender
    tree.find(".//e:ResponseFor/e:OrganId", NS).text = original_sender
    tree.find(".//e:ResponseFor/e:DocumentId", NS).text = document_id or f"{original_sender},2025/03/14,12/CT-UBND"
    tree.find(".//e:StatusCode", NS).text = code
    anchor = tree.find(".//e:MessageHeader/e:From", NS)
    for organ_id in to:
        element = etree.Element(f"{{{NS['e']}}}To")
        etree.SubElement(element, f"{{{NS['e']}}}OrganId").text = organ_id
        anchor.addnext(element)
        anchor = element
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    return path


@contextmanager
def pg_database() -> Iterator[str]:
    """An empty PostgreSQL database for one hub (the hub creates its own tables), dropped afterwards."""
    admin_url = os.environ.get("DOCSVC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"axis_hub_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
