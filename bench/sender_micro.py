"""Sender-side CPU per one-page package: ``delivery.attempt`` one by one against ``delivery.attempt_many``
in batches, with a real ``docsvc axis-hub`` process answering (its CPU is not counted: only this
process's ``time.process_time``).

Setup as in ``bench/axis.py`` (two agencies on SQLite, a hub on loopback, one-page documents each
carrying its own sealed PDF, their exchanges queued), none of it timed. Each run delivers ``--count``
fresh exchanges with one method; the methods rotate each repeat and the figures are medians over
``--repeats``. Also timed alone: build + sign + SHA-256 of one package in memory and through temporary
files on disk (``--no-steps`` skips it).

Usage: ``.venv/bin/python bench/sender_micro.py [--count 100] [--repeats 3]
[--methods attempt,many25,many50] [--fresh-pdfs]``. Without ``--fresh-pdfs`` one PDF is sealed and every
document gets a copy of it with a random trailer comment (distinct bytes, so the content-addressed store
and the hub see distinct packages), which keeps the untimed setup short."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._axis_setup import agencies as _agencies  # noqa: E402
from bench._axis_setup import sealed_pdf as _sealed_pdf  # noqa: E402
from bench._common import format_table, machine, median  # noqa: E402

MiB = 1024 * 1024


def _issued_documents(rt, count: int, start: int, work: Path, template: bytes | None) -> list[int]:
    """``count`` issued documents of A addressed to B, each with its exchange queued (not timed).
    Each carries its own PDF: freshly sealed, or ``template`` with a random trailer comment."""
    from datetime import date

    from sqlalchemy import select

    from docsvc.axis import service as axis_service
    from docsvc.documents.models import Document, DocumentFile
    from docsvc.organisations.models import Organisation
    from docsvc.principal import SERVICE_ACTOR
    from tests.support.axis_hub import GOVERNMENT

    stored = {}
    for number in range(start, start + count):
        if template is None:
            pdf = _sealed_pdf(rt, work, number)
            data = pdf.read_bytes()
            pdf.unlink()
        else:
            data = template + f"%bench {number} {os.urandom(8).hex()}\n".encode()
        stored[number] = rt.store.put(iter([data]), content_type="application/pdf")
    ids = []
    with rt.sessions() as session:
        org = session.scalar(select(Organisation))
        for number in range(start, start + count):
            obj = stored[number]
            doc = Document(organisation_id=org.id, direction="outgoing", doc_type="ke_hoach", status="issued",
                           year=2026, number=number, symbol="KH-STTTT", issuer=org.organ_id,
                           issued_date=date(2026, 3, 5), subject=f"Kế hoạch số {number}",
                           recipients=[f"{GOVERNMENT} - Văn phòng Chính phủ"])
            session.add(doc)
            session.flush()
            session.add(DocumentFile(document_id=doc.id, kind="version", seq=1, filename="ke-hoach.pdf",
                                     content_type="application/pdf", size=obj.size, sha256=obj.sha256,
                                     object_key=obj.key))
            ids += [e.id for e in axis_service.queue_outgoing(session, rt.settings, SERVICE_ACTOR, doc)]
        session.commit()
    return ids


def _deliver(a, ids: list[int], method: str) -> tuple[float, float]:
    """Deliver ``ids`` with ``method``; (CPU seconds, wall seconds) of this process."""
    from docsvc.axis import delivery
    from docsvc.axis.models import AxisExchange

    cpu, wall = time.process_time(), time.perf_counter()
    if method == "attempt":
        states = [delivery.attempt(a.sessions, a.settings, a.store, AxisExchange, i) for i in ids]
    else:
        size = int(method.removeprefix("many"))
        states = []
        for start in range(0, len(ids), size):
            chunk = ids[start:start + size]
            outcome = delivery.attempt_many(a.sessions, a.settings, a.store, AxisExchange, chunk)
            states += [outcome[i] for i in chunk]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert states == ["sent"] * len(ids), states
    return cpu, wall


def _steps(a, ids: list[int]) -> list[list[str]]:
    """Build + sign + SHA-256 of one package, CPU ms, in memory and on disk (same bytes)."""
    import hashlib

    from sqlalchemy import select

    from docsvc.axis import packages
    from docsvc.axis.models import AxisExchange
    from docsvc.axis.transport import seal_key
    from docsvc.documents.models import Document
    from docsvc.organisations.models import Organisation
    from tests.support.axis_hub import GOVERNMENT

    with a.sessions() as session:
        org = session.scalar(select(Organisation))
        seal = seal_key(session, a.settings, org)
        docs = [session.get(Document, session.get(AxisExchange, i).document_id) for i in ids]
        files = [packages.sendable_files(session, doc) for doc in docs]
        session.commit()
        session.expunge_all()
    max_bytes = a.settings.axis.max_package_bytes
    steps: dict[str, list[float]] = {}
    for doc, rows in zip(docs, files, strict=True):
        args = (doc, org, (GOVERNMENT, ""), doc.created_at)
        begun = time.process_time()
        with packages.built_document(a.store, args, rows, seal, max_bytes, in_memory_max=0) as on_disk:
            disk = on_disk.sha256
        steps.setdefault("build+sign+sha256 via temporary files", []).append(time.process_time() - begun)
        begun = time.process_time()
        with packages.built_document(a.store, args, rows, seal, max_bytes) as in_memory:
            pass
        steps.setdefault("build+sign+sha256 in memory", []).append(time.process_time() - begun)
        assert in_memory.data is not None and in_memory.sha256 == disk == hashlib.sha256(in_memory.data).hexdigest()
    return [[name, f"{median(values) * 1000:.2f}"] for name, values in steps.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100, help="one-page packages per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default="attempt,many25,many50")
    parser.add_argument("--fresh-pdfs", action="store_true", help="seal every PDF (slow setup)")
    parser.add_argument("--no-steps", action="store_true", help="skip the build+sign step timings")
    args = parser.parse_args()
    from docsvc.axis import delivery
    from tests.support.axis_hub import new_hub

    methods = [m for m in args.methods.split(",") if m]
    if not hasattr(delivery, "attempt_many"):
        methods = [m for m in methods if not m.startswith("many")]
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-sender-") as directory:
        tmp = Path(directory)
        hub = new_hub(tmp / "hub", max_package_bytes=64 * MiB).start()
        try:
            a, _b = _agencies(tmp / "agencies", hub)
            template = None if args.fresh_pdfs else _sealed_pdf(a, tmp, 0).read_bytes()
            number = 1
            _deliver(a, _issued_documents(a, 5, number, tmp, template), "attempt")  # warm-up: imports, seal
            number += 5
            results: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
            for repeat in range(args.repeats):
                for method in methods[repeat % len(methods):] + methods[:repeat % len(methods)]:
                    ids = _issued_documents(a, args.count, number, tmp, template)
                    number += args.count
                    results[method].append(_deliver(a, ids, method))
            rows = []
            for method, runs in results.items():
                cpu = median([c for c, _ in runs]) / args.count * 1000
                wall = median([w for _, w in runs])
                rows.append([method, str(args.count), f"{cpu:.2f}", f"{args.count / wall:.0f}",
                             " ".join(f"{c / args.count * 1000:.2f}" for c, _ in runs)])
            print(format_table(["method", "n/run", "CPU ms/pkg (median)", "pkg/s wall", "CPU ms/pkg per run"], rows))
            print(f"medians of {args.repeats} repeats; sender process CPU only (the hub runs in its own process)")
            if not args.no_steps:
                ids = _issued_documents(a, 30, number, tmp, template)
                print(format_table(["step (one package, alone)", "CPU ms (median of 30)"], _steps(a, ids)))
        finally:
            hub.stop()


if __name__ == "__main__":
    main()
