"""Interlink-axis throughput, end to end: packages/s from an issued document in agency A to a
registered incoming document in agency B (build the edXML, sign it with A's seal, send it to a real
``docsvc axis-hub`` process, list and get it as B, parse it, verify the XML signature and the PAdES
seal of the PDF, store the attachments, register with an arrival number, queue 01/03, ack), for
one-page documents and for documents carrying a 5 MB attachment. Side by side with the raw limit:
the same hub's send + list + get + ack of pre-built packages of the same size, nothing else.

Usage: ``.venv/bin/python bench/axis.py [--small 100] [--large 5] [--repeats 3]``. Both agencies
run in this process on SQLite (one database each), sequentially, on loopback."""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import format_table, median  # noqa: E402

MiB = 1024 * 1024


def _agencies(tmp: Path, hub):
    """Two runtimes (A = the province's Sở TT&TT, B = the Government Office) with migrated databases."""
    from docsvc.db import migrate
    from docsvc.organisations import service as orgs
    from docsvc.organisations.schemas import OrganisationCreate
    from docsvc.pki.service import ensure_dev_pki
    from docsvc.principal import SERVICE_ACTOR
    from docsvc.runtime import Runtime
    from docsvc.settings import Settings
    from tests.support.axis_hub import DEPARTMENT, GOVERNMENT

    pki_dir = tmp / "pki"
    runtimes = []
    for name, organ_id, org_name in (("a", DEPARTMENT, "Sở Thông tin và Truyền thông"),
                                     ("b", GOVERNMENT, "Văn phòng Chính phủ")):
        settings = Settings(environment="test", data_dir=tmp / name, broker_url="memory://",
                            secret_key="bench-secret-key-that-is-long-enough-0123456789",
                            signing={"pki_dir": pki_dir, "fetch_revocation": False},
                            axis={"endpoint": hub.url, "credentials": {organ_id: hub.secrets[organ_id]}})
        (tmp / name).mkdir(parents=True)
        ensure_dev_pki(settings)
        rt = Runtime(settings)
        migrate.upgrade(rt.engine)
        with rt.sessions() as session:
            orgs.create(session, SERVICE_ACTOR, OrganisationCreate(organ_id=organ_id, name=org_name,
                                                                   short_name="STTTT", level="province"))
        runtimes.append(rt)
    return runtimes


def _sealed_pdf(rt, work: Path) -> Path:
    """A one-page Decree 30 PDF sealed (PAdES B-T) by organisation A."""
    from sqlalchemy import select

    from docsvc.organisations.models import Organisation
    from docsvc.pdfgen import AdministrativeDocument, render_document
    from docsvc.pki.images import cached_png
    from docsvc.principal import SERVICE_ACTOR
    from docsvc.signatures import keys_service
    from docsvc.signatures.service import _sign_file
    from docsvc.signatures.specs import build_spec

    src = work / "plain.pdf"
    src.write_bytes(render_document(AdministrativeDocument(
        agency="Sở Thông tin và Truyền thông", parent_agency="UBND tỉnh Nghệ An", number_symbol="1/KH-STTTT",
        place_date="Nghệ An, ngày 05 tháng 3 năm 2026", title="Kế hoạch", subject="Chuyển đổi số",
        paragraphs=["Nội dung."], signer_position="GIÁM ĐỐC", signer_name="Nguyễn Văn An", recipients=["Lưu: VT"])))
    with rt.sessions() as session:
        org = session.scalar(select(Organisation))
        key = keys_service.ensure_seal(session, rt.settings, SERVICE_ACTOR, org)
        session.commit()
        backend = keys_service.open_seal(rt.settings, org, key)
    image = cached_png(rt.settings.pki_path / "images", "seal", org.name)
    spec = build_spec(src, profile="organisation", level="B-T", certificate=backend.certificate, image_path=image,
                      reason="Ban hành")
    _sign_file(rt.settings, src, work / "sealed.pdf", backend, spec)
    return work / "sealed.pdf"


def _issued_documents(rt, count: int, start: int, pdf: Path, extra_bytes: int) -> list[int]:
    """``count`` issued documents of A addressed to B, each with its exchange queued (not timed)."""
    from sqlalchemy import select

    from docsvc.axis import service as axis_service
    from docsvc.documents.models import Document, DocumentFile
    from docsvc.organisations.models import Organisation
    from docsvc.principal import SERVICE_ACTOR
    from tests.support.axis_hub import GOVERNMENT

    with pdf.open("rb") as handle:
        stored_pdf = rt.store.put(iter(lambda: handle.read(MiB), b""), content_type="application/pdf")
    stored_extra = None
    if extra_bytes:
        stored_extra = rt.store.put(iter([os.urandom(extra_bytes)]), content_type="application/zip")
    ids = []
    with rt.sessions() as session:
        org = session.scalar(select(Organisation))
        for number in range(start, start + count):
            doc = Document(organisation_id=org.id, direction="outgoing", doc_type="ke_hoach", status="issued",
                           year=2026, number=number, symbol="KH-STTTT", issuer=org.organ_id,
                           issued_date=date(2026, 3, 5), subject=f"Kế hoạch số {number}",
                           recipients=[f"{GOVERNMENT} - Văn phòng Chính phủ"])
            session.add(doc)
            session.flush()
            files = [("version", 1, "ke-hoach.pdf", "application/pdf", stored_pdf)]
            if stored_extra:
                files.append(("attachment", 1, "phu-luc.zip", "application/zip", stored_extra))
            for kind, seq, name, ctype, obj in files:
                session.add(DocumentFile(document_id=doc.id, kind=kind, seq=seq, filename=name, content_type=ctype,
                                         size=obj.size, sha256=obj.sha256, object_key=obj.key))
            ids += [e.id for e in axis_service.queue_outgoing(session, rt.settings, SERVICE_ACTOR, doc)]
        session.commit()
    return ids


def _end_to_end(a, b, exchange_ids: list[int]) -> float:
    """Seconds to deliver and register every exchange (sequential: one send, then B's poll rounds)."""
    from docsvc.axis import delivery, intake
    from docsvc.axis.models import AxisExchange

    started = time.perf_counter()
    for exchange_id in exchange_ids:
        state = delivery.attempt(a.sessions, a.settings, a.store, AxisExchange, exchange_id)
        assert state == "sent", state
    registered = 0
    while registered < len(exchange_ids):
        counts = intake.poll(b, limit=1000)
        assert set(counts) <= {"registered"}, counts
        registered += counts.get("registered", 0)
    return time.perf_counter() - started


def _raw(hub, count: int, tag: str, size: int, work: Path) -> float:
    """Hub send + list + get + ack of pre-built packages of about ``size`` bytes (the transport limit)."""
    from inter_axis.transport import new_idempotency_key
    from tests.support.axis_hub import DEPARTMENT, GOVERNMENT, document_package

    packages = [document_package(work / f"raw-{tag}-{i}.edxml", sender=DEPARTMENT, recipients=(GOVERNMENT,),
                                 document_id=f"{DEPARTMENT},2026/03/05,{i}/RAW-{tag}", attachment_bytes=size)
                for i in range(count)]
    sender, receiver = hub.client(DEPARTMENT), hub.client(GOVERNMENT)
    started = time.perf_counter()
    for path in packages:
        sender.send(path, idempotency_key=new_idempotency_key())
    for ref in receiver.list_received(limit=1000):
        receiver.get(ref.message_id, io.BytesIO())
        receiver.ack(ref.message_id)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=100, help="one-page packages per run")
    parser.add_argument("--large", type=int, default=5, help="packages with a 5 MB attachment per run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from tests.support.axis_hub import new_hub

    with tempfile.TemporaryDirectory(prefix="bench-axis-") as directory:
        tmp = Path(directory)
        hub = new_hub(tmp / "hub", max_package_bytes=64 * MiB).start()
        try:
            a, b = _agencies(tmp / "agencies", hub)
            pdf = _sealed_pdf(a, tmp)
            rows, number = [], 1
            for label, count, extra in (("1-page", args.small, 0), ("5 MB attachment", args.large, 5 * MiB)):
                ours, raw = [], []
                for repeat in range(args.repeats):
                    ids = _issued_documents(a, count, number, pdf, extra)
                    number += count
                    ours.append(count / _end_to_end(a, b, ids))
                    raw.append(count / _raw(hub, count, f"{label[:1]}{repeat}", max(extra, pdf.stat().st_size), tmp))
                rows.append([label, str(count), f"{median(ours):.1f}", f"{median(raw):.1f}",
                             f"{median(ours) / median(raw):.2f}"])
            print(format_table(["package", "n/run", "end-to-end pkg/s (median)", "hub send+get pkg/s (median)",
                                "ratio"], rows))
            print("target: >= 100 one-page packages/s end to end")
        finally:
            hub.stop()


if __name__ == "__main__":
    main()
