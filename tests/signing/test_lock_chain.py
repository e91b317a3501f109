"""A chain of signatures on one document (the specialist's initials → the leader's signature → the
organisation's seal) where the LAST one locks the document: every signature stays valid, a change
after the lock is reported against the locking signature, and B-LT/B-LTA updates stay allowed.

Real keys from the development PKI with its TSA and OCSP responder on loopback; checked by our
validator and by poppler's pdfsig."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.signers import PdfTimeStamper

from signing.errors import SigningError
from signing.images import seal_png, signature_png
from signing.interfaces import SignatureSpec
from signing.keys import FileKeyBackend
from signing.pades import DocumentLockedError, finish_signature, prepare_signature, sign_pdf
from signing.profiles import ProfileError, ProfileRequest, signature_spec
from signing.trust import TrustServices, dev_trust
from signing.validation import validate_pdf
from tests.signing.conftest import run_pdfsig
from tests.support.pdfs import append_content_change, vietnamese_pdf

ORG = "Sở Thông tin và Truyền thông tỉnh Nghệ An"
SPECIALIST = "Lê Thị Hoa"
LEADER = "Nguyễn Văn An"  # the signer named on vietnamese_pdf(): the personal profile anchors on it
INITIALS_BOX = (60.0, 150.0, 210.0, 200.0)  # by the "Nơi nhận" block, clear of the leader's box


@pytest.fixture(scope="module")
def trust(dev_pki, dev_pki_served, tmp_path_factory) -> TrustServices:
    return TrustServices(dev_trust(dev_pki, tmp_path_factory.mktemp("lock-revinfo")))


def _backend(issued) -> FileKeyBackend:
    return FileKeyBackend(issued.private_key, issued.certificate, issued.chain)


@pytest.fixture(scope="module")
def people(dev_pki, tmp_path_factory):
    """The specialist, the leader and the organisation's seal key, with their images."""
    images = tmp_path_factory.mktemp("lock-images")
    for name, data in (("specialist", signature_png(SPECIALIST)), ("leader", signature_png(LEADER)),
                       ("seal", seal_png(ORG))):
        (images / f"{name}.png").write_bytes(data)
    return {
        "specialist": (_backend(dev_pki.issue_personal(SPECIALIST, "001203009101", ORG, key_type="p256")),
                       str(images / "specialist.png")),
        "leader": (_backend(dev_pki.issue_personal(LEADER, "001203009102", ORG, key_type="p256")),
                   str(images / "leader.png")),
        "seal": (_backend(dev_pki.issue_seal(ORG, "000.00.00.H41", key_type="p256")), str(images / "seal.png")),
    }


def _sign(src: Path, out: Path, key, request: ProfileRequest, trust: TrustServices) -> SignatureSpec:
    spec = signature_spec(src, request, key.certificate)
    long_term = request.level in ("B-LT", "B-LTA")
    sign_pdf(src, out, key, spec, timestamper=trust.timestamper(),
             validation_context=trust.signing_validation_context() if long_term else None)
    return spec


def _chain(tmp_path: Path, people, trust: TrustServices, seal_level: str = "B-T") -> Path:
    """initials (personal, explicit box) → leader (personal, on the name) → seal with lock."""
    src = tmp_path / "van-ban.pdf"
    src.write_bytes(vietnamese_pdf())
    initials, leader, sealed = tmp_path / "1-nhay.pdf", tmp_path / "2-lanh-dao.pdf", tmp_path / "3-dau.pdf"
    key, image = people["specialist"]
    _sign(src, initials, key, ProfileRequest("personal", level="B-T", image_path=image, box=INITIALS_BOX,
                                             show_details=False, reason="Ký nháy"), trust)
    key, image = people["leader"]
    _sign(initials, leader, key, ProfileRequest("personal", level="B-T", image_path=image, reason="Phê duyệt"),
          trust)
    key, image = people["seal"]
    spec = _sign(leader, sealed, key, ProfileRequest("organisation", level=seal_level, image_path=image,
                                                     lock_document=True, reason="Ban hành"), trust)
    assert spec.lock
    return sealed


def _by_field(report) -> dict:
    return {s.field_name: s for s in report.signatures}


def _pdfsig_valid(path: Path, dev_nss: str, count: int) -> None:
    report = run_pdfsig(path, dev_nss)
    assert report.count("Signature is Valid.") == count, report
    assert report.count("Certificate is Trusted.") == count, report


def test_three_signatures_the_seal_locks_and_all_stay_valid(tmp_path, people, trust, dev_nss):
    sealed = _chain(tmp_path, people, trust)

    report = validate_pdf(sealed, trust=trust)
    assert [s.indication for s in report.signatures] == ["TOTAL-PASSED"] * 3, report.to_dict()
    sigs = _by_field(report)
    assert set(sigs) == {"PersonalSignature1", "PersonalSignature2", "OrganisationSignature1"}
    assert [sigs[f"PersonalSignature{i}"].signer.name for i in (1, 2)] == [SPECIALIST, LEADER]
    # The earlier signatures saw only permitted changes (the later signatures) ...
    for name in ("PersonalSignature1", "PersonalSignature2"):
        assert sigs[name].modifications_permitted is True and sigs[name].docmdp_permission is None
    # ... and the seal is the one that forbids any further change.
    seal = sigs["OrganisationSignature1"]
    assert (seal.docmdp_permission, seal.coverage, seal.pades_level) == ("NO_CHANGES", "ENTIRE_FILE", "B-T")
    _pdfsig_valid(sealed, dev_nss, 3)
    # What other readers (Acrobat, pdfsig's successors) act on: the field's lock dictionary.
    reader = PdfFileReader(io.BytesIO(sealed.read_bytes()), strict=False)
    field = next(s for s in reader.embedded_signatures if s.field_name == "OrganisationSignature1").sig_field
    lock = field["/Lock"]
    assert (lock["/Action"], int(lock["/P"])) == ("/All", 1)


def test_signing_a_locked_document_is_refused(tmp_path, people, trust):
    sealed = _chain(tmp_path, people, trust)
    key, image = people["leader"]
    with pytest.raises(DocumentLockedError) as err:
        sign_pdf(sealed, tmp_path / "again.pdf", key, SignatureSpec(level="B-B"))
    assert err.value.code == "document_locked" and err.value.field_name == "OrganisationSignature1"
    assert "OrganisationSignature1" in str(err.value)
    with pytest.raises(DocumentLockedError):  # the two-phase path too
        prepare_signature(sealed, key.certificate, list(key.chain), SignatureSpec(level="B-T"),
                          timestamper=trust.timestamper())
    with pytest.raises(ProfileError) as perr:
        signature_spec(sealed, ProfileRequest("personal", image_path=image), key.certificate)
    assert perr.value.code == "document_locked"
    assert not (tmp_path / "again.pdf").exists()


def test_a_signature_forced_in_after_the_lock_is_flagged(tmp_path, people, trust):
    sealed = _chain(tmp_path, people, trust)
    # Another tool that ignores the lock (plain pyHanko) adds a signature anyway.
    key, _ = people["leader"]
    out = io.BytesIO()
    signers.PdfSigner(signers.PdfSignatureMetadata(field_name="Forced"), key.signer()).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(sealed.read_bytes()), strict=False), output=out)
    forced = tmp_path / "forced.pdf"
    forced.write_bytes(out.getvalue())

    report = validate_pdf(forced, trust=trust)
    assert report.indication != "TOTAL-PASSED"
    sigs = _by_field(report)
    seal = sigs["OrganisationSignature1"]
    assert seal.intact and seal.valid and seal.indication != "TOTAL-PASSED"
    assert seal.modifications_permitted is False and seal.modification_level == "OTHER"
    assert "locked" in seal.suspicious_modification
    # The lock binds only later changes: the signatures before it are untouched.
    assert sigs["PersonalSignature1"].indication == sigs["PersonalSignature2"].indication == "TOTAL-PASSED"


def test_a_page_content_change_after_the_lock_is_flagged(tmp_path, people, trust):
    sealed = _chain(tmp_path, people, trust)
    changed = tmp_path / "changed.pdf"
    shutil.copy(sealed, changed)
    append_content_change(changed)

    seal = _by_field(validate_pdf(changed, trust=trust))["OrganisationSignature1"]
    assert seal.intact and seal.valid and seal.indication != "TOTAL-PASSED"
    assert seal.modifications_permitted is False and seal.modification_level == "OTHER"
    assert seal.suspicious_modification


def test_b_lta_after_the_lock_stays_valid(tmp_path, people, trust, dev_nss, dev_pki):
    sealed = _chain(tmp_path, people, trust, seal_level="B-LTA")

    report = validate_pdf(sealed, trust=trust)
    assert report.indication == "TOTAL-PASSED", report.to_dict()
    seal = _by_field(report)["OrganisationSignature1"]
    assert (seal.pades_level, seal.docmdp_permission, seal.coverage) == ("B-LTA", "NO_CHANGES", "ENTIRE_REVISION")
    assert seal.modifications_permitted is True and seal.modification_level == "LTA_UPDATES"
    assert [s.kind for s in report.signatures][-1] == "document-timestamp"
    _pdfsig_valid(sealed, dev_nss, 3)  # pdfsig lists the document timestamp but cannot verify that kind

    # Years later: the archive renews the timestamp chain (new DSS data + a new document timestamp).
    renewed = tmp_path / "renewed.pdf"
    with sealed.open("rb") as fh:
        out = io.BytesIO()
        vc = trust.signing_validation_context()
        PdfTimeStamper(trust.timestamper()).update_archival_timestamp_chain(
            PdfFileReader(fh, strict=False), vc, in_place=False, output=out)
    renewed.write_bytes(out.getvalue())
    report = validate_pdf(renewed, trust=trust)
    assert report.indication == "TOTAL-PASSED", report.to_dict()
    assert [s.kind for s in report.signatures][-2:] == ["document-timestamp", "document-timestamp"]
    assert _by_field(report)["OrganisationSignature1"].modification_level == "LTA_UPDATES"


def test_two_phase_signature_can_lock(tmp_path, people, trust):
    src = tmp_path / "van-ban.pdf"
    src.write_bytes(vietnamese_pdf())
    key, _ = people["seal"]
    prepared = prepare_signature(src, key.certificate, list(key.chain), SignatureSpec(level="B-LT", lock=True),
                                 timestamper=trust.timestamper())
    out = tmp_path / "locked.pdf"
    finish_signature(prepared, key.sign_digest(prepared.to_be_signed_digest, prepared.digest_algorithm), out,
                     timestamper=trust.timestamper(), validation_context=trust.signing_validation_context())

    sig = validate_pdf(out, trust=trust).signatures[0]
    assert (sig.indication, sig.pades_level, sig.docmdp_permission) == ("TOTAL-PASSED", "B-LT", "NO_CHANGES")
    with pytest.raises(DocumentLockedError):
        sign_pdf(out, tmp_path / "again.pdf", key, SignatureSpec())


def test_lock_on_an_existing_empty_field(tmp_path, people, trust):
    from pyhanko.sign import fields

    src = tmp_path / "form.pdf"
    writer = IncrementalPdfFileWriter(io.BytesIO(vietnamese_pdf()), strict=False)
    fields.append_signature_field(writer, fields.SigFieldSpec("DauCoQuan", box=(300, 60, 413, 173)))
    buffer = io.BytesIO()
    writer.write(buffer)
    src.write_bytes(buffer.getvalue())
    key, _ = people["seal"]
    out = tmp_path / "locked.pdf"
    sign_pdf(src, out, key, SignatureSpec(field_name="DauCoQuan", lock=True))
    sig = validate_pdf(out, trust=trust).signatures[0]
    assert (sig.field_name, sig.indication, sig.docmdp_permission) == ("DauCoQuan", "TOTAL-PASSED", "NO_CHANGES")
    with pytest.raises(DocumentLockedError):
        sign_pdf(out, tmp_path / "again.pdf", key, SignatureSpec())


def test_a_lock_contradicting_the_certification_is_refused(tmp_path, people, trust):
    src = tmp_path / "van-ban.pdf"
    src.write_bytes(vietnamese_pdf())
    key, image = people["leader"]
    with pytest.raises(SigningError, match="no_changes"):
        sign_pdf(src, tmp_path / "x.pdf", key, SignatureSpec(certify=True, docmdp_permission="fill_forms", lock=True))
    assert not (tmp_path / "x.pdf").exists()
    with pytest.raises(ProfileError) as err:
        signature_spec(src, ProfileRequest("personal", image_path=image, certify=True, lock_document=True),
                       key.certificate)
    assert err.value.code == "invalid_request"
    # Certifying with "no changes" and locking agree: the first and only signature locks.
    out = tmp_path / "certified.pdf"
    sign_pdf(src, out, key, SignatureSpec(certify=True, docmdp_permission="no_changes", lock=True))
    sig = validate_pdf(out, trust=trust).signatures[0]
    assert (sig.kind, sig.indication, sig.docmdp_permission) == ("certification", "TOTAL-PASSED", "NO_CHANGES")
    with pytest.raises(DocumentLockedError):
        sign_pdf(out, tmp_path / "again.pdf", key, SignatureSpec())


def test_the_locking_seal_is_reported_as_an_approval_signature(tmp_path, people, trust):
    sealed = _chain(tmp_path, people, trust)
    assert _by_field(validate_pdf(sealed, trust=trust))["OrganisationSignature1"].kind == "signature"
