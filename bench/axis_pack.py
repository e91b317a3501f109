"""edXML library throughput and memory: build, parse, sign and verify one package carrying a 1-page
(~30 KB) PDF, a 5 MB and a 200 MB attachment, side by side with the raw limit (base64 encode / decode
and SHA-256 of the same bytes in a tight loop, in memory) and the naive way (lxml parsing the whole
package with ``huge_tree``, then decoding the attachment text it holds).

Every measurement runs in a fresh interpreter, so its peak RSS (``VmHWM``, minus the RSS after the
imports) is the operation's own; small packages are processed many times per interpreter so start-up
does not count. Figures are medians of ``--repeats`` runs; the order of the operations rotates from
one repeat to the next, so drift on a shared machine does not favour one of them.

Usage: ``.venv/bin/python bench/axis_pack.py [--repeats 3] [--sizes 1page,5MB,200MB] [--target-mb 100]
[--max-iterations 200]``."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import format_table, machine, median, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
SIZES = {"1page": 30 * 1024, "5MB": 5 * MiB, "200MB": 200 * MiB}
OURS = ("build", "parse", "sign", "sign_loaded", "verify")
REFERENCES = ("raw_encode", "raw_decode", "naive_parse")
LABELS = {
    "build": "ours: build (write_package)",
    "parse": "ours: parse (read_package)",
    "sign": "ours: sign (sign_package, PEM key)",
    "sign_loaded": "ours: sign, key loaded once",
    "verify": "ours: verify (verify_package)",
    "raw_encode": "raw: b64encode+sha256, memory",
    "raw_decode": "raw: b64decode+sha256, memory",
    "naive_parse": "naive: lxml huge_tree parse+decode",
}
_READ = 3 * (1 << 16)  # the chunk the builder reads
_TEXT = 1 << 16  # the chunk the parser diverts


# --- inputs (made once per size, in the parent) -------------------------------------------------


def _package(attachment: Path):
    from inter_axis.model import (
        AttachmentSource,
        Business,
        DocumentCode,
        DocumentPackage,
        DocumentType,
        MessageHeader,
        Organization,
        SignerInfo,
        StaffInfo,
    )

    return DocumentPackage(
        header=MessageHeader(
            from_org=Organization("000.00.00.H41", "Ủy ban nhân dân tỉnh Nghệ An", "UBND tỉnh Nghệ An"),
            to=(Organization("000.00.00.G22", "Văn phòng Chính phủ", "Văn phòng Chính phủ"),),
            code=DocumentCode("12", "CT-UBND"),
            promulgation_place="Nghệ An",
            promulgation_date=date(2025, 3, 14),
            document_type=DocumentType(1, "Chỉ thị", 0),
            subject="Về tăng cường công tác phòng, chống lụt bão",
            signer=SignerInfo("KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "Nguyễn Văn A"),
        ),
        business=Business(staff=StaffInfo("Văn thư", "Trần Thị B", "vanthu@example.gov.vn", "84900000000")),
        attachments=(AttachmentSource("cid:bench-1", "van-ban.pdf", "application/pdf", attachment, "Văn bản"),),
    )


def _seal(directory: Path) -> None:
    """key.pem, cert.pem (seal + issuing CA) and root.pem of a real development PKI."""
    from cryptography.hazmat.primitives import serialization

    from signing.devpki import DevPki

    pem = serialization.Encoding.PEM
    pki = DevPki.init(directory / "pki", base_url="http://127.0.0.1:1")
    issued = pki.issue_seal("Ủy ban nhân dân tỉnh Nghệ An", "000.00.00.H41")
    key = issued.private_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (directory / "key.pem").write_bytes(key)
    (directory / "cert.pem").write_bytes(issued.certificate.public_bytes(pem) + pki.issuing.cert.public_bytes(pem))
    (directory / "root.pem").write_bytes(pki.root.cert.public_bytes(pem))


def _inputs(work: Path, size: int) -> None:
    """attachment.bin, unsigned.edxml and signed.edxml for one size (random bytes behind a PDF header)."""
    from inter_axis.build import write_package
    from inter_axis.xmldsig import sign_package

    block = os.urandom(min(size, 4 * MiB))
    with open(work / "attachment.bin", "wb") as out:
        written, counter = 0, 0
        while written < size:
            chunk = ((b"%PDF-1.7\n" if written == 0 else counter.to_bytes(8, "big")) + block)[: size - written]
            out.write(chunk)
            written, counter = written + len(chunk), counter + 1
    with open(work / "unsigned.edxml", "wb") as out:
        write_package(_package(work / "attachment.bin"), out)
    with open(work / "signed.edxml", "wb") as out:
        sign_package(work / "unsigned.edxml", out, (work / "key.pem").read_bytes(), (work / "cert.pem").read_bytes())


# --- the child: one operation, ``iterations`` times, in a fresh interpreter ----------------------


def _peak_rss() -> int:
    """Peak RSS of this address space (``ru_maxrss`` would carry the parent's peak over fork and exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _operation(op: str, work: Path):
    """A no-argument callable doing ``op`` once, and what it needs loaded before the baseline."""
    from lxml import etree

    from inter_axis.build import write_package
    from inter_axis.parse import read_package
    from inter_axis.xmldsig import load_signing_key, sign_package, sign_package_with, verify_package

    key, cert, root = ((work / name).read_bytes() for name in ("key.pem", "cert.pem", "root.pem"))
    spool = work / "spool"
    if op == "build":
        package = _package(work / "attachment.bin")

        def run():
            with open(work / "out.edxml", "wb") as out:
                write_package(package, out)
    elif op == "parse":
        def run():
            with read_package(work / "unsigned.edxml", spool_dir=spool) as parsed:
                assert not parsed.warnings, parsed.warnings
    elif op == "sign":
        def run():
            with open(work / "out.edxml", "wb") as out:
                sign_package(work / "unsigned.edxml", out, key, cert, spool_dir=spool)
    elif op == "sign_loaded":
        signing_key = load_signing_key(key, cert)

        def run():
            with open(work / "out.edxml", "wb") as out:
                sign_package_with(work / "unsigned.edxml", out, signing_key, spool_dir=spool)
    elif op == "verify":
        def run():
            check = verify_package(work / "signed.edxml", [root], spool_dir=spool)
            assert check.valid, check.reason
    elif op in ("raw_encode", "raw_decode"):
        data = (work / "attachment.bin").read_bytes()
        if op == "raw_encode":
            view, step, codec = memoryview(data), _READ, base64.b64encode
        else:
            view, step, codec = memoryview(base64.b64encode(data)), _TEXT, base64.b64decode

        def run():
            digest = hashlib.sha256()
            for start in range(0, len(view), step):
                digest.update(codec(view[start : start + step]))
            return digest
    elif op == "naive_parse":
        parser = etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True)

        def run():
            tree = etree.parse(str(work / "unsigned.edxml"), parser)
            [text] = [el.text for el in tree.iter() if el.tag.endswith("}ContentTransferEncoded")]
            hashlib.sha256(base64.b64decode(text)).hexdigest()
    elif op == "page_cycle":
        package = _package(work / "attachment.bin")
        signing_key = load_signing_key(key, cert)  # a sender loads its seal once, not per package

        def run():  # one 1-page package end to end, in memory: build, sign, parse, verify
            import io

            built, signed = io.BytesIO(), io.BytesIO()
            write_package(package, built)
            sign_package_with(built.getvalue(), signed, signing_key, spool_dir=spool)
            with read_package(signed.getvalue(), spool_dir=spool) as parsed:
                assert parsed.signature == "xmldsig"
            assert verify_package(signed.getvalue(), [root], spool_dir=spool).valid
    else:
        raise SystemExit(f"unknown operation {op}")
    return run


def _child(op: str, work: Path, iterations: int) -> None:
    run = _operation(op, work)
    _reset_peak_rss()  # the raw rows' setup (read the file, encode it) must not count as the operation's peak
    baseline = _rss_now()  # after the imports and the raw rows' in-memory data, before any work
    run()  # warm-up (first-use caches); its peak counts, its time does not
    started = time.perf_counter()
    for _ in range(iterations):
        run()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "iterations": iterations, "growth": _peak_rss() - baseline}))


def _reset_peak_rss() -> None:
    """Set ``VmHWM`` back to the current RSS (Linux >= 4.0: ``5`` to ``/proc/self/clear_refs``)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _rss_now() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- the parent ----------------------------------------------------------------------------------


def _measure(op: str, work: Path, iterations: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", op, str(work), str(iterations)],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if done.returncode:
        raise SystemExit(f"{op} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated subset of " + ",".join(SIZES))
    parser.add_argument("--target-mb", type=int, default=100, help="attachment MiB per measurement (small sizes loop)")
    parser.add_argument("--max-iterations", type=int, default=200, help="cap on the loop for small packages")
    parser.add_argument("--child", nargs=3, metavar=("OP", "WORKDIR", "ITERATIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), int(args.child[2]))
        return

    sizes = [s for s in args.sizes.split(",") if s]
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs; repeats {args.repeats}", flush=True)
    results: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-axis-pack-") as directory:
        base = Path(directory)
        _seal(base)
        for label in sizes:
            size = SIZES[label]
            work = base / label
            work.mkdir()
            (work / "spool").mkdir()
            for name in ("key.pem", "cert.pem", "root.pem"):
                (work / name).write_bytes((base / name).read_bytes())
            _inputs(work, size)
            iterations = max(1, min(args.max_iterations, round(args.target_mb * MiB / size)))
            ops = [*OURS, *REFERENCES] + (["page_cycle"] if label == "1page" else [])
            results[label] = {op: [] for op in ops}
            for repeat in range(args.repeats):
                for op in ops[repeat % len(ops) :] + ops[: repeat % len(ops)]:
                    sample = _measure(op, work, iterations if op != "naive_parse" else max(1, iterations // 4))
                    sample["mib_s"] = size * sample["iterations"] / sample["seconds"] / MiB
                    sample["per_s"] = sample["iterations"] / sample["seconds"]
                    results[label][op].append(sample)
            print(f"{label}: package {(work / 'signed.edxml').stat().st_size / MiB:.2f} MiB, "
                  f"{iterations} iteration(s) per measurement", flush=True)
            for leftover in (work / "spool").iterdir():
                raise SystemExit(f"spool file left behind: {leftover}")
    _print(results, sizes)
    path = write_results("axis_pack", {"machine": machine(), "args": vars(args), "results": results})
    print(f"samples: {path}")


def _print(results: dict, sizes: list[str]) -> None:
    headers = ["operation"]
    for label in sizes:
        headers += [f"{label} MiB/s", f"{label} peak ΔRSS MiB"]
    rows = []
    for op in (*OURS, *REFERENCES):
        row = [LABELS[op]]
        for label in sizes:
            samples = results[label][op]
            row += [f"{median([s['mib_s'] for s in samples]):.1f}",
                    f"{median([s['growth'] for s in samples]) / MiB:.1f}"]
        rows.append(row)
    print()
    print("throughput = attachment MiB per second; ΔRSS = peak RSS above the RSS after imports (raw rows: after "
          "loading their input into memory)")
    print(format_table(headers, rows))
    if "1page" in results:
        cycle = results["1page"]["page_cycle"]
        growth = median([s["growth"] for s in cycle]) / MiB
        print(f"\n1-page packages/s (build + sign with a loaded key + parse + verify, in memory): "
              f"{median([s['per_s'] for s in cycle]):.1f}  (peak ΔRSS {growth:.1f} MiB)")


if __name__ == "__main__":
    main()
