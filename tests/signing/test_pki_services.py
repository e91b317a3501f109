"""TSA, OCSP and CRL services, checked with openssl and pyHanko's certificate validator."""

from __future__ import annotations

import asyncio
import subprocess
import urllib.request
from datetime import timedelta

import pytest
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError

from signing.devpki import DEV_TSA_POLICY_OID, DevPki, utcnow
from signing.pki_services import OcspResponder, TimestampAuthority, crl_der
from tests.support.pki_server import PkiHttpServer

ORG = "Sở Nội vụ tỉnh Hà Tĩnh"


@pytest.fixture(scope="module")
def server() -> PkiHttpServer:
    return PkiHttpServer()


@pytest.fixture(scope="module")
def pki(tmp_path_factory, server) -> DevPki:
    return DevPki.init(tmp_path_factory.mktemp("svc") / "pki", base_url=server.base_url)


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=False, cwd=cwd)


def issue(pki, pid="001203000001"):
    return pki.issue_personal("Võ Thị Ánh", pid, ORG)


def test_tsa_response_verifies_with_openssl(pki, tmp_path):
    (tmp_path / "data.txt").write_text("văn bản")
    assert run("openssl", "ts", "-query", "-data", "data.txt", "-sha256", "-cert", "-out", "req.tsq", cwd=tmp_path).returncode == 0
    (tmp_path / "resp.tsr").write_bytes(TimestampAuthority(pki).respond((tmp_path / "req.tsq").read_bytes()))
    chain = tmp_path / "chain.pem"
    chain.write_bytes((pki.directory / "tsa.pem").read_bytes() + (pki.directory / "issuing-ca.pem").read_bytes())
    result = run("openssl", "ts", "-verify", "-in", "resp.tsr", "-queryfile", "req.tsq",
                 "-CAfile", str(pki.directory / "root-ca.pem"), "-untrusted", str(chain), cwd=tmp_path)
    assert "Verification: OK" in result.stdout, result.stderr
    text = run("openssl", "ts", "-reply", "-in", "resp.tsr", "-text", cwd=tmp_path).stdout
    assert "Granted" in text and DEV_TSA_POLICY_OID in text


def test_tsa_token_echoes_nonce_and_carries_ess_cert_id_v2(pki):
    imprint = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x01" * 32}
    request = tsp.TimeStampReq({"version": "v1", "message_imprint": imprint, "nonce": 424242, "cert_req": True})
    response = tsp.TimeStampResp.load(TimestampAuthority(pki).respond(request.dump()))
    signed = response["time_stamp_token"]["content"]
    info = signed["encap_content_info"]["content"].parsed
    assert info["nonce"].native == 424242
    attrs = {a["type"].native for a in signed["signer_infos"][0]["signed_attrs"]}
    assert "signing_certificate_v2" in attrs


def test_tsa_clock_override(pki):
    past = utcnow() - timedelta(days=40)
    imprint = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x02" * 32}
    request = tsp.TimeStampReq({"version": "v1", "message_imprint": imprint})
    response = tsp.TimeStampResp.load(TimestampAuthority(pki, clock=lambda: past).respond(request.dump()))
    gen_time = response["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed["gen_time"].native
    assert abs(gen_time - past) < timedelta(seconds=1)


@pytest.mark.parametrize(
    "request_der, failure",
    [
        (b"garbage", "bad_data_format"),
        (tsp.TimeStampReq({"version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": "sha1"}, "hashed_message": b"\0" * 20}}).dump(), "bad_alg"),
        (tsp.TimeStampReq({"version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\0" * 5}}).dump(), "bad_data_format"),
    ],
)
def test_tsa_rejects_bad_requests_with_a_response(pki, tmp_path, request_der, failure):
    der = TimestampAuthority(pki).respond(request_der)
    (tmp_path / "bad.tsr").write_bytes(der)
    assert "Rejected" in run("openssl", "ts", "-reply", "-in", str(tmp_path / "bad.tsr"), "-text").stdout
    status = tsp.PKIStatusInfo.load(der[2:] if der[1] < 0x80 else der[3:])
    assert status["status"].native == "rejection" and failure in status["fail_info"].native


def ocsp_check(pki, leaf_pem, tmp_path, responder) -> str:
    d = pki.directory
    assert run("openssl", "ocsp", "-issuer", str(d / "issuing-ca.pem"), "-cert", str(leaf_pem), "-reqout", str(tmp_path / "req.der")).returncode == 0
    (tmp_path / "resp.der").write_bytes(responder.respond((tmp_path / "req.der").read_bytes()))
    nonce = run("openssl", "ocsp", "-respin", str(tmp_path / "resp.der"), "-reqin", str(tmp_path / "req.der"),
                "-CAfile", str(d / "root-ca.pem"), "-VAfile", str(d / "ocsp.pem"))
    assert "Response verify OK" in nonce.stderr + nonce.stdout  # signature and nonce echo
    status = run("openssl", "ocsp", "-respin", str(tmp_path / "resp.der"), "-issuer", str(d / "issuing-ca.pem"),
                 "-cert", str(leaf_pem), "-no_nonce", "-CAfile", str(d / "root-ca.pem"), "-verify_other", str(d / "issuing-ca.pem"))
    assert "Response verify OK" in status.stderr + status.stdout
    return status.stdout


def test_ocsp_good_then_revoked_with_openssl(pki, tmp_path):
    leaf = issue(pki, "001203000002")
    responder = OcspResponder(pki)
    assert f"{leaf.cert_pem_path}: good" in ocsp_check(pki, leaf.cert_pem_path, tmp_path, responder)
    pki.revoke(leaf.serial, reason="key_compromise")
    out = ocsp_check(pki, leaf.cert_pem_path, tmp_path, responder)
    assert f"{leaf.cert_pem_path}: revoked" in out and "keyCompromise" in out
    before = OcspResponder(pki, clock=lambda: utcnow() - timedelta(hours=1))
    assert ": good" in ocsp_check(pki, leaf.cert_pem_path, tmp_path, before)


def test_ocsp_malformed_request(pki, tmp_path):
    (tmp_path / "bad.der").write_bytes(OcspResponder(pki).respond(b"xx"))
    out = run("openssl", "ocsp", "-respin", str(tmp_path / "bad.der"), "-resp_text", "-noverify")
    assert "malformedrequest" in (out.stdout + out.stderr)


def test_crl_verifies_lists_revoked_and_numbers_increase(pki, tmp_path):
    leaf = issue(pki, "001203000003")
    first = crl_der(pki)
    assert crl_der(pki) == first  # unchanged: the cached CRL is served
    pki.revoke(leaf.serial)
    (tmp_path / "crl.der").write_bytes(crl_der(pki))
    out = run("openssl", "crl", "-inform", "DER", "-in", str(tmp_path / "crl.der"), "-CAfile",
              str(pki.directory / "issuing-ca.pem"), "-noout", "-text")
    assert "verify OK" in out.stderr + out.stdout
    assert format(leaf.serial, "X") in out.stdout.replace(":", "")
    numbers = [x509.load_der_x509_crl(c).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
               for c in (first, (tmp_path / "crl.der").read_bytes())]
    assert numbers[1] > numbers[0]
    (tmp_path / "root.crl").write_bytes(crl_der(pki, authority="root"))
    root = run("openssl", "crl", "-inform", "DER", "-in", str(tmp_path / "root.crl"), "-CAfile", str(pki.directory / "root-ca.pem"), "-noout")
    assert "verify OK" in root.stderr + root.stdout


def validate(pki, leaf, **vc_args):
    vc = ValidationContext(trust_roots=[pki.trust_root], revocation_mode="require", **vc_args)
    material = leaf.signer_material()
    validator = CertificateValidator(material.signing_cert, intermediate_certs=[material.chain[0]], validation_context=vc)
    return asyncio.run(validator.async_validate_usage({"digital_signature"}))


def test_certvalidator_with_crls_and_ocsp_fed_directly(pki):
    good, bad = issue(pki, "001203000004"), issue(pki, "001203000005")
    pki.revoke(bad.serial)
    crls = [crl_der(pki), crl_der(pki, authority="root")]
    validate(pki, good, crls=crls)
    with pytest.raises(RevokedError):
        validate(pki, bad, crls=crls)
    responder = OcspResponder(pki)

    def ocsp_for(leaf):
        req = ocsp.OCSPRequestBuilder().add_certificate(leaf.certificate, pki.issuing.cert, hashes.SHA256()).build()
        return responder.respond(req.public_bytes(serialization.Encoding.DER))

    root_crl = [crl_der(pki, authority="root")]
    validate(pki, good, ocsps=[ocsp_for(good)], crls=root_crl)
    with pytest.raises(RevokedError):
        validate(pki, bad, ocsps=[ocsp_for(bad)], crls=root_crl)


def test_http_server_serves_everything_to_fetching_validator(pki, server):
    good, bad = issue(pki, "001203000006"), issue(pki, "001203000007")
    pki.revoke(bad.serial)
    with server.serving(pki) as base_url:
        with urllib.request.urlopen(f"{base_url}/pki/root-ca.crt") as reply:
            assert reply.read() == (pki.directory / "root-ca.crt").read_bytes()
        validate(pki, good, allow_fetching=True)
        with pytest.raises(RevokedError):
            validate(pki, bad, allow_fetching=True)
    assert "/pki/ocsp" in server.hits or "/pki/crl" in server.hits
