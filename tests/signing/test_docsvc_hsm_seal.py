"""docsvc issuing with the organisation's seal on an HSM (SoftHSM2 here): the key never leaves the
token, the database keeps only the certificate, and a missing key refuses cleanly."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy import select

from docsvc.app import create_app
from docsvc.documents.models import Document
from docsvc.pki.service import open_dev_pki
from docsvc.pki.trust import other_certs, trust_roots
from docsvc.signatures.models import SigningKey
from signing.validation import validate_pdf
from tests.conftest import make_settings
from tests.signing.conftest import SOFTHSM_MODULE
from tests.support.factories import build_province, enrol_totp
from tests.support.signing import (
    BASE_URL,
    PIN,
    enrol_key,
    fresh_otp,
    new_document_with_version,
    shared_pki_dir,  # noqa: F401 - fixture
    version_bytes,
)

DEPARTMENT = "000.00.12.H41"  # build_province's Sở Thông tin và Truyền thông, where the clerk works


def _put_seal_on_token(token, issued) -> None:
    """Import the seal's key and certificate into the token, labelled with the mã định danh, as an
    operator would with the HSM's tools; then the file copy is gone."""
    import pkcs11
    from pkcs11 import Attribute, CertificateType, ObjectClass
    from pkcs11.util.rsa import decode_rsa_private_key

    der = issued.private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption())
    attributes = decode_rsa_private_key(der)
    attributes.update({Attribute.TOKEN: True, Attribute.LABEL: DEPARTMENT, Attribute.ID: b"\x12",
                       Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True})
    cert_der = issued.certificate.public_bytes(serialization.Encoding.DER)
    with pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=token.label).open(rw=True, user_pin=token.pin) as session:
        session.create_object(attributes)
        session.create_object({
            Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True, Attribute.LABEL: DEPARTMENT, Attribute.VALUE: cert_der,
            Attribute.SUBJECT: issued.certificate.subject.public_bytes()})
    issued.key_path.unlink()


@pytest.fixture
def hsm_client(tmp_path, sqlite_url, shared_pki_dir, softhsm_token):  # noqa: F811
    pki_dir = tmp_path / "pki"
    shutil.copytree(shared_pki_dir, pki_dir)
    settings = make_settings(tmp_path, sqlite_url, signing={
        "pki_dir": pki_dir, "public_base_url": BASE_URL, "pkcs11_module": SOFTHSM_MODULE,
        "pkcs11_token_label": softhsm_token.label, "pkcs11_pin": softhsm_token.pin})
    app = create_app(settings, relay_outbox=False)
    try:
        with TestClient(app) as client:
            client.runtime = app.state.runtime
            yield client
    finally:
        from docsvc.axis.transport import forget_seals

        forget_seals()  # close the cached token session: the HSM login ends with it


def test_issue_and_edxml_seal_with_the_key_on_the_hsm(hsm_client, softhsm_token, tmp_path):
    client = hsm_client
    settings = client.runtime.settings
    province = build_province(client)
    clerk = province["clerk"]
    enrol_totp(client, clerk)
    enrol_key(client, clerk)
    doc = new_document_with_version(client, clerk)

    def issue():
        return client.post(f"/documents/{doc}/issue", headers=clerk.headers,
                           json={"pin": PIN, "otp": fresh_otp(client, clerk)})

    # No seal on the token yet: a clear refusal, and the number is not taken.
    refused = issue()
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "signing_unavailable")
    with client.runtime.sessions() as session:
        assert session.get(Document, doc).number is None

    issued = open_dev_pki(settings).issue_seal("Sở Thông tin và Truyền thông", DEPARTMENT)
    _put_seal_on_token(softhsm_token, issued)
    response = issue()
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["document"]["number"] == 1 and body["signature"]["level"] == "B-LTA"

    with client.runtime.sessions() as session:
        key = session.scalar(select(SigningKey).where(SigningKey.kind == "seal"))
        assert (key.protection, key.pkcs12) == ("pkcs11", b"")
        assert key.serial == format(issued.serial, "x")
    report = validate_pdf(version_bytes(client, clerk, doc, body["signature"]["version"]), trust_roots(settings),
                          other_certs=other_certs(settings))
    assert report.indication == "TOTAL-PASSED"
    seal = [s for s in report.signatures if s.kind != "document-timestamp"][-1]
    assert (seal.indication, seal.pades_level) == ("TOTAL-PASSED", "B-LTA")
    assert seal.signer.serial == format(issued.serial, "x")

    # The same HSM seal signs the organisation's edXML packages for the interlink axis, checked by
    # our verifier and by xmlsec1.
    from docsvc.axis.transport import seal_key
    from docsvc.organisations.models import Organisation
    from inter_axis.xmldsig import sign_package_with, verify_package
    from tests.support.axis_hub import document_package

    with client.runtime.sessions() as session:
        org = session.scalar(select(Organisation).where(Organisation.organ_id == DEPARTMENT))
        sealing = seal_key(session, settings, org)
        session.commit()
    package = document_package(tmp_path / "out.edxml", sender=DEPARTMENT, recipients=("000.00.00.G22",))
    signed = tmp_path / "signed.edxml"
    with signed.open("wb") as out:
        sign_package_with(package, out, sealing)
    root_pem = (settings.pki_path / "root-ca.pem").read_bytes()
    check = verify_package(signed, [root_pem])
    assert (check.valid, check.reason) == (True, "valid"), check
    verified = subprocess.run(["xmlsec1", "--verify", "--trusted-pem", str(settings.pki_path / "root-ca.pem"),
                               "--untrusted-pem", str(settings.pki_path / "issuing-ca.pem"), str(signed)],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
