"""Shared pieces of the benchmarks: a real ``docsvc serve`` in a throw-away data dir, a sampler
of the server's memory, small statistics and a plain-text table.

Nothing here measures anything by itself; each ``bench/*.py`` decides what to time."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
MiB = 1024 * 1024
BENCH_PASSWORD = "bench password, not a secret"


# --- statistics -------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), ``q`` in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# --- output -----------------------------------------------------------------------------------

def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-align the first column, right-align the numbers."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = (str(c) for c in cells)
        return "  ".join([first.ljust(widths[0])] + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=False)])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def write_results(name: str, payload: dict) -> Path:
    """Write ``bench/results/<name>-<timestamp>.json`` (the directory is git-ignored)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "load_avg": os.getloadavg(),
        "memory_total_mb": round(psutil.virtual_memory().total / MiB),
    }


# --- memory sampling --------------------------------------------------------------------------

class RssSampler:
    """Sample the RSS of a process and all its descendants every ``interval`` seconds.

    The process list is refreshed once a second rather than every sample: walking /proc for
    children costs more than reading a few RSS values, and this runs on the same 2 cores as the
    server it measures."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._root = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak = 0
        self.samples = 0

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_now(self) -> int:
        total = 0
        for proc in self._tree():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _run(self) -> None:
        tree, refreshed = self._tree(), time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - refreshed > 1.0:
                tree, refreshed = self._tree(), time.monotonic()
            total = 0
            for proc in tree:
                try:
                    total += proc.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.peak = max(self.peak, total)
            self.samples += 1
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss_now()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.rss_now())


# --- a real server ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int
    data_dir: Path
    log_path: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clear_docsvc_environment() -> list[str]:
    """Drop inherited ``DOCSVC_*`` variables so a bench never touches a configured database,
    bucket or broker; returns the names dropped."""
    dropped = sorted(k for k in os.environ if k.startswith("DOCSVC_"))
    for key in dropped:
        del os.environ[key]
    return dropped


def seed_clerk(data_dir: Path, username: str = "bench.clerk") -> tuple[str, str]:
    """Create the schema, an organisation and a clerk in ``data_dir`` through the real
    services, before any server runs; returns (username, password)."""
    from docsvc.bootstrap import bootstrap
    from docsvc.organisations import service as orgs
    from docsvc.organisations.schemas import OrganisationCreate
    from docsvc.principal import SERVICE_ACTOR, Role
    from docsvc.runtime import Runtime
    from docsvc.settings import Settings
    from docsvc.users import service as users
    from docsvc.users.schemas import UserCreate

    runtime = Runtime(Settings(data_dir=data_dir))
    try:
        root = bootstrap(runtime).root
        with runtime.sessions() as session:
            org = orgs.create(session, SERVICE_ACTOR, OrganisationCreate(
                organ_id="000.00.12.H41", name="Sở Thông tin và Truyền thông", short_name="STTTT",
                level="department", parent_id=root.id))
            users.create_user(session, SERVICE_ACTOR, UserCreate(
                username=username, full_name="Bench Clerk", organisation_id=org.id,
                roles=[Role.CLERK], password=BENCH_PASSWORD))
    finally:
        runtime.dispose()
    return username, BENCH_PASSWORD


@contextmanager
def temp_data_dir(prefix: str = "docsvc-bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def running_server(data_dir: Path, extra_env: dict[str, str] | None = None,
                   startup_timeout: float = 60.0) -> Iterator[Server]:
    """Run ``docsvc serve --no-worker`` on a free port against ``data_dir`` until the block
    exits; then terminate it (kill after 10 s). Its output goes to ``data_dir/server.log``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCSVC_")}
    env.update({
        "DOCSVC_SECRET_KEY": secrets.token_urlsafe(36)[:48],
        "DOCSVC_START_WORKER": "false",
        **(extra_env or {}),
    })
    docsvc = Path(sys.executable).with_name("docsvc")
    cmd = [str(docsvc), "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data_dir)]
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                preexec_fn=_die_with_parent)
    try:
        server = Server(f"http://127.0.0.1:{port}", proc.pid, data_dir, log_path)
        _wait_healthy(server, proc, startup_timeout)
        yield server
    finally:
        _stop(proc)


def _die_with_parent() -> None:
    """In the child, before exec: have Linux send SIGTERM if the bench dies, even by SIGKILL,
    so no server outlives it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the finally in running_server still applies
        pass


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so ``finally`` blocks stop the server and remove the data dir."""
    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _wait_healthy(server: Server, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail(server.log_path)}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {timeout:.0f} s:\n{tail(server.log_path)}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def login(base_url: str, username: str, password: str) -> str:
    response = httpx.post(f"{base_url}/auth/token", data={"username": username, "password": password},
                          timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]
