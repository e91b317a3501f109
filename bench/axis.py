"""Interlink-axis throughput, end to end: packages/s from an issued document in agency A to a
registered incoming document in agency B (build the edXML, sign it with A's seal, send it to a real
``docsvc axis-hub`` process, list and get it as B, parse it, verify the XML signature and the PAdES
seal of the PDF, store the attachments, register with an arrival number, queue 01/03, ack), for
one-page documents and for documents carrying a 5 MB attachment.

Side by side, in one run (medians of ``--repeats``, methods rotated each repeat):

- ours: A delivers with ``--senders`` threads in one process, ``--send-batch`` exchanges per
  ``delivery.attempt_many`` (one read, one ``send_many`` request, one recording transaction: what
  the outbox jobs and the sweep do), while ``--receivers`` processes of B list in batches, fetch a
  batch with one ``get_many``, parse/verify/store two packages at a time and register the batch in
  one transaction, then ack;
- naive: the sequential path as it was: one package at a time, send then take it alone (its own
  transactions and ack), the seal's RSA key parsed from PEM for every signature;
- raw: the same hub's send + list + get + ack of pre-built packages of the same size, nothing else,
  one at a time, and (raw_batched) ``--send-batch`` packages per send_many / get_many / ack_many;
  and the bare crypto per package (RSA-2048 sign + verify, SHA-256 of the bytes).

Latency is per package, from the start of its delivery attempt to the commit that registered it.

Usage: ``.venv/bin/python bench/axis.py [--small 100] [--large 5] [--repeats 3] [--senders 3]
[--send-batch 25] [--receivers 2] [--batch 50] [--methods ours,naive,raw,raw_batched]
[--breakdown]``; ``--breakdown`` also times each step alone (CPU ms per package). Both agencies run
on SQLite (one database each) on loopback; the hub runs on SQLite too (``synchronous=FULL``: it
fsyncs before it answers). Every package carries its own sealed PDF (one-page documents that differ
in their number and text, each sealed at B-T in the untimed setup), so the content-addressed object
store cannot skip storing one, and no check could be answered from an earlier package's result."""

from __future__ import annotations

import argparse
import hashlib
import io
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._axis_setup import agencies as _agencies  # noqa: E402
from bench._axis_setup import sealed_pdf as _sealed_pdf  # noqa: E402
from bench._common import format_table, machine, median, percentile  # noqa: E402

MiB = 1024 * 1024
#: Seconds a receiver waits after an empty listing: first, and at most (doubling in between).
IDLE_POLL = (0.005, 0.040)
#: What one run compares: ours, the naive sequential path, the hub alone one package per request,
#: and the hub alone in batches of ``--send-batch`` (send_many / get_many / ack_many).
METHODS = ("ours", "naive", "raw", "raw_batched")
#: CPU seconds spent by each process of the "ours" runs (and how many packages they moved).
CPU: dict[str, float] = {}


def _issued_documents(rt, count: int, start: int, work: Path, extra_bytes: int) -> list[int]:
    """``count`` issued documents of A addressed to B, each with its exchange queued (not timed). Each
    carries its own freshly sealed PDF (and its own random attachment), so no two packages share a
    byte of content the store or a cache could recognise."""
    from sqlalchemy import select

    from docsvc.axis import service as axis_service
    from docsvc.documents.models import Document, DocumentFile
    from docsvc.organisations.models import Organisation
    from docsvc.principal import SERVICE_ACTOR
    from tests.support.axis_hub import GOVERNMENT

    stored = {}
    for number in range(start, start + count):
        pdf = _sealed_pdf(rt, work, number)
        with pdf.open("rb") as handle:
            stored_pdf = rt.store.put(iter(lambda h=handle: h.read(MiB), b""), content_type="application/pdf")
        pdf.unlink()
        stored_extra = None
        if extra_bytes:
            stored_extra = rt.store.put(iter([os.urandom(extra_bytes)]), content_type="application/zip")
        stored[number] = (stored_pdf, stored_extra)
    ids = []
    with rt.sessions() as session:
        org = session.scalar(select(Organisation))
        for number in range(start, start + count):
            stored_pdf, stored_extra = stored[number]
            doc = Document(organisation_id=org.id, direction="outgoing", doc_type="ke_hoach", status="issued",
                           year=2026, number=number, symbol="KH-STTTT", issuer=org.organ_id,
                           issued_date=date(2026, 3, 5), subject=f"Kế hoạch số {number}",
                           recipients=[f"{GOVERNMENT} - Văn phòng Chính phủ"])
            session.add(doc)
            session.flush()
            files = [("version", 1, "ke-hoach.pdf", "application/pdf", stored_pdf)]
            if stored_extra:
                files.append(("attachment", 1, "phu-luc.zip", "application/zip", stored_extra))
            for kind, seq, name, ctype, obj in files:
                session.add(DocumentFile(document_id=doc.id, kind=kind, seq=seq, filename=name, content_type=ctype,
                                         size=obj.size, sha256=obj.sha256, object_key=obj.key))
            ids += [e.id for e in axis_service.queue_outgoing(session, rt.settings, SERVICE_ACTOR, doc)]
        session.commit()
    return ids



def _forget_connections(*runtimes) -> None:
    """Before forking: no pooled database or HTTP connection may be shared with a child."""
    from docsvc.axis import transport

    for rt in runtimes:
        rt.engine.dispose()
    with transport._lock:
        for client in transport._transports.values():
            client.close()
        transport._transports.clear()


def _send_all(a, exchange_ids: list[int], senders: int, send_batch: int = 1) -> dict[int, float]:
    """Deliver every exchange with ``senders`` threads, ``send_batch`` exchanges per attempt (one
    ``attempt_many``: one read, one hub request, one commit for the batch; 1 = ``attempt`` each, the
    per-exchange outbox job); returns exchange id → start of its attempt."""
    from docsvc.axis import delivery
    from docsvc.axis.models import AxisExchange

    started: dict[int, float] = {}
    chunks = [exchange_ids[i:i + send_batch] for i in range(0, len(exchange_ids), send_batch)]
    queue = list(reversed(chunks))
    lock = threading.Lock()
    failures: list[str] = []

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                chunk = queue.pop()
            begun = time.perf_counter()
            started.update((i, begun) for i in chunk)
            if len(chunk) == 1:
                states = {chunk[0]: delivery.attempt(a.sessions, a.settings, a.store, AxisExchange, chunk[0])}
            else:
                states = delivery.attempt_many(a.sessions, a.settings, a.store, AxisExchange, chunk)
            failures.extend(f"{i}: {state}" for i, state in states.items() if state != "sent")

    threads = [threading.Thread(target=work) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    return started


def _receive_all(b, count: int, batch: int, shard: int = 0, shards: int = 1, total=None) -> dict[str, float]:
    """Take packages in batches until ``count`` are registered (by all receivers, ``total`` counts);
    with ``shards`` receivers each takes the message ids whose value modulo ``shards`` is ``shard``.
    Returns message id → registration time."""
    from sqlalchemy import select

    from docsvc.axis import intake
    from docsvc.axis.transport import transport_for
    from docsvc.organisations.models import Organisation
    from tests.support.axis_hub import GOVERNMENT

    with b.sessions() as session:
        org = session.scalar(select(Organisation).where(Organisation.organ_id == GOVERNMENT))
        session.expunge(org)
    transport = transport_for(b.settings, GOVERNMENT)
    done: dict[str, float] = {}
    idle = IDLE_POLL[0]
    while (total.value if total is not None else len(done)) < count:
        refs = [r for r in transport.list_received(limit=1000) if int(r.message_id, 16) % shards == shard][:batch]
        if not refs:
            # An empty inbox is polled again after 5 ms, then less and less often (up to 40 ms): a
            # receiver with nothing to do must not take the cores from the one still working.
            time.sleep(idle)
            idle = min(idle * 2, IDLE_POLL[1])
            continue
        idle = IDLE_POLL[0]
        outcomes = intake.take_batch(b, org, transport, refs)
        if set(outcomes) != {"registered"}:
            raise AssertionError(f"not registered: {_rejections(b, refs, outcomes)}")
        now = time.perf_counter()
        done.update((ref.message_id, now) for ref in refs)
        if total is not None:
            with total.get_lock():
                total.value += len(refs)
    return done


def _rejections(b, refs, outcomes: list[str]) -> list[tuple[str, str | None, str | None]]:
    """(outcome, error code, message) of the packages of a batch that were not registered."""
    from sqlalchemy import select

    from docsvc.axis.models import AxisInboxEntry

    ids = [ref.message_id for ref, outcome in zip(refs, outcomes, strict=True) if outcome != "registered"]
    with b.sessions() as session:
        return [tuple(row) for row in session.execute(select(
            AxisInboxEntry.outcome, AxisInboxEntry.error_code, AxisInboxEntry.error_message)
            .where(AxisInboxEntry.message_id.in_(ids)))]


def _child(target, args, pipe) -> None:
    try:
        cpu = time.process_time()
        value = target(*args)
        pipe.send(("ok", (value, time.process_time() - cpu)))
    except BaseException as exc:  # report, do not hang the parent
        pipe.send(("error", repr(exc)))
        raise


def _latencies(a, started: dict[int, float], registered: dict[str, float]) -> list[float]:
    from sqlalchemy import select

    from docsvc.axis.models import AxisExchange

    with a.sessions() as session:
        message_of = dict(session.execute(select(AxisExchange.id, AxisExchange.message_id)
                                          .where(AxisExchange.id.in_(list(started)))).all())
    return [registered[message_of[i]] - started[i] for i in started]


def _ours(a, b, hub, exchange_ids: list[int], senders: int, receivers: int,
          batch: int, send_batch: int) -> tuple[float, list[float]]:
    """Sender process (``senders`` threads) and ``receivers`` processes at once; (seconds, latencies).
    Adds the CPU seconds of each process to ``CPU``."""
    import psutil

    _forget_connections(a, b)
    hub_cpu = sum(psutil.Process(hub.proc.pid).cpu_times()[:2])
    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    started_at = time.perf_counter()
    total = ctx.Value("i", 0)
    work = [(_send_all, (a, exchange_ids, senders, send_batch))]
    work += [(_receive_all, (b, len(exchange_ids), batch, k, receivers, total)) for k in range(receivers)]
    for target, args in work:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(target, args, child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    results = []
    for pipe, proc, role in zip(pipes, procs, ["sender"] + ["receivers"] * receivers, strict=True):
        status, value = pipe.recv()
        proc.join()
        assert status == "ok", value
        results.append(value[0])
        CPU[role] = CPU.get(role, 0.0) + value[1]
    elapsed = time.perf_counter() - started_at
    CPU["hub"] = CPU.get("hub", 0.0) + sum(psutil.Process(hub.proc.pid).cpu_times()[:2]) - hub_cpu
    CPU["packages"] = CPU.get("packages", 0) + len(exchange_ids)
    registered = {m: t for shard in results[1:] for m, t in shard.items()}
    return elapsed, _latencies(a, results[0], registered)


class _PemEveryTime:
    """The naive signer: the seal's key goes through PEM and is parsed again for every package, as
    ``sign_package(key_pem, cert_pem)`` did before keys were loaded once."""

    @staticmethod
    def pems(key) -> tuple[bytes, bytes]:
        from cryptography.hazmat.primitives import serialization

        pem = serialization.Encoding.PEM
        key_pem = key.key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return key_pem, b"".join(c.public_bytes(pem) for c in key.certs)

    def __enter__(self):
        from docsvc.axis import packages
        from inter_axis.xmldsig import sign_package

        self._module, self._saved = packages, packages.sign_package_with

        def sign_from_pem(source, out, key, **kwargs):
            return sign_package(source, out, *self.pems(key), **kwargs)

        packages.sign_package_with = sign_from_pem
        return self

    def __exit__(self, *exc) -> None:
        self._module.sign_package_with = self._saved


def _naive(a, b, exchange_ids: list[int]) -> tuple[float, list[float]]:
    """One package at a time: send it, then take it alone (own transactions, own ack)."""
    from sqlalchemy import select

    from docsvc.axis import delivery, intake
    from docsvc.axis.models import AxisExchange
    from docsvc.axis.transport import transport_for
    from docsvc.organisations.models import Organisation
    from tests.support.axis_hub import GOVERNMENT

    with b.sessions() as session:
        org = session.scalar(select(Organisation).where(Organisation.organ_id == GOVERNMENT))
        session.expunge(org)
    transport = transport_for(b.settings, GOVERNMENT)
    latencies = []
    with _PemEveryTime():
        started_at = time.perf_counter()
        for exchange_id in exchange_ids:
            begun = time.perf_counter()
            assert delivery.attempt(a.sessions, a.settings, a.store, AxisExchange, exchange_id) == "sent"
            taken = 0
            while not taken:
                for ref in transport.list_received(limit=100):
                    assert intake.take(b, org, transport, ref) == "registered"
                    taken += 1
            latencies.append(time.perf_counter() - begun)
    return time.perf_counter() - started_at, latencies


def _raw(hub, count: int, tag: str, size: int, work: Path, batch: int = 1) -> tuple[float, list[float]]:
    """Hub send + list + get + ack of pre-built packages of about ``size`` bytes (the transport limit):
    one package per request (``batch`` 1), or ``batch`` packages per ``send_many`` / ``get_many`` /
    ``ack_many`` request."""
    from inter_axis.transport import new_idempotency_key
    from tests.support.axis_hub import DEPARTMENT, GOVERNMENT, document_package

    packages = [document_package(work / f"raw-{tag}-{batch}-{i}.edxml", sender=DEPARTMENT, recipients=(GOVERNMENT,),
                                 document_id=f"{DEPARTMENT},2026/03/05,{i}/RAW-{tag}-{batch}", attachment_bytes=size)
                for i in range(count)]
    sender, receiver = hub.client(DEPARTMENT), hub.client(GOVERNMENT)
    latencies = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=work) as fetched:
        for start in range(0, count, batch):
            chunk = packages[start:start + batch]
            begun = time.perf_counter()
            if batch == 1:
                sender.send(chunk[0], idempotency_key=new_idempotency_key())
                (ref,) = receiver.list_received(limit=1000)
                receiver.get(ref.message_id, io.BytesIO())
                receiver.ack(ref.message_id)
            else:
                receipts = sender.send_many([(path, new_idempotency_key()) for path in chunk])
                assert all(not isinstance(r, Exception) for r in receipts), receipts
                ids = [ref.message_id for ref in receiver.list_received(limit=1000)]
                assert len(ids) == len(chunk), ids
                for path in receiver.get_many(ids, Path(fetched)):
                    assert isinstance(path, Path), path
                    path.unlink()
                receiver.ack_many(ids)
            latencies += [time.perf_counter() - begun] * len(chunk)
    elapsed = time.perf_counter() - started
    sender.close()
    receiver.close()
    for path in packages:
        path.unlink()
    return elapsed, latencies


def _crypto_seconds(size: int, rounds: int = 50) -> float:
    """Per package: one RSA-2048 PKCS#1 v1.5 sign + two verifies (XML-DSig, PAdES) and SHA-256 of the
    package bytes three times (sender digest, hub, receiver) — the floor no software removes."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = os.urandom(size)
    started = time.perf_counter()
    for _ in range(rounds):
        signature = key.sign(b"signed info", padding.PKCS1v15(), hashes.SHA256())
        for _ in range(2):
            key.public_key().verify(signature, b"signed info", padding.PKCS1v15(), hashes.SHA256())
        for _ in range(3):
            hashlib.sha256(data).digest()
    return (time.perf_counter() - started) / rounds


def _breakdown(a, b, work_dir: Path, number: int, count: int = 30) -> list[list[str]]:
    """CPU ms per package of each step, measured one step at a time over ``count`` one-page packages
    (wall ms where the step waits on the hub): where the end-to-end time goes."""
    from sqlalchemy import select

    from docsvc.axis import delivery, intake, packages
    from docsvc.axis.models import AxisExchange
    from docsvc.axis.transport import seal_key, transport_for
    from docsvc.documents.models import Document
    from docsvc.organisations.models import Organisation
    from inter_axis.build import write_package
    from inter_axis.parse import read_package
    from inter_axis.xmldsig import load_signing_key, sign_package_with, verify_package
    from signing.validation import validate_pdf
    from tests.support.axis_hub import GOVERNMENT

    steps: dict[str, list[float]] = {}

    def timed(name: str, call, wall: bool = False):
        clock = time.perf_counter if wall else time.process_time
        begun = clock()
        result = call()
        steps.setdefault(name, []).append(clock() - begun)
        return result

    ids = _issued_documents(a, count, number, work_dir, 0)
    with a.sessions() as session:
        org_a = session.scalar(select(Organisation))
        key = seal_key(session, a.settings, org_a)
        docs = [session.get(Document, session.get(AxisExchange, i).document_id) for i in ids]
        files = packages.sendable_files(session, docs[0])
        session.expunge_all()
    pem = _PemEveryTime.pems(key)
    with packages.materialised(a.store, files) as local, tempfile.TemporaryDirectory() as work:
        for doc in docs:
            package = packages.document_package(doc, org_a, (GOVERNMENT, ""), doc.created_at, local)
            raw = io.BytesIO()
            timed("A: build edXML", lambda p=package, r=raw: write_package(p, r))
            timed("A: sign, key loaded once", lambda r=raw: sign_package_with(r.getvalue(), io.BytesIO(), key,
                                                                              spool_dir=work))
            timed("(naive: sign, key parsed from PEM)",
                  lambda r=raw: sign_package_with(r.getvalue(), io.BytesIO(), load_signing_key(*pem), spool_dir=work))
    for exchange_id in ids:
        timed("A: whole attempt (DB, build, sign, send), wall",
              lambda i=exchange_id: delivery.attempt(a.sessions, a.settings, a.store, AxisExchange, i), wall=True)
    with b.sessions() as session:
        org = session.scalar(select(Organisation).where(Organisation.organ_id == GOVERNMENT))
        session.expunge(org)
    transport, trust = transport_for(b.settings, GOVERNMENT), intake._trust(b.settings)
    refs = transport.list_received(limit=1000)
    ready = []
    with tempfile.TemporaryDirectory() as work:
        for n, ref in enumerate(refs):
            path = Path(work) / f"{n}.edxml"
            with path.open("wb") as out:
                timed("B: hub get, wall", lambda r=ref, o=out: transport.get(r.message_id, o), wall=True)
            parsed = timed("B: parse", lambda p=path: read_package(p, spool_dir=work))
            with parsed:
                timed("B: XML-DSig verify", lambda p=path: verify_package(p, trust.pem_roots, spool_dir=work))
                pdf_path = parsed.attachments[0].path
                timed("B: PAdES validate",
                      lambda p=pdf_path: validate_pdf(p, trust.roots, other_certs=trust.other_certs))
                stored = timed("B: store attachments", lambda p=parsed: intake._store_attachments(b, p))
                ready.append(intake._Incoming(ref, parsed.document.header, (), intake.Verification("valid",
                                              "TOTAL-PASSED"), stored))
    begun = time.process_time()
    intake._register_all(b, org, ready)
    steps["B: register (one transaction for all)"] = [(time.process_time() - begun) / len(ready)] * len(ready)
    timed("B: ack (one request for all)", lambda: transport.ack_many([r.message_id for r in refs]), wall=True)
    steps["B: ack (one request for all)"] = [steps["B: ack (one request for all)"][0] / len(refs)]
    return [[name, f"{median(values) * 1000:.1f}"] for name, values in steps.items()]


def _fmt_latency(values: list[float]) -> str:
    return f"{percentile(values, 50) * 1000:.0f} / {percentile(values, 95) * 1000:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=100, help="one-page packages per run")
    parser.add_argument("--large", type=int, default=5, help="packages with a 5 MB attachment per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--senders", type=int, default=3, help="sending threads in A's process (ours)")
    parser.add_argument("--breakdown", action="store_true", help="also time each step alone (CPU ms/package)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"which of {','.join(METHODS)} to run")
    parser.add_argument("--receivers", type=int, default=2, help="receiving processes of B (ours)")
    parser.add_argument("--batch", type=int, default=50, help="packages B lists and registers per transaction")
    parser.add_argument("--send-batch", type=int, default=25,
                        help="exchanges A delivers per attempt (one hub request); 1 = one attempt each")
    args = parser.parse_args()
    from tests.support.axis_hub import new_hub

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-axis-") as directory:
        tmp = Path(directory)
        hub = new_hub(tmp / "hub", max_package_bytes=64 * MiB).start()
        try:
            a, b = _agencies(tmp / "agencies", hub)
            pdf = _sealed_pdf(a, tmp, 0)  # the size of a one-page package, for the raw rows
            _naive(a, b, _issued_documents(a, 3, 1, tmp, 0))  # warm-up: imports, seal, trust
            rows, number, cpu_notes = [], 10, []
            for label, count, extra in (("1-page", args.small, 0), ("5 MB attachment", args.large, 5 * MiB)):
                if not count:
                    continue
                size = max(extra, pdf.stat().st_size)
                runs: dict[str, list[tuple[float, list[float]]]] = {m: [] for m in METHODS}
                CPU.clear()
                methods = [m for m in METHODS if m in args.methods.split(",")]
                for repeat in range(args.repeats):
                    for method in methods[repeat % len(methods):] + methods[:repeat % len(methods)]:
                        if method in ("raw", "raw_batched"):
                            elapsed, lat = _raw(hub, count, f"{label[:1]}{repeat}", size, tmp,
                                                batch=1 if method == "raw" else args.send_batch)
                        else:
                            ids = _issued_documents(a, count, number, tmp, extra)
                            number += count
                            if method == "ours":
                                elapsed, lat = _ours(a, b, hub, ids, args.senders, args.receivers, args.batch,
                                                     args.send_batch)
                            else:
                                elapsed, lat = _naive(a, b, ids)
                        runs[method].append((count / elapsed, lat))
                rate = {m: median([r for r, _ in runs[m]]) for m in runs}  # nan for a method not run
                lat = {m: [x for _, ls in runs[m] for x in ls] for m in runs}
                crypto = 1 / _crypto_seconds(size)
                cpu_ms = {k: v / CPU["packages"] * 1000 for k, v in CPU.items() if k != "packages"}
                if cpu_ms:  # only 'ours' runs count their processes' CPU
                    cpu_notes.append(f"{label}: CPU ms per package in 'ours': " + ", ".join(
                        f"{k} {v:.1f}" for k, v in cpu_ms.items()) + f", total {sum(cpu_ms.values()):.1f} "
                        f"(2 cores: at most {2000 / sum(cpu_ms.values()):.0f} pkg/s)")
                rows.append([label, str(count), f"{rate['ours']:.1f}", _fmt_latency(lat["ours"]),
                             f"{rate['naive']:.1f}", _fmt_latency(lat["naive"]), f"{rate['raw']:.1f}",
                             _fmt_latency(lat["raw"]), f"{rate['raw_batched']:.1f}", f"{crypto:.0f}",
                             f"{rate['ours'] / rate['naive']:.1f}x", f"{rate['ours'] / rate['raw_batched']:.2f}"])
            print(format_table(["package", "n/run", "ours pkg/s", "ours p50/p95 ms", "naive pkg/s",
                                "naive p50/p95 ms", "hub send+get pkg/s", "hub p50/p95 ms", "hub batched pkg/s",
                                "crypto pkg/s", "ours/naive", "ours/hub batched"], rows))
            print(f"ours = {args.senders} sending threads ({args.send_batch} exchanges per attempt) + "
                  f"{args.receivers} receiver processes sharing B's inbox by message id "
                  f"(batches of up to {args.batch}); "
                  "naive = one package at a time; hub = send+list+get+ack alone, one at a time, "
                  "and batched (send_many/get_many/ack_many); "
                  "crypto = RSA sign + 2 verifies + 3x SHA-256 only. Medians of "
                  f"{args.repeats} repeats; latency over all repeats.")
            print("\n".join(cpu_notes))
            if args.breakdown:
                print(format_table(["step (1-page, one at a time)", "ms/package (median)"],
                                   _breakdown(a, b, tmp, number)))
            print("target: >= 100 one-page packages/s end to end")
        finally:
            hub.stop()


if __name__ == "__main__":
    main()
