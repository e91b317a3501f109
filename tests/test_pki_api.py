"""The development PKI served by docsvc itself: TSA, OCSP (POST and GET), CRLs, CA certificates."""

from __future__ import annotations

import base64
import hashlib
import os

from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from docsvc.pki.service import open_dev_pki
from tests.support.signing import shared_pki_dir, signing_client  # noqa: F401 - fixtures


def test_ca_certificates_and_crls(signing_client):  # noqa: F811
    root = signing_client.get("/pki/root-ca.crt")
    issuing = signing_client.get("/pki/issuing-ca.crt")
    assert root.headers["content-type"] == issuing.headers["content-type"] == "application/pkix-cert"
    root_cert = x509.load_der_x509_certificate(root.content)
    issuing_cert = x509.load_der_x509_certificate(issuing.content)
    assert issuing_cert.issuer == root_cert.subject
    for path, issuer in (("/pki/crl", issuing_cert), ("/pki/root-ca.crl", root_cert)):
        response = signing_client.get(path)
        assert response.headers["content-type"] == "application/pkix-crl"
        crl = x509.load_der_x509_crl(response.content)
        assert crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())


def test_timestamp_over_http(signing_client):  # noqa: F811
    digest = hashlib.sha256(b"van ban").digest()
    request = tsp.TimeStampReq({"version": 1, "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                                                                   "hashed_message": digest},
                                "nonce": int.from_bytes(os.urandom(8), "big"), "cert_req": True})
    response = signing_client.post("/pki/tsa", content=request.dump(),
                                   headers={"Content-Type": "application/timestamp-query"})
    assert response.headers["content-type"] == "application/timestamp-reply"
    reply = tsp.TimeStampResp.load(response.content)
    assert reply["status"]["status"].native == "granted"
    info = reply["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == digest
    assert info["nonce"].native == request["nonce"].native


def test_ocsp_post_and_get_see_a_revocation(signing_client):  # noqa: F811
    pki = open_dev_pki(signing_client.runtime.settings)
    issued = pki.issue_personal("Phạm Văn Tú", "001180000321", "Sở Tư pháp")
    der = ocsp.OCSPRequestBuilder().add_certificate(issued.certificate, pki.issuing.cert, hashes.SHA1()).build() \
        .public_bytes(serialization.Encoding.DER)
    good = signing_client.post("/pki/ocsp", content=der, headers={"Content-Type": "application/ocsp-request"})
    assert good.headers["content-type"] == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(good.content).certificate_status == ocsp.OCSPCertStatus.GOOD
    pki.revoke(issued.serial)
    encoded = base64.b64encode(der).decode().replace("/", "%2F").replace("+", "%2B").replace("=", "%3D")
    revoked = signing_client.get(f"/pki/ocsp/{encoded}")
    assert ocsp.load_der_ocsp_response(revoked.content).certificate_status == ocsp.OCSPCertStatus.REVOKED
    garbage = signing_client.post("/pki/ocsp", content=b"not ocsp")
    assert ocsp.load_der_ocsp_response(garbage.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_oversized_request_is_refused(signing_client):  # noqa: F811
    response = signing_client.post("/pki/tsa", content=b"x" * (64 * 1024 + 1))
    assert (response.status_code, response.json()["error"]["code"]) == (413, "payload_too_large")
