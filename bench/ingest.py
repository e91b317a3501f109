"""Ingest throughput: PDFs uploaded through the HTTP API, beside the naive way and the disk.

Starts a real ``docsvc serve`` on a fresh data dir, then for two workloads (one-page PDFs of a
few KB, and 10 MiB PDFs) measures in the same run, each ``--repeat`` times, interleaved:

* ours     - ``POST /documents`` then ``POST /documents/{id}/versions`` with a raw
             ``application/pdf`` body, streamed to the object store;
* naive    - the same files as ``multipart/form-data`` (Starlette spools the part to a temp
             file, then it is copied into the store);
* disk     - the same bytes written with ``open``/``write``/``fsync`` per file into the data
             dir's filesystem, 1 thread and C threads: what the hardware allows;
* sha-256  - ``hashlib`` over the same bytes: the one computation every upload must do.

Prints medians and ratios, writes every sample to ``bench/results/ingest-<timestamp>.json``.

    .venv/bin/python bench/ingest.py            # defaults: 200 small (C=8), 20 large (C=4), 3 repeats
    .venv/bin/python bench/ingest.py --quick    # a smoke run of a few seconds
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402  (bench/ is a folder of scripts, not a package)
    MiB,
    RssSampler,
    Server,
    clear_docsvc_environment,
    exit_on_sigterm,
    format_table,
    login,
    machine,
    median,
    percentile,
    running_server,
    seed_clerk,
    temp_data_dir,
    write_results,
)

OURS, NAIVE = "ours: raw body", "naive: multipart"
DISK_1, DISK_C, SHA = "disk write+fsync, 1 thr", "disk write+fsync, C thr", "sha-256, 1 thr"
HTTP_METHODS = (OURS, NAIVE)
METHODS = (OURS, NAIVE, DISK_1, DISK_C, SHA)
CHUNK = MiB


# --- the files --------------------------------------------------------------------------------

@dataclass(frozen=True)
class PdfBody:
    """One PDF to upload, never held whole in memory when large: ``head`` + ``payload_size``
    bytes of a shared random block + ``tail``. The head carries a unique text, so every file
    has its own SHA-256 and content addressing cannot deduplicate the work away."""

    name: str
    head: bytes
    payload_size: int
    tail: bytes
    block: bytes = field(repr=False, default=b"")

    @property
    def size(self) -> int:
        return len(self.head) + self.payload_size + len(self.tail)

    def chunks(self) -> Iterator[bytes]:
        yield self.head
        remaining = self.payload_size
        while remaining:
            chunk = self.block if remaining >= len(self.block) else self.block[:remaining]
            remaining -= len(chunk)
            yield chunk
        if self.tail:
            yield self.tail

    def content(self) -> bytes | Iterator[bytes]:
        """What to hand httpx: small files whole, large ones as a stream."""
        return self.head + self.tail if not self.payload_size else self.chunks()


def _pdf(objects: Sequence[bytes], stream_length: int | None = None) -> tuple[bytes, bytes]:
    """Serialise ``objects``; when ``stream_length`` is given, the last object is a stream of
    that many bytes the caller supplies between the returned head and tail."""
    out, offsets = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body
        if stream_length is None or number < len(objects):
            out += b"\nendobj\n"
    head = bytes(out)
    tail = bytearray(b"\nendstream\nendobj\n" if stream_length is not None else b"")
    xref = len(head) + (stream_length or 0) + len(tail)
    tail += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    tail += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    tail += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return head, bytes(tail)


def _page_objects(label: str, lines: int) -> list[bytes]:
    text = "".join(f"({label} line {k}: the quick brown fox jumps over the lazy dog) Tj T* "
                   for k in range(lines))
    content = f"BT /F1 11 Tf 14 TL 56 780 Td {text}ET".encode()
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


class Files:
    """Makes unique PDFs: a run-wide nonce plus a counter goes into every page's text."""

    def __init__(self, large_bytes: int) -> None:
        self._nonce = os.urandom(6).hex()
        self._count = 0
        self._lock = threading.Lock()
        self._large_bytes = large_bytes
        self._block = os.urandom(CHUNK)

    def _label(self) -> str:
        with self._lock:
            self._count += 1
            return f"docsvc bench {self._nonce} #{self._count}"

    def small(self) -> PdfBody:
        label = self._label()
        head, tail = _pdf(_page_objects(label, lines=40))
        return PdfBody(f"{label.rsplit('#', 1)[1]}.pdf", head + tail, 0, b"")

    def large(self) -> PdfBody:
        label = self._label()
        objects = _page_objects(label, lines=1)
        # The bulk is an unreferenced binary stream: a valid object readers skip over.
        length, excess = self._large_bytes, None
        while excess != 0:  # the overhead grows with the digits of /Length; two rounds settle it
            head, tail = _pdf([*objects, b"<< /Length %d >>\nstream\n" % length], stream_length=length)
            excess = len(head) + length + len(tail) - self._large_bytes
            length -= excess
        return PdfBody(f"{label.rsplit('#', 1)[1]}.pdf", head, length, tail, self._block)


# --- one measured run -------------------------------------------------------------------------

@dataclass
class Run:
    """One pass of one method over one batch of files."""

    workload: str
    method: str
    rep: int
    files: int
    bytes: int
    concurrency: int
    wall_s: float
    create_s: list[float]
    """Per file: ``POST /documents`` (HTTP methods only)."""
    item_s: list[float]
    """Per file: the upload request, the write+fsync, or the hash."""
    server_peak_rss: int | None


Uploader = Callable[[httpx.Client, int, PdfBody], httpx.Response]


def upload_raw(client: httpx.Client, doc_id: int, body: PdfBody) -> httpx.Response:
    return client.post(f"/documents/{doc_id}/versions", params={"filename": body.name}, content=body.content(),
                       headers={"Content-Type": "application/pdf", "Content-Length": str(body.size)})


def upload_multipart(client: httpx.Client, doc_id: int, body: PdfBody) -> httpx.Response:
    # Built by hand so that a 10 MiB part streams from the generator like the raw upload does.
    boundary = os.urandom(16).hex()
    opening = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{body.name}\"\r\n"
               f"Content-Type: application/pdf\r\n\r\n").encode()
    closing = f"\r\n--{boundary}--\r\n".encode()

    def parts() -> Iterator[bytes]:
        yield opening
        yield from body.chunks()
        yield closing

    size = len(opening) + body.size + len(closing)
    return client.post(f"/documents/{doc_id}/versions", content=parts(),
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                "Content-Length": str(size)})


UPLOADERS: dict[str, Uploader] = {OURS: upload_raw, NAIVE: upload_multipart}


def _create_document(client: httpx.Client, subject: str) -> int:
    response = client.post("/documents", json={"direction": "outgoing", "doc_type": "cong_van", "subject": subject})
    if response.status_code != 201:
        raise RuntimeError(f"create document: {response.status_code} {response.text[:300]}")
    return response.json()["id"]


def _ingest_one(client: httpx.Client, upload: Uploader, body: PdfBody) -> tuple[float, float]:
    started = time.perf_counter()
    doc_id = _create_document(client, f"bench {body.name}")
    created = time.perf_counter()
    response = upload(client, doc_id, body)
    done = time.perf_counter()
    if response.status_code != 201 or response.json().get("size") != body.size:
        raise RuntimeError(f"upload {body.name}: {response.status_code} {response.text[:300]}")
    return created - started, done - created


def _in_threads(items: Sequence[PdfBody], threads: int, work: Callable[[int, PdfBody], tuple[float, float]]
                ) -> tuple[float, list[tuple[float, float]]]:
    """Run ``work(thread_index, item)`` over ``items`` on ``threads`` threads; return the wall
    time and each item's result. The first error stops the others and is raised."""
    pending = iter(items)
    lock = threading.Lock()
    results: list[tuple[float, float]] = []
    errors: list[BaseException] = []

    def loop(index: int) -> None:
        while not errors:
            with lock:
                item = next(pending, None)
            if item is None:
                return
            try:
                results.append(work(index, item))
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread below
                errors.append(exc)

    workers = [threading.Thread(target=loop, args=(i,), name=f"bench-{i}") for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return wall, results


def run_http(server: Server, token: str, method: str, bodies: Sequence[PdfBody], concurrency: int
             ) -> tuple[float, list[float], list[float], int]:
    clients = [httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"},
                            timeout=httpx.Timeout(300.0)) for _ in range(concurrency)]
    try:
        for client in clients:  # connect outside the timed part
            client.get("/health").raise_for_status()
        upload = UPLOADERS[method]
        with RssSampler(server.pid) as rss:
            wall, results = _in_threads(bodies, concurrency,
                                        lambda i, body: _ingest_one(clients[i], upload, body))
    finally:
        for client in clients:
            client.close()
    return wall, [r[0] for r in results], [r[1] for r in results], rss.peak


def run_disk(directory: Path, bodies: Sequence[PdfBody], threads: int) -> tuple[float, list[float]]:
    directory.mkdir(parents=True, exist_ok=True)

    def write(_index: int, body: PdfBody) -> tuple[float, float]:
        started = time.perf_counter()
        with open(directory / body.name, "wb") as out:
            for chunk in body.chunks():
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        return 0.0, time.perf_counter() - started

    try:
        wall, results = _in_threads(bodies, threads, write)
    finally:
        for body in bodies:
            (directory / body.name).unlink(missing_ok=True)
    return wall, [r[1] for r in results]


def run_sha(bodies: Sequence[PdfBody]) -> tuple[float, list[float]]:
    def digest(_index: int, body: PdfBody) -> tuple[float, float]:
        started = time.perf_counter()
        sha = hashlib.sha256()
        for chunk in body.chunks():
            sha.update(chunk)
        sha.hexdigest()
        return 0.0, time.perf_counter() - started

    wall, results = _in_threads(bodies, 1, digest)
    return wall, [r[1] for r in results]


# --- a workload: every method, R times, interleaved -------------------------------------------

@dataclass(frozen=True)
class Workload:
    name: str
    files: int
    concurrency: int
    make: Callable[[], PdfBody]


def measure(server: Server, token: str, workload: Workload, repeat: int) -> list[Run]:
    # Warm-up, not recorded: first requests import modules and fill pools on both sides.
    warm = [workload.make() for _ in range(workload.concurrency)]
    for method in HTTP_METHODS:
        run_http(server, token, method, warm, workload.concurrency)
    runs = []
    for rep in range(repeat):
        # Rotate the order each repeat so drift on a shared machine does not favour one method.
        order = METHODS[rep % len(METHODS):] + METHODS[:rep % len(METHODS)]
        for method in order:
            runs.append(_measure_one(server, token, workload, method, rep))
            last = runs[-1]
            print(f"  {workload.name:<6} rep {rep + 1}/{repeat}  {method:<24} {last.files / last.wall_s:9.1f} docs/s "
                  f"{_mb(last.bytes) / last.wall_s:8.2f} MB/s", flush=True)
    return runs


def _measure_one(server: Server, token: str, workload: Workload, method: str, rep: int) -> Run:
    bodies = [workload.make() for _ in range(workload.files)]
    total = sum(b.size for b in bodies)
    creates: list[float] = []
    peak = None
    threads = workload.concurrency
    if method in HTTP_METHODS:
        wall, creates, items, peak = run_http(server, token, method, bodies, threads)
    elif method == SHA:
        threads = 1
        wall, items = run_sha(bodies)
    else:
        threads = 1 if method == DISK_1 else threads
        wall, items = run_disk(server.data_dir / "rawdisk", bodies, threads)
    return Run(workload.name, method, rep, len(bodies), total, threads, wall, creates, items, peak)


# --- report -----------------------------------------------------------------------------------

def _mb(n: float) -> float:
    return n / MiB


def summarise(runs: Sequence[Run]) -> list[dict]:
    rows = []
    for workload in dict.fromkeys(r.workload for r in runs):
        of = {m: [r for r in runs if r.workload == workload and r.method == m] for m in METHODS}
        disk_c = median([_mb(r.bytes) / r.wall_s for r in of[DISK_C]])
        for method in METHODS:
            group = of[method]
            if not group:
                continue
            mbs = median([_mb(r.bytes) / r.wall_s for r in group])
            peaks = [r.server_peak_rss for r in group if r.server_peak_rss is not None]
            rows.append({
                "workload": workload,
                "method": method,
                "files": group[0].files,
                "file_mb": _mb(group[0].bytes / group[0].files),
                "threads": group[0].concurrency,
                "docs_per_s": median([r.files / r.wall_s for r in group]),
                "mb_per_s": mbs,
                "vs_disk_c": mbs / disk_c if disk_c else None,
                "create_p50_ms": (median([percentile(r.create_s, 50) * 1e3 for r in group])
                                  if group[0].create_s else None),
                "item_p50_ms": median([percentile(r.item_s, 50) * 1e3 for r in group]),
                "item_p95_ms": median([percentile(r.item_s, 95) * 1e3 for r in group]),
                "server_peak_mb": _mb(max(peaks)) if peaks else None,
                "repeats": len(group),
            })
    return rows


def _fmt(value: float | None) -> str:
    """About three significant digits, without switching to exponents."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 1 else f"{value:.3g}"


def print_report(rows: Sequence[dict], baseline_rss: int) -> None:
    headers = ["workload / method", "thr", "docs/s", "MB/s", "÷disk", "create p50", "p50 ms", "p95 ms", "srv peak MB"]
    table = [[f"{r['workload']} {r['method']}", str(r["threads"]), _fmt(r["docs_per_s"]), _fmt(r["mb_per_s"]),
              _fmt(r["vs_disk_c"]), _fmt(r["create_p50_ms"]), _fmt(r["item_p50_ms"]), _fmt(r["item_p95_ms"]),
              "-" if r["server_peak_mb"] is None else f"{r['server_peak_mb']:.0f}"]
             for r in rows]
    print()
    print(format_table(headers, table))
    print("p50/p95: one upload request (HTTP rows), one file's write+fsync (disk rows), one file's hash (sha row);"
          "\ndocs/s counts create+upload; ÷disk = MB/s over the 'disk write+fsync, C thr' row; medians of the repeats")
    print(f"server RSS before the first upload: {_mb(baseline_rss):.0f} MB")
    for workload in dict.fromkeys(r["workload"] for r in rows):
        by = {r["method"]: r for r in rows if r["workload"] == workload}
        ours, naive, sha = by.get(OURS), by.get(NAIVE), by.get(SHA)
        if ours and naive:
            print(f"{workload}: ours {ours['docs_per_s']:.1f} docs/s, {ours['mb_per_s']:.2f} MB/s "
                  f"= {ours['mb_per_s'] / naive['mb_per_s']:.2f}x naive, {ours['vs_disk_c']:.3f}x raw disk (C threads)"
                  + (f"; sha-256 alone: {sha['mb_per_s']:.0f} MB/s" if sha else ""))


# --- main -------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, help="one-page PDFs per run (default 200; --quick 40)")
    parser.add_argument("--large", type=int, help="large PDFs per run (default 20; --quick 4)")
    parser.add_argument("--large-mb", type=float, default=10.0, help="size of a large PDF in MiB (default 10)")
    parser.add_argument("--concurrency", type=int, help="concurrent uploads for both workloads "
                                                        "(default 8 for small, 4 for large)")
    parser.add_argument("--repeat", type=int,
                        help="runs of each measurement; medians are reported (default 3; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few files, one repeat")
    args = parser.parse_args(argv)
    quick = args.quick
    args.small = args.small if args.small is not None else (40 if quick else 200)
    args.large = args.large if args.large is not None else (4 if quick else 20)
    args.repeat = args.repeat if args.repeat is not None else (1 if quick else 3)
    if args.large_mb < 0.01:
        parser.error("--large-mb must be at least 0.01")
    if min(args.small, args.large) < 0 or args.repeat < 1 or (args.concurrency is not None and args.concurrency < 1):
        parser.error("counts must be >= 0, --repeat and --concurrency >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    dropped = clear_docsvc_environment()
    files = Files(int(args.large_mb * MiB))
    workloads = [w for w in (
        Workload("small", args.small, args.concurrency or 8, files.small),
        Workload("large", args.large, args.concurrency or 4, files.large),
    ) if w.files]
    print(f"docsvc ingest bench: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, repeats {args.repeat}"
          + (f"; ignoring inherited {', '.join(dropped)}" if dropped else ""))
    for w in workloads:
        sample = w.make()
        print(f"  {w.name}: {w.files} files of {sample.size:,} bytes, concurrency {w.concurrency}")
    started, host = time.perf_counter(), machine()
    with temp_data_dir() as data_dir:
        print(f"  data dir {data_dir} (the raw disk rows write to the same filesystem)", flush=True)
        username, password = seed_clerk(data_dir)
        env = {"DOCSVC_MAX_UPLOAD_BYTES": str(4 * 1024 * MiB), "DOCSVC_AUTH__ACCESS_TOKEN_MINUTES": "1440"}
        with running_server(data_dir, env) as server:
            token = login(server.base_url, username, password)
            baseline = RssSampler(server.pid).rss_now()
            runs = [run for w in workloads for run in measure(server, token, w, args.repeat)]
    rows = summarise(runs)
    print_report(rows, baseline)
    path = write_results("ingest", {
        "args": vars(args), "machine": host, "elapsed_s": time.perf_counter() - started,
        "server_baseline_rss": baseline, "summary": rows, "runs": [asdict(r) for r in runs],
    })
    print(f"\n{time.perf_counter() - started:.0f} s in all; every sample in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
