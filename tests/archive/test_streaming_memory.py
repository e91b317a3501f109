"""Big objects stream through the stores in bounded memory.

Each check runs in a fresh Python process so that its peak RSS belongs to this one upload
and download alone. The peak is read from ``VmHWM`` in ``/proc/self/status``: ``ru_maxrss``
survives ``exec`` and would report the forked pytest process's own peak.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.archive.conftest import make_s3_store
from tests.support.seaweed import S3Endpoint

REPO = Path(__file__).resolve().parents[2]
GB = 1000 * 1000 * 1000
PEAK_RSS_LIMIT = 200 * 1024 * 1024
# Half the filesystem size: SeaweedFS on loopback takes ~40 s for 1 GB (upload, server-side
# copy, download) on a 2-core box; 512 MB still cannot fit under the limit if buffered.
S3_SIZE = 512 * 1024 * 1024

# Puts SIZE bytes generated on the fly (one random MiB, made unique per chunk by a counter
# prefix, so nothing repeats and nothing big is ever built), then reads them back verified.
SCRIPT = """
import hashlib, json, os, sys
from pathlib import Path
from archive import FilesystemObjectStore, S3ObjectStore

def peak_rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # reported in kB

config = json.loads(sys.argv[1])
store = (
    FilesystemObjectStore(Path(config["root"])) if config["kind"] == "filesystem"
    else S3ObjectStore(**config["s3"])
)
block = os.urandom(1024 * 1024)
sent = hashlib.sha256()

def chunks():
    remaining = config["size"]
    counter = 0
    while remaining:
        chunk = (counter.to_bytes(8, "big") + block[8:])[:remaining]
        sent.update(chunk)
        remaining -= len(chunk)
        counter += 1
        yield chunk

stored = store.put(chunks())
after_put = peak_rss()
received = hashlib.sha256()
size = 0
for chunk in store.get(stored.key, verify=True):
    received.update(chunk)
    size += len(chunk)
print(json.dumps({
    "sent": sent.hexdigest(), "stored": stored.sha256, "received": received.hexdigest(),
    "size": size, "peak_after_put": after_put, "peak_after_get": peak_rss(),
}))
store.delete(stored.key)
"""


def stream_in_subprocess(config: dict) -> dict:
    """Run SCRIPT with ``config``; return what it measured."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_streamed_in_bounded_memory(measured: dict, size: int) -> None:
    assert measured["size"] == size
    assert measured["stored"] == measured["sent"] == measured["received"]
    assert measured["peak_after_put"] < PEAK_RSS_LIMIT, measured
    assert measured["peak_after_get"] < PEAK_RSS_LIMIT, measured


def test_filesystem_store_streams_a_1_gb_object(tmp_path: Path) -> None:
    root = tmp_path / "objects"

    measured = stream_in_subprocess({"kind": "filesystem", "root": str(root), "size": GB + 3})

    assert_streamed_in_bounded_memory(measured, GB + 3)
    assert not any(path.is_file() for path in root.rglob("*"))  # deleted, no temp left


@pytest.mark.s3
def test_s3_store_streams_a_512_mb_object(seaweedfs: S3Endpoint, s3_bucket: str) -> None:
    store = make_s3_store(seaweedfs, s3_bucket)  # creates the bucket
    s3 = {
        "endpoint": seaweedfs.endpoint,
        "access_key": seaweedfs.access_key,
        "secret_key": seaweedfs.secret_key,
        "bucket": s3_bucket,
    }  # default 16 MiB parts, as in production

    measured = stream_in_subprocess({"kind": "s3", "s3": s3, "size": S3_SIZE + 3})

    assert_streamed_in_bounded_memory(measured, S3_SIZE + 3)
    assert list(store.list()) == []
