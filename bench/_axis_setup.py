"""The set-up the interlink-axis benchmarks share (none of it timed): two agencies on one dev PKI
talking to a hub, and one-page Decree 30 PDFs sealed by agency A."""

from __future__ import annotations

import os
from pathlib import Path


def agencies(tmp: Path, hub, b_url: str | None = None):
    """Runtimes of A (the province's Sở TT&TT) and B (the Government Office) with migrated databases:
    SQLite each, or B on ``b_url``."""
    from docsvc.db import migrate
    from docsvc.organisations import service as orgs
    from docsvc.organisations.schemas import OrganisationCreate
    from docsvc.pki.service import ensure_dev_pki
    from docsvc.principal import SERVICE_ACTOR
    from docsvc.runtime import Runtime
    from docsvc.settings import Settings
    from tests.support.axis_hub import DEPARTMENT, GOVERNMENT

    runtimes = []
    for name, organ_id, org_name, url in (("a", DEPARTMENT, "Sở Thông tin và Truyền thông", None),
                                          ("b", GOVERNMENT, "Văn phòng Chính phủ", b_url)):
        settings = Settings(environment="test", data_dir=tmp / name, broker_url="memory://", database_url=url,
                            secret_key="bench-secret-key-that-is-long-enough-0123456789",
                            signing={"pki_dir": tmp / "pki", "fetch_revocation": False},
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


def sealed_pdf(rt, work: Path, number: int = 1) -> Path:
    """A one-page Decree 30 PDF numbered ``number`` (its text says so too) sealed (PAdES B-T) by
    organisation A: every number gives different bytes."""
    from sqlalchemy import select

    from docsvc.organisations.models import Organisation
    from docsvc.pdfgen import AdministrativeDocument, render_document
    from docsvc.pki.images import cached_png
    from docsvc.principal import SERVICE_ACTOR
    from docsvc.signatures import keys_service
    from docsvc.signatures.service import _sign_file
    from docsvc.signatures.specs import build_spec

    src = work / f"plain-{number}.pdf"
    src.write_bytes(render_document(AdministrativeDocument(
        agency="Sở Thông tin và Truyền thông", parent_agency="UBND tỉnh Nghệ An",
        number_symbol=f"{number}/KH-STTTT", place_date="Nghệ An, ngày 05 tháng 3 năm 2026", title="Kế hoạch",
        subject="Chuyển đổi số", paragraphs=[f"Nội dung của kế hoạch số {number} ({os.urandom(8).hex()})."],
        signer_position="GIÁM ĐỐC", signer_name="Nguyễn Văn An", recipients=["Lưu: VT"])))
    with rt.sessions() as session:
        org = session.scalar(select(Organisation))
        key = keys_service.ensure_seal(session, rt.settings, SERVICE_ACTOR, org)
        session.commit()
        backend = keys_service.open_seal(rt.settings, org, key)
    image = cached_png(rt.settings.pki_path / "images", "seal", org.name)
    spec = build_spec(src, profile="organisation", level="B-T", certificate=backend.certificate, image_path=image,
                      reason="Ban hành")
    _sign_file(rt.settings, src, work / f"sealed-{number}.pdf", backend, spec)
    src.unlink()
    return work / f"sealed-{number}.pdf"
