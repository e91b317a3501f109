"""Key backends: one contract run against every backend, plus each backend's own failures."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from signing.errors import KeyUnavailableError
from signing.interfaces import AppearanceSpec, KeyBackend, SignatureSpec
from signing.keys import DigestSigningBackend, FileKeyBackend, Pkcs11KeyBackend
from signing.pades import finish_signature, prepare_signature, sign_pdf
from signing.validation import validate_pdf
from tests.signing.conftest import SOFTHSM_MODULE
from tests.support.pdfs import tiny_pdf

BACKENDS = ["file-rsa", "file-ec", "pem-rsa", "pkcs12-ec", "pkcs11-rsa", "pkcs11-ec", "digest-rsa"]


@pytest.fixture(params=BACKENDS)
def backend(request, pki, softhsm_token, tmp_path) -> KeyBackend:
    kind = request.param
    if kind == "file-rsa":
        yield pki.rsa_signer.backend()
    elif kind == "file-ec":
        yield pki.ec_signer.backend()
    elif kind == "pem-rsa":
        (tmp_path / "k.pem").write_bytes(pki.rsa_signer.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"mat khau")))
        (tmp_path / "c.pem").write_bytes(pki.rsa_signer.cert.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "ca.der").write_bytes(pki.ca.der)
        yield FileKeyBackend.from_pem(tmp_path / "k.pem", tmp_path / "c.pem", [tmp_path / "ca.der"], "mat khau")
    elif kind == "pkcs12-ec":
        yield FileKeyBackend.from_pkcs12(pki.ec_signer.pkcs12(b"p12 pass"), "p12 pass")
    elif kind.startswith("pkcs11"):
        label = "rsa-signer" if kind == "pkcs11-rsa" else "ec-signer"
        with Pkcs11KeyBackend(SOFTHSM_MODULE, softhsm_token.label, softhsm_token.pin, label, cert=label,
                              chain=pki.chain_asn1) as hsm:
            yield hsm
    else:
        yield DigestSigningBackend.wrapping(pki.rsa_signer.backend())


def _verify(cert, digest: bytes, signature: bytes) -> None:
    from cryptography import x509

    public = x509.load_der_x509_certificate(cert.dump()).public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    else:
        public.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


# --- the contract, for every backend ------------------------------------------------------------

def test_contract_sign_digest_verifies(backend):
    assert isinstance(backend, KeyBackend)
    digest = hashlib.sha256(b"van ban").digest()
    _verify(backend.certificate, digest, backend.sign_digest(digest, "sha256"))


def test_contract_one_phase_signature_is_valid(backend, pki, tmp_path, pdfsig):
    src, out = tmp_path / "in.pdf", tmp_path / "out.pdf"
    src.write_bytes(tiny_pdf())
    sign_pdf(src, out, backend, SignatureSpec(appearance=AppearanceSpec()))
    assert "Signature is Valid." in pdfsig(out)
    assert validate_pdf(out, [pki.root.asn1]).indication == "TOTAL-PASSED"


def test_contract_two_phase_signature_is_valid(backend, pki, tmp_path, pdfsig):
    src, out = tmp_path / "in.pdf", tmp_path / "out.pdf"
    src.write_bytes(tiny_pdf())
    prepared = prepare_signature(src, backend.certificate, pki.chain_asn1, SignatureSpec(reason="Hai pha"))
    # Phase two may run elsewhere, later: only the digest travels to the key.
    signature = backend.sign_digest(prepared.to_be_signed_digest, prepared.digest_algorithm)
    finish_signature(prepared, signature, out)
    assert "Signature is Valid." in pdfsig(out)
    assert validate_pdf(out, [pki.root.asn1]).indication == "TOTAL-PASSED"


# --- backend-specific failures ------------------------------------------------------------------

def test_two_phase_bt(pki, rsa_key, timestamper, tmp_path):
    src, out = tmp_path / "in.pdf", tmp_path / "out.pdf"
    src.write_bytes(tiny_pdf())
    prepared = prepare_signature(src, rsa_key.certificate, pki.chain_asn1, SignatureSpec(level="B-T"),
                                 timestamper=timestamper)
    finish_signature(prepared, rsa_key.sign_digest(prepared.to_be_signed_digest, "sha256"), out,
                     timestamper=timestamper)
    sig = validate_pdf(out, [pki.root.asn1]).signatures[0]
    assert (sig.indication, sig.pades_level) == ("TOTAL-PASSED", "B-T")


def test_two_phase_wrong_signature_value_is_invalid(pki, rsa_key, ec_key, tmp_path):
    src, out = tmp_path / "in.pdf", tmp_path / "out.pdf"
    src.write_bytes(tiny_pdf())
    prepared = prepare_signature(src, rsa_key.certificate, pki.chain_asn1, SignatureSpec())
    finish_signature(prepared, os.urandom(256), out)
    assert validate_pdf(out, [pki.root.asn1]).sub_indication == "SIG_CRYPTO_FAILURE"


def test_pkcs12_wrong_passphrase(pki):
    with pytest.raises(KeyUnavailableError):
        FileKeyBackend.from_pkcs12(pki.rsa_signer.pkcs12(b"right"), "wrong")


def test_pem_wrong_passphrase_and_missing_file(pki, tmp_path):
    key = tmp_path / "k.pem"
    key.write_bytes(pki.rsa_signer.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"a")))
    cert = tmp_path / "c.der"
    cert.write_bytes(pki.rsa_signer.der)
    with pytest.raises(KeyUnavailableError):
        FileKeyBackend.from_pem(key, cert, passphrase="b")
    with pytest.raises(KeyUnavailableError):
        FileKeyBackend.from_pem(tmp_path / "missing.pem", cert)


def test_pkcs11_wrong_pin(softhsm_token, pki):
    with pytest.raises(KeyUnavailableError):
        Pkcs11KeyBackend(SOFTHSM_MODULE, softhsm_token.label, "0000", "rsa-signer", cert=pki.rsa_signer.asn1).open()


def test_pkcs11_unknown_token_and_key(softhsm_token, pki):
    with pytest.raises(KeyUnavailableError):
        Pkcs11KeyBackend(SOFTHSM_MODULE, "no-such-token", softhsm_token.pin, "rsa-signer",
                         cert=pki.rsa_signer.asn1).open()
    with pytest.raises(KeyUnavailableError):
        Pkcs11KeyBackend(SOFTHSM_MODULE, softhsm_token.label, softhsm_token.pin, "no-such-key",
                         cert=pki.rsa_signer.asn1).open()


def test_pkcs11_closed_backend_refuses(softhsm_token, pki):
    backend = Pkcs11KeyBackend(SOFTHSM_MODULE, softhsm_token.label, softhsm_token.pin, "rsa-signer",
                               cert=pki.rsa_signer.asn1)
    with backend:
        pass
    backend.close()  # twice is fine
    with pytest.raises(KeyUnavailableError):
        backend.signer()


def test_fast_signer_honours_dry_run(rsa_key, ec_key):
    import asyncio

    assert len(asyncio.run(rsa_key.signer().async_sign_raw(b"x", "sha256", dry_run=True))) == 256
    placeholder = asyncio.run(ec_key.signer().async_sign_raw(b"x", "sha256", dry_run=True))
    real = asyncio.run(ec_key.signer().async_sign_raw(b"x", "sha256"))
    assert len(placeholder) >= len(real)


def test_pkcs11_rsa3072_key_generated_on_the_token_signs_one_and_two_phase(softhsm_token, pki, tmp_path, pdfsig):
    """An HSM makes its key itself and never lets it out: generate RSA-3072 on the token, certify
    its public half, and sign through PKCS#11 in one and two phases."""
    import pkcs11
    from pkcs11 import Attribute, KeyType

    token = pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=softhsm_token.label)
    with token.open(rw=True, user_pin=softhsm_token.pin) as session:
        public, _private = session.generate_keypair(KeyType.RSA, 3072, label="rsa3072-signer", id=b"\x03",
                                                    store=True)
        numbers = rsa.RSAPublicNumbers(int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                                       int.from_bytes(public[Attribute.MODULUS], "big"))
    cert = pki.issue_signer(numbers.public_key(), "Lê Văn Cường")
    src = tmp_path / "in.pdf"
    src.write_bytes(tiny_pdf())
    with Pkcs11KeyBackend(SOFTHSM_MODULE, softhsm_token.label, softhsm_token.pin, "rsa3072-signer", cert=cert,
                          chain=pki.chain_asn1) as hsm:
        assert hsm.certificate.public_key.bit_size == 3072
        sign_pdf(src, tmp_path / "one.pdf", hsm, SignatureSpec(appearance=AppearanceSpec()))
        prepared = prepare_signature(src, hsm.certificate, pki.chain_asn1, SignatureSpec(reason="Hai pha"))
        finish_signature(prepared, hsm.sign_digest(prepared.to_be_signed_digest, prepared.digest_algorithm),
                         tmp_path / "two.pdf")
    for out in (tmp_path / "one.pdf", tmp_path / "two.pdf"):
        assert "Signature is Valid." in pdfsig(out)
        assert validate_pdf(out, [pki.root.asn1]).indication == "TOTAL-PASSED"


def test_pkcs11_backends_share_the_token_login(softhsm_token, pki):
    """PKCS#11 logs in per application: a second backend must not fail with UserAlreadyLoggedIn,
    closing one must not log the other out, and a wrong PIN is still refused while logged in."""
    digest = hashlib.sha256(b"van ban").digest()

    def backend(label: str, pin: str = softhsm_token.pin) -> Pkcs11KeyBackend:
        return Pkcs11KeyBackend(SOFTHSM_MODULE, softhsm_token.label, pin, label, cert=label, chain=pki.chain_asn1)

    with backend("rsa-signer") as first:
        with backend("ec-signer") as second:
            _verify(second.certificate, digest, second.sign_digest(digest, "sha256"))
            with pytest.raises(KeyUnavailableError, match="PinIncorrect"):
                backend("rsa-signer", pin="0000").open()
        _verify(first.certificate, digest, first.sign_digest(digest, "sha256"))  # still logged in
    with backend("rsa-signer") as again:  # the last close logged out; a new login works
        _verify(again.certificate, digest, again.sign_digest(digest, "sha256"))
