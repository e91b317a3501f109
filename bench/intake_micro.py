"""Axis intake, receiver side, step by step: CPU ms per document of registering a batch in one
transaction (``intake._register_all``), of storing the attachments (``intake._store_attachments``), and
of the per-batch statements around them (``_known_outcomes``, ``_mark_acked``).

Setup (not timed), as ``bench/axis.py``'s ``--breakdown`` does it: a real hub process, agency A issuing
``--batch`` one-page documents (each with its own freshly sealed PDF) to agency B, A delivering them;
B lists, fetches and parses them once. B's database is then snapshotted, and each repeat registers the
same prepared batch into a fresh copy of the snapshot with the same engine (its statement cache warm,
as in a long-running poller). Storing is timed into a fresh object store each repeat (its fan-out
directories made beforehand, as in a store in use), so the content-addressed store cannot skip a write.

Usage: ``.venv/bin/python bench/intake_micro.py [--batch 50] [--repeats 7] [--pg URL] [--profile N]``;
``--pg`` runs B on PostgreSQL (an admin URL: a database is created and dropped), ``--profile N`` prints
cProfile's top N functions (by own time) of one more registration of the batch. Figures are medians
of the repeats (the first, warm-up, repeat is left out) of ``time.process_time``."""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._axis_setup import agencies as _agencies  # noqa: E402
from bench._axis_setup import sealed_pdf as _sealed_pdf  # noqa: E402
from bench._common import format_table, machine, median  # noqa: E402

MiB = 1024 * 1024


def _issue_and_send(a, count: int, work: Path) -> None:
    """``count`` issued documents of A addressed to B, delivered to the hub."""
    from sqlalchemy import select

    from docsvc.axis import delivery
    from docsvc.axis import service as axis_service
    from docsvc.axis.models import AxisExchange
    from docsvc.documents.models import Document, DocumentFile
    from docsvc.organisations.models import Organisation
    from docsvc.principal import SERVICE_ACTOR
    from tests.support.axis_hub import GOVERNMENT

    stored = {}
    for number in range(1, count + 1):
        pdf = _sealed_pdf(a, work, number)
        with pdf.open("rb") as handle:
            stored[number] = a.store.put(iter(lambda h=handle: h.read(MiB), b""), content_type="application/pdf")
        pdf.unlink()
    ids = []
    with a.sessions() as session:
        org = session.scalar(select(Organisation))
        for number in range(1, count + 1):
            doc = Document(organisation_id=org.id, direction="outgoing", doc_type="ke_hoach", status="issued",
                           year=2026, number=number, symbol="KH-STTTT", issuer=org.organ_id,
                           issued_date=date(2026, 3, 5), subject=f"Kế hoạch số {number}",
                           recipients=[f"{GOVERNMENT} - Văn phòng Chính phủ"])
            session.add(doc)
            session.flush()
            obj = stored[number]
            session.add(DocumentFile(document_id=doc.id, kind="version", seq=1, filename="ke-hoach.pdf",
                                     content_type="application/pdf", size=obj.size, sha256=obj.sha256,
                                     object_key=obj.key))
            ids += [e.id for e in axis_service.queue_outgoing(session, a.settings, SERVICE_ACTOR, doc)]
        session.commit()
    for exchange_id in ids:
        assert delivery.attempt(a.sessions, a.settings, a.store, AxisExchange, exchange_id) == "sent"


class _Database:
    """B's database as it was after setup, restored before each repeat under the same engine."""

    def __init__(self, rt, work: Path) -> None:
        from sqlalchemy import make_url

        self.rt, self.url = rt, make_url(rt.settings.resolved_database_url)
        rt.engine.dispose()
        if self.url.get_backend_name() == "sqlite":
            self.snapshot = work / "snapshot.sqlite3"
            shutil.copy(self.url.database, self.snapshot)
        else:
            self.snapshot = f"{self.url.database}_snap"
            self._admin(f'CREATE DATABASE "{self.snapshot}" TEMPLATE "{self.url.database}"')

    def _admin(self, *statements: str) -> None:
        import sqlalchemy as sa

        admin = sa.create_engine(self.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                for statement in statements:
                    conn.exec_driver_sql(statement)
        finally:
            admin.dispose()

    def restore(self) -> None:
        self.rt.engine.dispose()  # the pool goes; the engine (and its compiled-statement cache) stays
        if self.url.get_backend_name() == "sqlite":
            for suffix in ("-wal", "-shm"):
                Path(self.url.database + suffix).unlink(missing_ok=True)
            shutil.copy(self.snapshot, self.url.database)
        else:
            self._admin(f'DROP DATABASE IF EXISTS "{self.url.database}" WITH (FORCE)',
                        f'CREATE DATABASE "{self.url.database}" TEMPLATE "{self.snapshot}"')

    def drop(self) -> None:
        self.rt.engine.dispose()
        if self.url.get_backend_name() != "sqlite":
            self._admin(f'DROP DATABASE IF EXISTS "{self.url.database}" WITH (FORCE)',
                        f'DROP DATABASE IF EXISTS "{self.snapshot}" WITH (FORCE)')


def _store_in_use(root: Path):
    """A filesystem store whose 256 fan-out directories (objects and sidecars) exist, as in a store
    that has held a few thousand objects: a new one would create two per object at first."""
    from archive.filesystem import FilesystemObjectStore

    for n in range(256):
        for parent in (root / "sha256", root / "meta" / "sha256"):
            (parent / f"{n:02x}").mkdir(parents=True, exist_ok=True)
    return FilesystemObjectStore(root)


def _check(rt, count: int) -> None:
    """The batch really registered: ``count`` documents with consecutive arrival numbers, chain intact."""
    from sqlalchemy import func, select

    from docsvc.audit import service as audit
    from docsvc.documents.models import Document, DocumentFile
    from docsvc.jobs.models import OutboxMessage

    with rt.sessions() as session:
        numbers = sorted(session.scalars(select(Document.arrival_number).where(Document.direction == "incoming")))
        assert numbers == list(range(1, count + 1)), numbers
        assert session.scalar(select(func.count()).select_from(DocumentFile)) == count
        # One verify_file and one send_statuses job per document.
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 2 * count
        assert audit.verify_chain(session).ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pg", default=None, help="PostgreSQL admin URL: run B on PostgreSQL")
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N of one registration")
    args = parser.parse_args()

    from sqlalchemy import select

    from docsvc.axis import intake
    from docsvc.axis.transport import transport_for
    from docsvc.organisations.models import Organisation
    from inter_axis.parse import read_package
    from tests.support.axis_hub import GOVERNMENT, new_hub

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as directory:
        tmp = Path(directory)
        b_url = None
        if args.pg:
            import sqlalchemy as sa

            name = f"bench_intake_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            admin.dispose()
            b_url = sa.make_url(args.pg).set(database=name).render_as_string(hide_password=False)
        hub = new_hub(tmp / "hub", max_package_bytes=64 * MiB).start()
        database = None
        try:
            a, b = _agencies(tmp / "agencies", hub, b_url)
            _issue_and_send(a, args.batch, tmp)
            with b.sessions() as session:
                org = session.scalar(select(Organisation).where(Organisation.organ_id == GOVERNMENT))
                session.expunge(org)
            transport = transport_for(b.settings, GOVERNMENT)
            refs = transport.list_received(limit=1000)
            assert len(refs) == args.batch, len(refs)
            steps: dict[str, list[float]] = {}
            with contextlib.ExitStack() as stack:
                parsed_all = []
                for n, ref in enumerate(refs):
                    path = tmp / f"{n}.edxml"
                    with path.open("wb") as out:
                        transport.get(ref.message_id, out)
                    spool = tmp / f"spool-{n}"
                    spool.mkdir()
                    parsed_all.append((ref, stack.enter_context(read_package(path, spool_dir=str(spool)))))
                pdf_sizes = [att.path.stat().st_size for _, p in parsed_all for att in p.attachments]
                # Storing: each repeat into a new filesystem store (B's own kind of store) holding none
                # of these objects, its fan-out directories made beforehand as in a store in use.
                ready = None
                for repeat in range(args.repeats):
                    b.__dict__["store"] = _store_in_use(tmp / f"objects-{repeat}")
                    batch = []
                    for ref, parsed in parsed_all:
                        begun = time.process_time()
                        stored = intake._store_attachments(b, parsed)
                        if repeat:
                            steps.setdefault("store attachments (per document)", []).append(
                                time.process_time() - begun)
                        batch.append(intake._Incoming(ref, parsed.document.header, (),
                                                      intake.Verification("valid", "TOTAL-PASSED"), stored))
                    ready = ready or batch
            database = _Database(b, tmp)
            for repeat in range(args.repeats):
                database.restore()
                with b.sessions() as session:  # a pooled connection, as a running poller has one
                    session.execute(select(Organisation.id)).all()
                begun = time.process_time()
                known = intake._known_outcomes(b, org, [r.message_id for r in refs])
                known_cpu = time.process_time() - begun
                begun = time.process_time()
                outcomes = intake._register_all(b, org, ready)
                register_cpu = time.process_time() - begun
                begun = time.process_time()
                intake._mark_acked(b, org, [r.message_id for r in refs])
                acked_cpu = time.process_time() - begun
                assert not known and set(outcomes.values()) == {"registered"}, outcomes
                _check(b, args.batch)
                if repeat:
                    steps.setdefault("register, batch in one transaction (per document)", []).append(
                        register_cpu / args.batch)
                    steps.setdefault("known outcomes query (per batch)", []).append(known_cpu)
                    steps.setdefault("mark acked (per batch)", []).append(acked_cpu)
            rows = [[name, f"{median(values) * 1000:.2f}", f"{min(values) * 1000:.2f}"]
                    for name, values in steps.items()]
            print(f"B on {database.url.get_backend_name()}, batch of {args.batch} one-page documents "
                  f"(PDF median {sorted(pdf_sizes)[len(pdf_sizes) // 2] // 1024} KiB), "
                  f"{args.repeats - 1} repeats after a warm-up")
            print(format_table(["step", "CPU ms (median)", "CPU ms (min)"], rows))
            if args.profile:
                database.restore()
                profiler = cProfile.Profile()
                profiler.enable()
                intake._register_all(b, org, ready)
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
                out.write("\n")
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile)
                print(out.getvalue())
        finally:
            if database is not None:
                database.drop()
            hub.stop()
            if args.pg:
                import sqlalchemy as sa

                admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.dispose()


if __name__ == "__main__":
    main()
