"""pyHanko's stock signing path, timed in a process of its own: nothing of ``signing/`` is
imported, so none of our per-process speed-ups (``signing.speedups``), cached fonts or stamp
styles help it. This is the code a developer writes from pyHanko's documentation:
``SimpleSigner.load_pkcs12`` once, then per document ``PdfSigner.sign_pdf`` with a
``TextStampStyle`` in an embedded Noto Serif font for the Vietnamese text, no ``bytes_reserved``
(pyHanko signs twice to measure), and for B-LTA an ``HTTPTimeStamper`` and a fetching
``ValidationContext`` (``embed_validation_info`` + ``use_pades_lta``).

    python bench/_stock_sign.py JOB.json   →   prints {"latencies_ms": [...]} on stdout

JOB: {"pkcs12", "passphrase", "pdf", "n", "level": "B-B"|"B-LTA", "tsa_url", "trust_root"}.
"""

from __future__ import annotations

import io
import json
import sys
import time

from asn1crypto import pem, x509
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers, timestamps
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

NOTO_SERIF = "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf"
STAMP_TEXT = "Ký bởi: %(signer)s\nCơ quan: Sở Thông tin và Truyền thông\nThời gian: %(ts)s"


def _load_cert(path: str) -> x509.Certificate:
    data = open(path, "rb").read()
    if pem.detect(data):
        data = pem.unarmor(data)[2]
    return x509.Certificate.load(data)


def main() -> None:
    job = json.loads(open(sys.argv[1]).read())
    signer = signers.SimpleSigner.load_pkcs12(job["pkcs12"], passphrase=job["passphrase"].encode())
    data = open(job["pdf"], "rb").read()
    style = TextStampStyle(stamp_text=STAMP_TEXT,
                           text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(NOTO_SERIF), font_size=9))
    lta = job["level"] == "B-LTA"
    timestamper = timestamps.HTTPTimeStamper(job["tsa_url"]) if lta else None

    def sign_once() -> None:
        meta = signers.PdfSignatureMetadata(
            field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES, reason="Phê duyệt",
            embed_validation_info=lta, use_pades_lta=lta,
            validation_context=ValidationContext(trust_roots=[_load_cert(job["trust_root"])], allow_fetching=True)
            if lta else None)
        pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=timestamper, stamp_style=style,
                                       new_field_spec=fields.SigFieldSpec("Signature1", on_page=0,
                                                                          box=(350, 60, 560, 140)))
        pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(data)), output=io.BytesIO())

    sign_once()  # warm: imports, font parsing, the TSA/OCSP connections
    latencies = []
    for _ in range(job["n"]):
        start = time.perf_counter()
        sign_once()
        latencies.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"latencies_ms": latencies}))


if __name__ == "__main__":
    main()
