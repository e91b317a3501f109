"""CPU cost of one ``signing.validation.validate_pdf`` call on the interlink axis's hot path: a one-page
PDF sealed at PAdES B-T (one signature + an RFC 3161 timestamp from the development PKI's TSA, served
on loopback), validated again and again in one process against the same trust roots, as
``docsvc/axis/intake.py`` does (``validate_pdf(path, roots, other_certs=...)``, nothing fetched,
validation time = now).

Every call gets another file: ``--docs`` different documents are sealed (different text, different
signature bytes, a different timestamp), so nothing keyed by the file could answer for another one.
Reports the median (and p10/p90) CPU milliseconds per call (``time.process_time``: the machine is
shared, wall time is noisy), then checks that every verdict is the expected one (indication, PAdES
level, chain, revocation fields), that two threads validating at once agree, and that a tampered
copy and a foreign trust root still fail.

    .venv/bin/python bench/validate_micro.py [--calls 200] [--docs 20] [--repeats 3] [--profile]

Measured on the 2-core development machine (shared, load average 1.5-2), median of the three
repeats' medians: 3.59-3.64 CPU ms per call before signing/reuse.py, signing/parse_speedups.py and
the reuse in signing/validation.py (this script run on the previous commit), 1.34-1.36 after.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import median, percentile  # noqa: E402


def _setup(work: Path, docs: int):
    """The development PKI (as ``ensure_dev_pki`` makes it), a seal, and ``docs`` sealed B-T PDFs."""
    from signing.devpki import DevPki
    from signing.interfaces import AppearanceSpec, SignatureSpec
    from signing.keys import FileKeyBackend
    from signing.pades import sign_pdf
    from signing.trust import TrustServices, dev_trust
    from tests.support.pdfs import tiny_pdf
    from tests.support.pki_server import PkiHttpServer

    server = PkiHttpServer()
    pki = DevPki.init(work / "pki", base_url=server.base_url)
    seal = pki.issue_seal("Sở Thông tin và Truyền thông", "000.00.00.H41")
    key = FileKeyBackend(seal.private_key, seal.certificate, seal.chain)
    trust = TrustServices(dev_trust(pki))
    spec = SignatureSpec(level="B-T", reason="Ban hành", appearance=AppearanceSpec())
    paths = []
    with server.serving(pki):
        for number in range(docs):
            src, out = work / f"plain-{number}.pdf", work / f"sealed-{number}.pdf"
            src.write_bytes(tiny_pdf(f"Ke hoach so {number} {os.urandom(6).hex()}"))
            sign_pdf(src, out, key, spec, timestamper=trust.timestamper())
            paths.append(out)
    return pki, paths


def _fields(report) -> tuple:
    (sig,) = report.signatures
    return (report.indication, report.sub_indication, sig.pades_level, sig.intact, sig.valid, sig.trusted,
            sig.chain_trusted, sig.trust_root, sig.timestamp_valid, sig.coverage, sig.modification_level,
            sig.revocation.status, sig.revocation.source, sig.revocation.revoked_at)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile one extra round, top 30 by cumulative time")
    args = ap.parse_args()

    from signing.validation import validate_pdf

    work = Path(tempfile.mkdtemp(prefix="bench-validate-"))
    pki, paths = _setup(work, args.docs)
    roots, others = [pki.trust_root], [pki.chain[0]]
    print(f"load average {os.getloadavg()}; {len(paths)} sealed B-T PDFs of "
          f"{median([p.stat().st_size for p in paths]):.0f} bytes")

    def call(i: int):
        return validate_pdf(paths[i % len(paths)], roots, other_certs=others)

    expected = _fields(call(0))
    for i in range(len(paths)):  # warm up: the steady state of a receiving process
        call(i)
    medians = []
    verdicts = set()
    for repeat in range(args.repeats):
        cpu = []
        for i in range(args.calls):
            start = time.process_time()
            report = call(i)
            cpu.append((time.process_time() - start) * 1000)
            verdicts.add(_fields(report))
        medians.append(median(cpu))
        print(f"repeat {repeat + 1}: CPU ms per validate_pdf median {median(cpu):.3f}  "
              f"p10 {percentile(cpu, 10):.3f}  p90 {percentile(cpu, 90):.3f}  ({args.calls} calls)")
    print(f"median over repeats: {median(medians):.3f} CPU ms per call")

    print(f"verdict: {expected}")
    assert verdicts == {expected}, f"verdicts changed between calls: {verdicts}"
    assert expected[:3] == ("TOTAL-PASSED", None, "B-T") and expected[6], expected

    # Two threads at once (intake does this) must reach the same verdicts.
    seen: list[tuple] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        for i in range(len(paths)):
            fields = _fields(call(i + offset))
            with lock:
                seen.append(fields)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(seen) == {expected} and len(seen) == 2 * len(paths), set(seen)

    # A tampered copy and a foreign root still fail, right after the caches were filled.
    data = bytearray(paths[0].read_bytes())
    data[data.index(b"Ke hoach so 0")] ^= 0x01
    tampered = work / "tampered.pdf"
    tampered.write_bytes(bytes(data))
    bad = validate_pdf(tampered, roots, other_certs=others)
    assert (bad.indication, bad.sub_indication) == ("TOTAL-FAILED", "HASH_FAILURE"), _fields(bad)
    from tests.signing.conftest import _build_pki

    logging.disable(logging.ERROR)  # pyHanko logs the failed path search: expected here
    try:
        foreign = validate_pdf(paths[1], [_build_pki().other_root.asn1], other_certs=others)
    finally:
        logging.disable(logging.NOTSET)
    assert foreign.indication == "INDETERMINATE" and not foreign.signatures[0].chain_trusted, _fields(foreign)
    print("checks: verdicts unchanged, 2 threads agree, tampered copy HASH_FAILURE, foreign root untrusted")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(args.calls):
            call(i)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
