"""A 200 MB attachment goes through build → parse → sign → verify → inspect without the process
holding it in memory (issue 4: "streamed so that a 200 MB attachment does not need several times its
size in memory").

Each step runs in a fresh interpreter (this module run as a script), so its peak RSS is the step's
own: the child records its RSS after the imports (the baseline) and ``ru_maxrss`` when the step is
done, and the test bounds the difference. Non-streaming code would need at least the 267 MB of base64
text (several times that with lxml's tree and Python copies), so the bound of half the attachment
size can only hold for code that streams. Speed is measured in ``bench/axis_pack.py``, not here."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
ATTACHMENT_BYTES = 200 * MiB
MAX_GROWTH = ATTACHMENT_BYTES // 2
CHILD_TIMEOUT = 120

pytestmark = pytest.mark.timeout(300)


def _write_attachment(path: Path, size: int) -> str:
    """Incompressible-looking bytes written 4 MiB at a time (a PDF header in front); returns the SHA-256."""
    digest = hashlib.sha256()
    block = os.urandom(4 * MiB)
    with open(path, "wb") as out:
        written = 0
        counter = 0
        while written < size:
            # A counter per block keeps the file from being one repeated block (no accidental dedup).
            chunk = (b"%PDF-1.7\n" if written == 0 else counter.to_bytes(8, "big")) + block
            chunk = chunk[: size - written]
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            counter += 1
    return digest.hexdigest()


def _run_step(step: str, *args: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, step, *map(str, args)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _report(step: str, outcome: dict) -> None:
    growth = outcome["peak"] - outcome["baseline"]
    print(f"{step:7s} {outcome['seconds']:6.1f} s  baseline {outcome['baseline'] / MiB:6.1f} MiB  "
          f"peak {outcome['peak'] / MiB:6.1f} MiB  growth {growth / MiB:6.1f} MiB")


@pytest.fixture
def tmp_path(tmp_path):
    """pytest keeps the last runs' temporary directories: do not leave ~750 MB behind in them."""
    yield tmp_path
    for path in tmp_path.glob("*.*"):
        if path.is_file() and path.stat().st_size > MiB:
            path.unlink()


def test_200_mb_attachment_streams_through_every_step(seal, tmp_path):
    key, cert, root = seal
    (tmp_path / "key.pem").write_bytes(key)
    (tmp_path / "cert.pem").write_bytes(cert)
    attachment = tmp_path / "big.pdf"
    source_sha = _write_attachment(attachment, ATTACHMENT_BYTES)
    unsigned, signed, spool = tmp_path / "unsigned.edxml", tmp_path / "signed.edxml", tmp_path / "spool"
    spool.mkdir()

    outcomes = {
        "build": _run_step("build", attachment, unsigned),
        "parse": _run_step("parse", unsigned, spool),
        "sign": _run_step("sign", unsigned, signed, tmp_path / "key.pem", tmp_path / "cert.pem", spool),
        "verify": _run_step("verify", signed, root, spool),
        "inspect": _run_step("inspect", signed),
    }
    # The control: the same measurement around a non-streaming read must see the attachment, or the
    # bounds below would prove nothing (ru_maxrss, for one, reports the pytest parent's size instead).
    naive = _run_step("naive", unsigned)
    for step, outcome in {**outcomes, "naive": naive}.items():
        _report(step, outcome)
    assert naive["sha256"] == source_sha
    assert naive["peak"] - naive["baseline"] > ATTACHMENT_BYTES

    assert unsigned.stat().st_size > ATTACHMENT_BYTES * 4 // 3  # the base64 text really is in the package
    assert outcomes["parse"]["attachments"] == [[ATTACHMENT_BYTES, source_sha]]
    assert outcomes["parse"]["warnings"] == []
    assert outcomes["verify"]["reason"] == "valid"
    assert outcomes["inspect"]["document_id"] == "000.00.00.H41,2025/03/14,12/CT-UBND"
    assert list(spool.iterdir()) == []  # every spooled attachment text was removed
    for step, outcome in outcomes.items():
        growth = outcome["peak"] - outcome["baseline"]
        assert growth < MAX_GROWTH, f"{step}: peak RSS grew by {growth / MiB:.0f} MiB"


def test_tampered_200_mb_attachment_is_a_digest_mismatch(seal, tmp_path):
    """The streamed digest really covers the attachment bytes: one flipped base64 character deep
    inside 267 MB of text (not in the header) is caught, still within the memory bound."""
    key, cert, root = seal
    (tmp_path / "key.pem").write_bytes(key)
    (tmp_path / "cert.pem").write_bytes(cert)
    attachment = tmp_path / "big.pdf"
    _write_attachment(attachment, ATTACHMENT_BYTES)
    unsigned, signed = tmp_path / "unsigned.edxml", tmp_path / "signed.edxml"
    _run_step("build", attachment, unsigned)
    _run_step("sign", unsigned, signed, tmp_path / "key.pem", tmp_path / "cert.pem", tmp_path)
    with open(signed, "r+b") as stream:
        middle = signed.stat().st_size // 2
        stream.seek(middle)
        window = stream.read(80)
        # The middle of the file is base64 text, not markup; '+', '/' and line breaks are base64
        # text too, so flip the first letter or digit of the window.
        assert set(window) <= set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\r\n")
        offset = next(i for i, b in enumerate(window) if bytes([b]).isalnum())
        stream.seek(middle + offset)
        stream.write(b"A" if window[offset : offset + 1] != b"A" else b"B")
    outcome = _run_step("verify", signed, root, tmp_path)
    assert outcome["reason"] == "digest_mismatch"
    assert outcome["peak"] - outcome["baseline"] < MAX_GROWTH


# --- the child side: one step per fresh interpreter -------------------------------------------------


def _build(attachment: str, out_path: str) -> dict:
    from inter_axis.build import write_package
    from tests.inter_axis.conftest import example_package

    with open(out_path, "wb") as out:
        return {"bytes": write_package(example_package(Path(attachment)), out)}


def _parse(package: str, spool: str) -> dict:
    from inter_axis.parse import read_package

    with read_package(package, spool_dir=spool) as parsed:
        return {"attachments": [[a.size, a.sha256] for a in parsed.attachments], "warnings": list(parsed.warnings)}


def _sign(package: str, out_path: str, key: str, cert: str, spool: str) -> dict:
    from inter_axis.xmldsig import sign_package

    with open(out_path, "wb") as out:
        written = sign_package(package, out, Path(key).read_bytes(), Path(cert).read_bytes(), spool_dir=spool)
    return {"bytes": written}


def _verify(package: str, root: str, spool: str) -> dict:
    from inter_axis.xmldsig import verify_package

    return {"reason": verify_package(package, [Path(root).read_bytes()], spool_dir=spool).reason}


def _inspect(package: str) -> dict:
    from inter_axis.inspect import inspect_package

    return {"document_id": inspect_package(package).document_id}


def _peak_rss() -> int:
    """This process's peak RSS in bytes. ``VmHWM`` belongs to the address space, which ``exec`` replaces;
    ``ru_maxrss`` would not do: Linux carries it over from the parent across fork and exec, so a child of
    a big pytest process reports the parent's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: KiB too, at least


def _naive(package: str) -> dict:
    """The whole package as one lxml tree (``huge_tree``), the attachment decoded from its text."""
    import base64

    from lxml import etree

    tree = etree.parse(package, etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True))
    [text] = [el.text for el in tree.iter() if el.tag.endswith("}ContentTransferEncoded")]
    return {"sha256": hashlib.sha256(base64.b64decode(text)).hexdigest()}


_STEPS = {
    "build": _build,
    "parse": _parse,
    "sign": _sign,
    "verify": _verify,
    "inspect": _inspect,
    "naive": _naive,
}


def _child(step: str, args: list[str]) -> None:
    import time

    import inter_axis.build
    import inter_axis.inspect
    import inter_axis.parse
    import inter_axis.xmldsig  # noqa: F401 - imported before the baseline, so only the step's own growth counts
    import tests.inter_axis.conftest  # noqa: F401

    baseline = psutil.Process().memory_info().rss
    started = time.perf_counter()
    result = _STEPS[step](*args)
    seconds = time.perf_counter() - started
    peak = _peak_rss()
    print(json.dumps({**result, "baseline": baseline, "peak": peak, "seconds": seconds}))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2:])
