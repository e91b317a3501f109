"""``HubService.accept_many`` in process (SQLite), where a concurrent request can be made to commit
at the worst moment: between a batch's replay look-up and its transaction, so that the batch's
checks or its insert meet the other request's rows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from docsvc.axis_hub.cli import durable_engine
from docsvc.axis_hub.service import AgencyEntry, HubService, Incoming
from docsvc.axis_hub.storage import PackageStorage
from docsvc.db.session import make_engine
from inter_axis.transport import SendReceipt, TransportError
from tests.support.axis_hub import EXAMPLES, GOVERNMENT, PROVINCE, document_package

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/standards/examples is not beside the checkout")


@pytest.fixture
def service(tmp_path: Path) -> HubService:
    service = HubService(durable_engine(make_engine(f"sqlite:///{tmp_path / 'hub.sqlite3'}")),
                         PackageStorage(tmp_path / "data"), 8 * 1024**2)
    service.prepare([AgencyEntry(organ_id, organ_id, hashlib.sha256(organ_id.encode()).hexdigest())
                     for organ_id in (PROVINCE, GOVERNMENT)])
    yield service
    service.engine.dispose()


def _incoming(service: HubService, package: Path, key: str) -> Incoming:
    upload = service.storage.begin()
    service.storage.write(upload, package.read_bytes())
    return Incoming(key, upload)


def _packages(tmp_path: Path, count: int, prefix: str = "p") -> list[Path]:
    return [document_package(tmp_path / f"{prefix}{i}.edxml", document_id=f"{PROVINCE},2025/03/14,{prefix}{i}/X")
            for i in range(count)]


def _race(service: HubService, monkeypatch, competitor) -> None:
    """Run ``competitor()`` (another request, committed) just before the batch's transaction."""
    record = service._record
    raced = []

    def racing(*args):
        if not raced:
            raced.append(True)
            competitor()
        return record(*args)

    monkeypatch.setattr(service, "_record", racing)


def _files(service: HubService) -> list[Path]:
    return sorted(service.storage.packages.glob("*/*.edxml"))


def test_a_retry_racing_its_original_gets_the_original_receipt(service: HubService, tmp_path: Path, monkeypatch):
    packages = _packages(tmp_path, 3)
    original = {}
    _race(service, monkeypatch, lambda: original.update(
        receipt=service.accept(PROVINCE, _incoming(service, packages[1], "key-1-xxxx").upload, "key-1-xxxx")))
    outcomes = service.accept_many(PROVINCE, [_incoming(service, p, f"key-{i}-xxxx") for i, p in enumerate(packages)])
    assert [type(o) for o in outcomes] == [SendReceipt] * 3
    assert (outcomes[1].message_id, outcomes[1].replayed) == (original["receipt"].message_id, True)
    assert len(_files(service)) == 3 and list(service.storage.incoming.iterdir()) == []


def test_a_key_taken_by_other_bytes_meanwhile_rolls_the_batch_back_and_records_one_by_one(
        service: HubService, tmp_path: Path, monkeypatch):
    """No check sees it coming (another DocumentId): the insert meets the unique key, the batch's
    transaction is rolled back whole, and the packages are recorded one transaction each."""
    packages = _packages(tmp_path, 3)
    other = _packages(tmp_path, 1, "other")[0]
    _race(service, monkeypatch, lambda: service.accept(PROVINCE, _incoming(service, other, "key-1-xxxx").upload,
                                                       "key-1-xxxx"))
    outcomes = service.accept_many(PROVINCE, [_incoming(service, p, f"key-{i}-xxxx") for i, p in enumerate(packages)])
    assert isinstance(outcomes[0], SendReceipt) and isinstance(outcomes[2], SendReceipt)
    assert isinstance(outcomes[1], TransportError) and outcomes[1].code == "idempotency_conflict"
    assert len(_files(service)) == 3  # two of the batch, one of the competitor
    assert {r["message_id"] for r in service.pending_for(GOVERNMENT, 100)} >= {outcomes[0].message_id,
                                                                              outcomes[2].message_id}
    assert list(service.storage.incoming.iterdir()) == []


def test_a_document_taken_meanwhile_under_another_key_is_a_duplicate(service: HubService, tmp_path: Path,
                                                                     monkeypatch):
    packages = _packages(tmp_path, 2)
    _race(service, monkeypatch, lambda: service.accept(PROVINCE, _incoming(service, packages[0], "other-key").upload,
                                                       "other-key"))
    outcomes = service.accept_many(PROVINCE, [_incoming(service, p, f"key-{i}-xxxx") for i, p in enumerate(packages)])
    assert isinstance(outcomes[0], TransportError) and outcomes[0].code == "duplicate_document"
    assert isinstance(outcomes[1], SendReceipt)
    assert len(_files(service)) == 2
