"""The hub killed with SIGKILL at each point of a send (and of a ``send_many`` batch), then
restarted on the same data: the client's retry with the same idempotency keys ends with exactly
one delivered copy of each package, and nothing half-written stays behind."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from inter_axis.transport import TransportError, new_idempotency_key
from tests.support.axis_hub import (
    EXAMPLES,
    GOVERNMENT,
    PROVINCE,
    Hub,
    document_package,
    new_hub,
    pg_database,
)

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/standards/examples is not beside the checkout")


class SlowPackage(io.FileIO):
    """A package file that is read slowly after its first 512 KiB, so the upload is in flight
    long enough to kill the hub in the middle of it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "rb")
        self.halfway = threading.Event()

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        if self.tell() > 512 * 1024:
            self.halfway.set()
            time.sleep(0.2)
        return data


def _send_in_background(hub: Hub, package, key: str) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(hub.client(PROVINCE).send(package, idempotency_key=key))
        except TransportError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _copies_delivered(hub: Hub, document_id: str) -> list[str]:
    return [r.message_id for r in hub.client(GOVERNMENT).list_received(1000) if r.document_id == document_id]


def _retry_delivers_once(hub: Hub, package: Path, key: str, document_id: str) -> None:
    receipt = hub.client(PROVINCE).send(package, idempotency_key=key)
    assert _copies_delivered(hub, document_id) == [receipt.message_id]
    assert hub.client(PROVINCE).send(package, idempotency_key=key).message_id == receipt.message_id
    assert len(hub.stored_packages()) == 1


@pytest.fixture
def sqlite_hub(tmp_path):
    hub = new_hub(tmp_path).start()
    yield hub
    hub.stop()


def test_killed_in_the_middle_of_a_large_upload(sqlite_hub: Hub, tmp_path: Path):
    hub = sqlite_hub
    doc_id = f"{PROVINCE},2025/03/14,77/CT-UBND"
    path = document_package(tmp_path / "big.edxml", document_id=doc_id, attachment_bytes=4 * 1024**2)
    key = new_idempotency_key()
    slow = SlowPackage(path)
    thread, outcome = _send_in_background(hub, slow, key)

    assert slow.halfway.wait(30)
    _wait_for(lambda: any(p.stat().st_size > 0 for p in hub.partial_uploads()))
    hub.kill()
    thread.join(30)
    slow.close()
    assert isinstance(outcome[0], TransportError) and outcome[0].code == "unavailable", outcome

    hub.start()
    assert hub.partial_uploads() == [] and hub.stored_packages() == []
    assert "removed 1 file(s) left by an interrupted upload" in hub.log()
    _retry_delivers_once(hub, path, key, doc_id)


def test_killed_after_accepting_before_the_client_saw_the_receipt(sqlite_hub: Hub, tmp_path: Path):
    hub = sqlite_hub
    doc_id = f"{PROVINCE},2025/03/14,78/CT-UBND"
    path = document_package(tmp_path / "doc.edxml", document_id=doc_id, attachment_bytes=100_000)
    key = new_idempotency_key()
    first = hub.client(PROVINCE).send(path, idempotency_key=key)  # the response is "lost" here
    hub.kill()
    hub.start()
    retry = hub.client(PROVINCE).send(path, idempotency_key=key)
    assert (retry.message_id, retry.replayed) == (first.message_id, True)
    assert _copies_delivered(hub, doc_id) == [first.message_id]
    assert len(hub.stored_packages()) == 1


@pytest.mark.postgres
def test_killed_between_storing_the_file_and_committing(tmp_path: Path):
    """PostgreSQL lets the test hold the hub at that exact point: a table lock that permits reads
    but blocks the hub's insert, taken before the send and released after the kill."""
    with pg_database() as url:
        hub = new_hub(tmp_path, database_url=url).start()
        try:
            doc_id = f"{PROVINCE},2025/03/14,79/CT-UBND"
            path = document_package(tmp_path / "doc.edxml", document_id=doc_id, attachment_bytes=200_000)
            key = new_idempotency_key()
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql("LOCK TABLE hub_messages IN EXCLUSIVE MODE")
                thread, outcome = _send_in_background(hub, path, key)
                _wait_for(lambda: len(hub.stored_packages()) == 1)  # placed and fsynced, row not committed
                hub.kill()
                thread.join(30)
            engine.dispose()
            assert isinstance(outcome[0], TransportError) and outcome[0].code == "unavailable", outcome

            hub.start()
            assert hub.stored_packages() == [], "the file without a committed row was not swept"
            assert _copies_delivered(hub, doc_id) == []
            _retry_delivers_once(hub, path, key, doc_id)
        finally:
            hub.stop()


# -- send_many ----------------------------------------------------------------------------------
def _batch(tmp_path: Path, name: str, sizes: tuple[int, ...]) -> tuple[list[tuple[Path, str]], list[str]]:
    """Packages of these attachment sizes, each with its key, and their DocumentIds."""
    doc_ids = [f"{PROVINCE},2025/03/14,{name}{i}/CT-UBND" for i in range(len(sizes))]
    packages = [document_package(tmp_path / f"{name}{i}.edxml", document_id=d, attachment_bytes=size)
                for i, (d, size) in enumerate(zip(doc_ids, sizes, strict=True))]
    return [(p, new_idempotency_key()) for p in packages], doc_ids


def _send_many_in_background(hub: Hub, batch: list) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(hub.client(PROVINCE).send_many(batch))
        except TransportError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _batch_retry_delivers_each_once(hub: Hub, batch: list, doc_ids: list[str]) -> None:
    receipts = hub.client(PROVINCE).send_many(batch)
    assert all(not isinstance(r, TransportError) for r in receipts), receipts
    for receipt, doc_id in zip(receipts, doc_ids, strict=True):
        assert _copies_delivered(hub, doc_id) == [receipt.message_id]
    again = hub.client(PROVINCE).send_many(batch)
    assert [(r.message_id, r.replayed) for r in again] == [(r.message_id, True) for r in receipts]
    assert len(hub.stored_packages()) == len(batch) and hub.partial_uploads() == []


def test_killed_in_the_middle_of_a_batch(sqlite_hub: Hub, tmp_path: Path):
    hub = sqlite_hub
    batch, doc_ids = _batch(tmp_path, "mid", (50_000, 50_000, 6 * 1024**2, 50_000))
    slow = SlowPackage(batch[2][0])
    thread, outcome = _send_many_in_background(hub, [batch[0], batch[1], (slow, batch[2][1]), batch[3]])

    assert slow.halfway.wait(30)
    _wait_for(lambda: any(p.stat().st_size > 0 for p in hub.partial_uploads()))
    hub.kill()
    thread.join(30)
    slow.close()
    assert isinstance(outcome[0], TransportError) and outcome[0].code == "unavailable", outcome

    hub.start()
    assert hub.partial_uploads() == [] and hub.stored_packages() == []
    _batch_retry_delivers_each_once(hub, batch, doc_ids)


def test_killed_after_accepting_a_batch_before_the_client_saw_the_answer(sqlite_hub: Hub, tmp_path: Path):
    hub = sqlite_hub
    batch, doc_ids = _batch(tmp_path, "lost", (20_000, 20_000, 20_000))
    first = hub.client(PROVINCE).send_many(batch)  # the response is "lost" here
    hub.kill()
    hub.start()
    _batch_retry_delivers_each_once(hub, batch, doc_ids)
    assert [r.message_id for r in hub.client(PROVINCE).send_many(batch)] == [r.message_id for r in first]


@pytest.mark.postgres
def test_killed_between_placing_a_batch_and_committing_it(tmp_path: Path):
    """The table lock of ``test_killed_between_storing_the_file_and_committing``, for a batch: every
    file placed and fsynced, the one transaction not committed."""
    with pg_database() as url:
        hub = new_hub(tmp_path, database_url=url).start()
        try:
            batch, doc_ids = _batch(tmp_path, "lock", (30_000, 30_000, 30_000))
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql("LOCK TABLE hub_messages IN EXCLUSIVE MODE")
                thread, outcome = _send_many_in_background(hub, batch)
                _wait_for(lambda: len(hub.stored_packages()) == len(batch))
                hub.kill()
                thread.join(30)
            engine.dispose()
            assert isinstance(outcome[0], TransportError) and outcome[0].code == "unavailable", outcome

            hub.start()
            assert hub.stored_packages() == [], "files without a committed row were not swept"
            assert all(_copies_delivered(hub, d) == [] for d in doc_ids)
            _batch_retry_delivers_each_once(hub, batch, doc_ids)
        finally:
            hub.stop()
