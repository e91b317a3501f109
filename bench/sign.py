"""PAdES signing throughput: our FileKeyBackend signer (visible and invisible B-B, B-LTA against the
development PKI's TSA/OCSP/CRL served on loopback) beside pyHanko's stock path (in a process of
its own, ``bench/_stock_sign.py``: nothing of ours loaded) and the raw RSA limit (cryptography
in-process, ``openssl dgst -sign`` per signature); validation throughput; peak RSS and time
signing a 100 MiB PDF file to file (in a subprocess). Ends with the issue's targets, met or not.

    .venv/bin/python bench/sign.py [--n 30] [--repeat 3] [--big-mb 100]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import format_table, median, percentile, write_results  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: E402

from signing.devpki import DevPki  # noqa: E402
from signing.interfaces import AppearanceSpec, SignatureSpec  # noqa: E402
from signing.keys import FileKeyBackend  # noqa: E402
from signing.pades import async_sign_pdf  # noqa: E402
from signing.trust import TrustServices, dev_trust  # noqa: E402
from signing.validation import async_validate_pdf  # noqa: E402
from tests.signing.conftest import _build_pki  # noqa: E402
from tests.support.pdfs import big_pdf, tiny_pdf, write_big_pdf  # noqa: E402
from tests.support.pki_server import PkiHttpServer  # noqa: E402

SPEC = SignatureSpec(reason="Phê duyệt", appearance=AppearanceSpec())
INVISIBLE = SignatureSpec(reason="Phê duyệt")


def _time(fn, n):
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t) * 1000)
    return lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-mb", type=int, default=100)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()}")
    pki = _build_pki()
    key = pki.rsa_signer.backend()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sign-"))
    (tmp / "k.pem").write_bytes(pki.rsa_signer.key_pem)
    (tmp / "c.pem").write_bytes(pki.rsa_signer.cert.public_bytes(serialization.Encoding.PEM))
    docs = {"1 page": tiny_pdf(), "10 MB": big_pdf(10 * 1024 * 1024)}
    for label, data in docs.items():
        (tmp / f"{label.replace(' ', '')}.pdf").write_bytes(data)
    loop = asyncio.new_event_loop()

    def ours(data):
        return lambda: loop.run_until_complete(async_sign_pdf(io.BytesIO(data), io.BytesIO(), key, SPEC))

    def stock_process(p12: Path, passphrase: str, label: str, level: str, tsa_url: str = "",
                      trust_root: Path | None = None):
        """pyHanko's documented path in a fresh interpreter (so our speed-ups do not help it)."""
        def run(n: int) -> list[float]:
            job = tmp / "stock-job.json"
            job.write_text(json.dumps({"pkcs12": str(p12), "passphrase": passphrase, "level": level, "n": n,
                                       "pdf": str(tmp / f"{label.replace(' ', '')}.pdf"), "tsa_url": tsa_url,
                                       "trust_root": str(trust_root or "")}))
            out = subprocess.run([sys.executable, str(Path(__file__).with_name("_stock_sign.py")), str(job)],
                                 capture_output=True, text=True, check=True).stdout
            return json.loads(out)["latencies_ms"]
        return run

    rsa_p12 = tmp / "rsa.p12"
    rsa_p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"bench", pki.rsa_signer.key, pki.rsa_signer.cert, None, serialization.BestAvailableEncryption(b"bench")))

    # The development PKI on loopback: real TSA, OCSP responder and CRLs over HTTP.
    server = PkiHttpServer()
    dev = DevPki.init(tmp / "pki", base_url=server.base_url, ca_key_type="p256")
    issued = dev.issue_personal("Nguyễn Văn An", "001203000001", "Sở TT&TT")
    dev_key = FileKeyBackend(issued.private_key, issued.certificate, issued.chain)
    trust = TrustServices(dev_trust(dev, tmp / "revinfo-cache"))
    serving = server.serving(dev)
    serving.__enter__()

    def ours_lta(data):
        return lambda: loop.run_until_complete(async_sign_pdf(
            io.BytesIO(data), io.BytesIO(), dev_key, SignatureSpec(level="B-LTA", appearance=AppearanceSpec()),
            timestamper=trust.timestamper(), validation_context=trust.signing_validation_context()))

    dev_p12 = tmp / "dev.p12"
    dev_p12.write_bytes(issued.to_pkcs12("bench"))
    dev_root = tmp / "dev-root.pem"
    dev_root.write_bytes(issued.chain[-1].public_bytes(serialization.Encoding.PEM))

    digest = os.urandom(32)
    raw_key = pki.rsa_signer.key
    methods = {}
    for label, data in docs.items():
        n = args.n if label == "1 page" else max(args.n // 5, 3)
        methods[f"ours, {label}"] = (ours(data), n)
        methods[f"stock pyHanko, {label}"] = (stock_process(rsa_p12, "bench", label, "B-B"), n)
    methods["ours invisible B-B, 1 page"] = (
        lambda: loop.run_until_complete(async_sign_pdf(io.BytesIO(docs["1 page"]), io.BytesIO(), key, INVISIBLE)),
        args.n)
    for label, data in docs.items():
        n = max(args.n // 3, 5) if label == "1 page" else 3
        methods[f"ours B-LTA, {label}"] = (ours_lta(data), n)
        methods[f"stock pyHanko B-LTA, {label}"] = (
            stock_process(dev_p12, "bench", label, "B-LTA", f"{server.base_url}/pki/tsa", dev_root), n)
    methods["raw RSA-2048 (cryptography)"] = (
        lambda: raw_key.sign(digest, padding.PKCS1v15(), hashes.SHA256()), args.n * 10)
    methods["openssl dgst -sha256 -sign (process)"] = (
        lambda: subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(tmp / "k.pem"), "-out", os.devnull,
                                str(tmp / "c.pem")], check=True), max(args.n // 3, 5))
    signed = io.BytesIO()
    loop.run_until_complete(async_sign_pdf(io.BytesIO(docs["1 page"]), signed, key, SPEC))
    signed_bytes = signed.getvalue()
    methods["validate_pdf (1 sig, 1 page)"] = (
        lambda: loop.run_until_complete(async_validate_pdf(signed_bytes, [pki.root.asn1])), args.n)
    lta = io.BytesIO()
    ours_lta_to = lambda: loop.run_until_complete(async_sign_pdf(  # noqa: E731
        io.BytesIO(docs["1 page"]), lta, dev_key, SignatureSpec(level="B-LTA"), timestamper=trust.timestamper(),
        validation_context=trust.signing_validation_context()))
    ours_lta_to()
    lta_bytes = lta.getvalue()
    methods["validate_pdf B-LTA via TrustServices (sig + doc ts)"] = (
        lambda: loop.run_until_complete(async_validate_pdf(lta_bytes, trust=trust)), args.n)

    samples: dict[str, list[list[float]]] = {m: [] for m in methods}
    names = list(methods)
    for r in range(args.repeat):
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn, n = methods[name]
            if name.startswith("stock"):
                samples[name].append(fn(n))  # warms up in its own process
                continue
            fn()  # warm
            samples[name].append(_time(fn, n))
    rows, results = [], {}
    for name in names:
        p50 = median([median(s) for s in samples[name]])
        p95 = median([percentile(s, 95) for s in samples[name]])
        results[name] = {"p50_ms": p50, "p95_ms": p95, "per_s": 1000 / p50, "samples": samples[name]}
    for name in names:
        ratio = ""
        stock = name.replace("ours", "stock pyHanko", 1)
        if name.startswith("ours") and stock in results:
            ratio = f"{results[stock]['p50_ms'] / results[name]['p50_ms']:.1f}x"
        rows.append([name, f"{results[name]['per_s']:.1f}", f"{results[name]['p50_ms']:.2f}",
                     f"{results[name]['p95_ms']:.2f}", ratio])

    serving.__exit__(None, None, None)
    big = tmp / "big.pdf"
    with open(big, "wb") as fh:
        write_big_pdf(fh, args.big_mb * 1024 * 1024)
    # ru_maxrss of a child reports the forked parent's high-water mark, so the child resets its own
    # (/proc/self/clear_refs) and reads VmHWM, as bench/axis_pack.py does.
    code = (
        "import sys,time; sys.path.insert(0,'.');"
        "from tests.signing.conftest import _build_pki; from signing.pades import sign_pdf;"
        "from signing.interfaces import SignatureSpec, AppearanceSpec;"
        "k=_build_pki().rsa_signer.backend();"
        "kb=lambda f: int([l for l in open('/proc/self/status') if l.startswith(f)][0].split()[1])*1024;"
        "open('/proc/self/clear_refs','w').write('5'); base=kb('VmRSS');"
        f"t=time.perf_counter(); sign_pdf('{big}', '{tmp / 'big-signed.pdf'}', k, "
        "SignatureSpec(appearance=AppearanceSpec()));"
        "print(time.perf_counter()-t, kb('VmHWM'), base)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout.split()
    big_s, peak, base = float(out[0]), int(out[1]), int(out[2])
    size = big.stat().st_size
    print(format_table(["method", "sig/s", "p50 ms", "p95 ms", "stock/ours"], rows))
    print(f"\n{args.big_mb} MiB file to file: {big_s * 1000:.0f} ms, peak RSS {peak / 2**20:.0f} MiB "
          f"(process before signing {base / 2**20:.0f} MiB) = {peak / size:.2f}x the file size; "
          f"growth while signing {(peak - base) / 2**20:.0f} MiB = {(peak - base) / size:.2f}x")
    one = results["ours, 1 page"]
    speedup = results["stock pyHanko, 1 page"]["p50_ms"] / one["p50_ms"]
    targets = [("B-B with appearance, 1 page >= 100 sig/s", f"{one['per_s']:.0f} sig/s", one["per_s"] >= 100),
               (">= 10x the stock path", f"{speedup:.1f}x", speedup >= 10),
               (f"{args.big_mb} MiB PDF signed in < 1 s", f"{big_s:.2f} s", big_s < 1),
               ("peak memory < 2x its size", f"{peak / size:.2f}x", peak < 2 * size),
               ("validation >= 80 sig/s", f"{results['validate_pdf (1 sig, 1 page)']['per_s']:.0f} sig/s",
                results["validate_pdf (1 sig, 1 page)"]["per_s"] >= 80)]
    print()
    print(format_table(["target", "measured", "met"], [[t, m, "yes" if ok else "NO"] for t, m, ok in targets]))
    path = write_results("sign", {"methods": results, "big": {"seconds": big_s, "peak_rss": peak,
                                                              "rss_before": base, "size": size}})
    print(f"results: {path}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
