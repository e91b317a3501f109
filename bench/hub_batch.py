"""The axis hub alone: one request per package against batched requests, in one run.

A real ``docsvc axis-hub`` process (SQLite with ``synchronous=FULL``, or PostgreSQL with
``--database postgresql``) on loopback; packages of one-page size (~100 KB, each with its own
DocumentId) built before anything is timed. Rows:

- ``send ×1``: ``HubAxisTransport.send``, one request per package;
- ``send_many ×B``: ``send_many`` with B packages per request (``--batches``, default 25,50);
- ``get ×1``: ``get`` of each package into its own file, one request per package;
- ``get_many ×B``: ``get_many`` of B packages per request into a directory.

Each row is the median of ``--repeats`` runs (the order of the rows rotates from one repeat to
the next, so drift on the shared 2-core machine favours none). ``--threads`` sending (or
fetching) threads share one client in this process, for every row alike. Columns: packages per
second of wall time; the hub process's CPU (user+system, from psutil) per package; this
process's CPU per package (the client side: httpx, reading and hashing).

Rows whose method the transport does not have (an older client) are left out, so the same
command measures a ``before``.

Usage: ``.venv/bin/python bench/hub_batch.py [--packages 200] [--repeats 3] [--batches 25,50]
[--threads 2] [--database sqlite|postgresql] [--profile SECONDS]``.
``--profile`` instead runs sends (``--profile-batch`` packages a request, default 1) for that long
under ``py-spy record --gil`` of the hub
(samples of the thread holding the GIL, i.e. Python CPU; written to
``bench/results/hub-profile-<time>.txt``, raw collapsed stacks)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, format_table, machine, median, write_results  # noqa: E402

ONE_PAGE_ATTACHMENT = 95_000  # base64 characters: the package comes to ~100 KB


class Packages:
    """Fresh one-page packages on disk, each with its own DocumentId (so none is a duplicate)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.serial = 0

    def make(self, count: int) -> list[Path]:
        from tests.support.axis_hub import GOVERNMENT, PROVINCE, document_package

        paths = []
        for _ in range(count):
            self.serial += 1
            paths.append(document_package(self.directory / f"p{self.serial}.edxml", sender=PROVINCE,
                                          recipients=(GOVERNMENT,),
                                          document_id=f"{PROVINCE},2026/03/05,{self.serial}/{os.getpid()}-KH",
                                          attachment_bytes=ONE_PAGE_ATTACHMENT))
        return paths


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class Meter:
    """Wall time, hub CPU and our CPU over a block."""

    def __init__(self, hub_pid: int) -> None:
        self.hub = psutil.Process(hub_pid)

    def __enter__(self) -> Meter:
        self._hub = sum(self.hub.cpu_times()[:2])
        self._own = time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.own_cpu = time.process_time() - self._own
        self.hub_cpu = sum(self.hub.cpu_times()[:2]) - self._hub


def run_send(sender, packages: list[Path], batch: int, threads: int, meter: Meter) -> tuple[Meter, list[str]]:
    from inter_axis.transport import TransportError, new_idempotency_key

    keys = [new_idempotency_key() for _ in packages]
    work = list(zip(packages, keys, strict=True))

    def one(item):
        return [sender.send(item[0], idempotency_key=item[1]).message_id]

    def many(items):
        outcomes = sender.send_many(items)
        bad = [o for o in outcomes if isinstance(o, TransportError)]
        if bad:
            raise bad[0]
        return [o.message_id for o in outcomes]

    with meter, ThreadPoolExecutor(threads) as pool:
        if batch == 1:
            ids = [i for got in pool.map(one, work) for i in got]
        else:
            ids = [i for got in pool.map(many, _chunks(work, batch)) for i in got]
    return meter, ids


def run_get(receiver, ids: list[str], batch: int, threads: int, meter: Meter, out: Path) -> Meter:
    from inter_axis.transport import TransportError

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()

    def one(message_id):
        with open(out / f"{message_id}.edxml", "wb") as fh:
            receiver.get(message_id, fh)

    def many(chunk):
        outcomes = receiver.get_many(chunk, out)
        bad = [o for o in outcomes if isinstance(o, TransportError)]
        if bad:
            raise bad[0]

    with meter, ThreadPoolExecutor(threads) as pool:
        if batch == 1:
            list(pool.map(one, ids))
        else:
            list(pool.map(many, _chunks(ids, batch)))
    return meter


def profile(hub, packages: Packages, seconds: float, threads: int, batch: int) -> None:
    from tests.support.axis_hub import PROVINCE

    sender = hub.client(PROVINCE)
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"hub-profile-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(hub.proc.pid), "-f",
                            "raw", "-r", "250", "--gil", "-o", str(target), "-d", str(int(seconds))],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    time.sleep(0.5)
    sent = 0
    while time.monotonic() < deadline - 0.5:
        run_send(sender, packages.make(50), batch, threads, Meter(hub.proc.pid))
        sent += 50
    spy.wait()
    print(f"{sent} packages sent {batch} a request; collapsed stacks in {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=200, help="packages per row and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", default="25,50", help="packages per send_many/get_many request")
    parser.add_argument("--threads", type=int, default=2, help="client threads, for every row")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--profile", type=float, default=0, help="py-spy the hub for this many seconds instead")
    parser.add_argument("--profile-batch", type=int, default=1, help="packages per send request while profiling")
    args = parser.parse_args()

    from inter_axis.client import HubAxisTransport
    from tests.support.axis_hub import GOVERNMENT, PROVINCE, new_hub, pg_database

    batches = [int(b) for b in args.batches.split(",") if b]
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-hub-batch-") as directory, contextlib.ExitStack() as stack:
        tmp = Path(directory)
        url = stack.enter_context(pg_database()) if args.database == "postgresql" else None
        hub = new_hub(tmp / "hub", database_url=url, max_package_bytes=8 * 1024**2).start()
        stack.callback(hub.stop)
        (tmp / "packages").mkdir()
        packages = Packages(tmp / "packages")
        if args.profile:
            profile(hub, packages, args.profile, args.threads, args.profile_batch)
            return
        sender, receiver = hub.client(PROVINCE), hub.client(GOVERNMENT)
        send_rows = [("send ×1", 1)]
        get_rows = [("get ×1", 1)]
        if hasattr(HubAxisTransport, "send_many"):
            send_rows += [(f"send_many ×{b}", b) for b in batches]
        if hasattr(HubAxisTransport, "get_many"):
            get_rows += [(f"get_many ×{b}", b) for b in batches]
        print(f"package size: {packages.make(1)[0].stat().st_size} bytes; {args.packages} packages per row; "
              f"{args.threads} client thread(s); hub on {args.database}")
        # Warm-up (imports, connections, the agency cache) on both sides, not timed.
        _, warm_ids = run_send(sender, packages.make(20), 1, args.threads, Meter(hub.proc.pid))
        run_get(receiver, warm_ids, 1, args.threads, Meter(hub.proc.pid), tmp / "out")
        receiver.ack_many(warm_ids)

        samples: dict[str, list[tuple[float, float, float]]] = {}
        for repeat in range(args.repeats):
            shift = repeat % len(send_rows)
            sent_ids: list[str] = []
            for label, batch in send_rows[shift:] + send_rows[:shift]:
                meter, ids = run_send(sender, packages.make(args.packages), batch, args.threads, Meter(hub.proc.pid))
                sent_ids = ids
                samples.setdefault(label, []).append((args.packages / meter.wall, meter.hub_cpu / args.packages,
                                                      meter.own_cpu / args.packages))
            shift = repeat % len(get_rows)
            for label, batch in get_rows[shift:] + get_rows[:shift]:
                meter = run_get(receiver, sent_ids, batch, args.threads, Meter(hub.proc.pid), tmp / "out")
                samples.setdefault(label, []).append((len(sent_ids) / meter.wall, meter.hub_cpu / len(sent_ids),
                                                      meter.own_cpu / len(sent_ids)))
            # Empty the inbox (untimed), so every repeat lists and fetches against the same backlog.
            pending = [r.message_id for r in receiver.list_received(1000)]
            while pending:
                receiver.ack_many(pending)
                pending = [r.message_id for r in receiver.list_received(1000)]

        rows = []
        for label, _ in send_rows + get_rows:
            values = samples[label]
            rows.append([label, f"{median([v[0] for v in values]):.0f}", f"{median([v[1] for v in values]) * 1000:.2f}",
                         f"{median([v[2] for v in values]) * 1000:.2f}"])
        print(format_table(["row", "pkg/s", "hub CPU ms/pkg", "client CPU ms/pkg"], rows))
        path = write_results("hub_batch", {"machine": machine(), "args": vars(args), "samples": samples})
        print(f"samples: {path}")


if __name__ == "__main__":
    main()
