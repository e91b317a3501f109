"""What validation reuses across documents (signing/reuse.py, signing/parse_speedups.py, the per-thread
event loop and the reused trust managers in signing/validation.py) must never change a verdict:
every memo is keyed by the content its answer depends on, and each document's own evidence is
checked every time, however warm the caches are."""

from __future__ import annotations

import asyncio
import gc
import io
import random
import threading
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import general
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.validation import generic_cms
from pyhanko.sign.validation.errors import DisallowedAlgorithmError
from pyhanko.sign.validation.utils import DEFAULT_ALGORITHM_USAGE_POLICY, CMSAlgorithmUsagePolicy
from pyhanko_certvalidator.authority import AuthorityWithCert
from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy

from signing import parse_speedups, reuse, validation
from signing.errors import InvalidPdfError
from signing.interfaces import SignatureSpec
from signing.pades import sign_pdf
from signing.validation import validate_pdf
from tests.signing.conftest import Issued, _issue, _name
from tests.support.pdfs import tiny_pdf

BT = SignatureSpec(level="B-T", reason="Ban hành")


def _sealed(tmp_path: Path, key, timestamper, text: str) -> Path:
    src, out = tmp_path / f"{text}.in.pdf", tmp_path / f"{text}.pdf"
    src.write_bytes(tiny_pdf(text))
    sign_pdf(src, out, key, BT, timestamper=timestamper)
    return out


def _summary(report) -> tuple:
    (sig,) = report.signatures
    return (report.indication, report.sub_indication, sig.pades_level, sig.intact, sig.valid, sig.chain_trusted,
            sig.timestamp_valid, sig.revocation.status)


def _cms(path: Path) -> cms.ContentInfo:
    with path.open("rb") as fh:
        ((_name, sig_dict, _ref),) = enumerate_sig_fields(PdfFileReader(fh, strict=False), filled_status=True)
        return cms.ContentInfo.load(bytes(sig_dict.get_object()["/Contents"]))


def _tst_signature(path: Path) -> bytes:
    """The timestamp token's own signature value, as stored in the signature's CMS."""
    signer_info = _cms(path)["content"]["signer_infos"][0]
    (token,) = [attr["values"][0] for attr in signer_info["unsigned_attrs"]
                if attr["type"].native == "signature_time_stamp_token"]
    return token["content"]["signer_infos"][0]["signature"].native


# --- end to end, caches warm -------------------------------------------------------------------

def test_warm_caches_still_check_every_document(tmp_path, pki, rsa_key, timestamper):
    good = [_sealed(tmp_path, rsa_key, timestamper, f"Van ban {n}") for n in range(3)]
    for path in good * 2:
        assert _summary(validate_pdf(path, [pki.root.asn1], other_certs=[pki.ca.asn1])) == \
            ("TOTAL-PASSED", None, "B-T", True, True, True, True, "unknown")

    # A changed byte in the signed range: the digest over the ByteRange is computed every time.
    data = bytearray(good[0].read_bytes())
    data[data.index(b"Van ban 0")] ^= 0x01
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(bytes(data))
    report = validate_pdf(changed, [pki.root.asn1], other_certs=[pki.ca.asn1])
    assert (report.indication, report.sub_indication) == ("TOTAL-FAILED", "HASH_FAILURE")

    # A broken timestamp signature (inside /Contents, outside the signed range): the token's own
    # signature is verified every time, though its TSA certificate and path are cached.
    data = bytearray(good[1].read_bytes())
    tst_hex = _tst_signature(good[1]).hex().encode()
    at = data.lower().index(tst_hex) + 10  # /Contents is written in either case of hex digits
    data[at:at + 1] = b"0" if data[at:at + 1] != b"0" else b"1"
    broken_ts = tmp_path / "broken-ts.pdf"
    broken_ts.write_bytes(bytes(data))
    (sig,) = validate_pdf(broken_ts, [pki.root.asn1], other_certs=[pki.ca.asn1]).signatures
    assert sig.intact and sig.valid and sig.timestamp_valid is False and sig.indication != "TOTAL-PASSED"

    # Another root set gets another trust manager and no cached path.
    foreign = validate_pdf(good[2], [pki.other_root.asn1], other_certs=[pki.ca.asn1])
    assert (foreign.indication, foreign.sub_indication) == ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")
    assert not foreign.signatures[0].chain_trusted
    assert validate_pdf(good[2], [pki.root.asn1], other_certs=[pki.ca.asn1]).indication == "TOTAL-PASSED"


def test_two_threads_at_once_reach_the_same_verdicts(tmp_path, pki, rsa_key, ec_key, timestamper):
    reuse.CERTIFICATES.clear()  # both threads start cold: they race to parse the same certificates
    docs = [_sealed(tmp_path, key, timestamper, f"{label} {n}") for n in range(3)
            for label, key in (("rsa", rsa_key), ("ec", ec_key))]
    expected = {path: _summary(validate_pdf(path, [pki.root.asn1])) for path in docs}
    reuse.CERTIFICATES.clear()
    validation._PATHS.clear()
    seen, errors = [], []
    start = threading.Barrier(2)

    def work(order):
        start.wait()
        try:
            for path in order * 3:
                seen.append((path, _summary(validate_pdf(path, [pki.root.asn1]))))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(order,)) for order in (docs, docs[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(seen) == 2 * 3 * len(docs)
    assert all(summary == expected[path] for path, summary in seen)


# --- the memos, one by one ---------------------------------------------------------------------

def test_memos_are_bounded_by_count_and_bytes():
    memo = reuse.BoundedMemo(3, max_bytes=100)
    for n in range(5):
        memo.put(bytes([n]) * 10, n)
    assert len(memo) == 3 and memo.get(b"\x00" * 10) is None and memo.get(b"\x04" * 10) == 4
    memo.put((b"a" * 60, b"b" * 30), "heavy")  # 90 bytes: the two oldest entries make room
    assert len(memo) == 2 and memo.get(b"\x04" * 10) == 4 and memo.get((b"a" * 60, b"b" * 30)) == "heavy"
    assert memo.put(b"x" * 101, "too heavy") == "too heavy" and memo.get(b"x" * 101) is None
    assert memo.put((b"a" * 60, b"b" * 30), "again") == "heavy"  # the first one stored wins


def test_certificates_are_shared_by_der_only(pki):
    a = reuse.certificate(pki.rsa_signer.der)
    assert reuse.certificate(pki.rsa_signer.der) is a
    assert reuse.shared([pki.rsa_signer.asn1]) == [a]  # another object with the same DER
    b = reuse.certificate(pki.ec_signer.der)
    assert b is not a and b.subject != a.subject
    assert a.native == asn1_x509.Certificate.load(pki.rsa_signer.der).native
    assert reuse.der_of(a) == pki.rsa_signer.der


def test_certificates_are_read_off_the_cms_as_pyhanko_reads_them(tmp_path, rsa_key, timestamper):
    path = _sealed(tmp_path, rsa_key, timestamper, "Van ban")
    signed_data = _cms(path)["content"]
    certificate_set = signed_data["certificates"]
    expected = [choice.chosen.dump() for choice in certificate_set if choice.name == "certificate"]
    assert len(expected) >= 2 and reuse._plain_certificate_ders(certificate_set) == expected
    ours, theirs = generic_cms.extract_certificate_info(signed_data), general.extract_certificate_info(signed_data)
    assert ours.signer_cert.dump() == theirs.signer_cert.dump()
    assert [c.dump() for c in ours.other_certs] == [c.dump() for c in theirs.other_certs]
    assert ours.attribute_certs == theirs.attribute_certs == []
    # Anything but plain certificates (here an element with a context tag, as attribute
    # certificates have, or an indefinite length) goes pyHanko's way.
    assert reuse._plain_certificate_ders(cms.CertificateSet.load(_set_of())) == []
    tagged = cms.CertificateSet.load(_set_of(b"\xa2\x03\x02\x01\x00"))
    assert reuse._plain_certificate_ders(tagged) is None
    indefinite = cms.CertificateSet.load(_set_of(b"\x30\x80\x02\x01\x00\x00\x00"))
    assert reuse._plain_certificate_ders(indefinite) is None


def _set_of(*elements: bytes) -> bytes:
    body = b"".join(elements)
    assert len(body) < 128
    return b"\x31" + bytes([len(body)]) + body


def test_trust_managers_are_per_root_set(pki):
    ours = reuse.trust_manager([pki.root.asn1])
    assert reuse.trust_manager([asn1_x509.Certificate.load(pki.root.der)]) is ours
    theirs = reuse.trust_manager([pki.other_root.asn1])
    assert theirs is not ours
    assert reuse.trust_manager([pki.root.asn1, pki.other_root.asn1]) not in (ours, theirs)
    signer = reuse.certificate(pki.rsa_signer.der)
    assert ours.is_root(reuse.certificate(pki.root.der)) and not theirs.is_root(reuse.certificate(pki.root.der))
    size = len(ours._root_subject_map)
    assert list(ours.find_potential_issuers(signer)) == []  # issued by the CA, not the root
    assert ours.as_trust_anchor(AuthorityWithCert(signer)) is None
    assert len(ours._root_subject_map) == size  # lookups of unknown names do not grow a shared manager


def test_ess_memo_answers_only_for_its_certificate(pki):
    certid = as_signing_certificate_v2(pki.rsa_signer.asn1)["certs"][0]
    signer, other = reuse.certificate(pki.rsa_signer.der), reuse.certificate(pki.ec_signer.der)
    for _ in range(2):
        assert generic_cms.check_ess_certid(signer, certid) is True
        assert generic_cms.check_ess_certid(other, certid) is False
        assert generic_cms.check_ess_certid(asn1_x509.Certificate.load(pki.ec_signer.der), certid) is False


def test_algorithm_memo_still_refuses_a_weak_key(pki, tmp_path, rsa_key):
    src, out = tmp_path / "in.pdf", tmp_path / "out.pdf"
    src.write_bytes(tiny_pdf())
    sign_pdf(src, out, rsa_key, SignatureSpec())
    signer_info = _cms(out)["content"]["signer_infos"][0]
    weak_key = rsa.generate_private_key(65537, 1024)
    weak = asn1_x509.Certificate.load(Issued(weak_key, _issue(_name("Khóa yếu"), weak_key, pki.ca, ca=False)).der)
    policy = CMSAlgorithmUsagePolicy.lift_policy(DisallowWeakAlgorithmsPolicy())
    for _ in range(2):
        assert generic_cms._enforce_algorithm_usage(signer_info, pki.rsa_signer.asn1, policy) is None
        with pytest.raises(DisallowedAlgorithmError):
            generic_cms._enforce_algorithm_usage(signer_info, weak, policy)
    # A policy with other settings is another key: it is asked again, and refuses.
    strict = CMSAlgorithmUsagePolicy.lift_policy(DisallowWeakAlgorithmsPolicy(rsa_key_size_threshold=4096))
    with pytest.raises(DisallowedAlgorithmError):
        generic_cms._enforce_algorithm_usage(signer_info, pki.rsa_signer.asn1, strict)
    assert generic_cms._enforce_algorithm_usage(signer_info, pki.rsa_signer.asn1,
                                                DEFAULT_ALGORITHM_USAGE_POLICY) is None


class _Path:
    def __init__(self, *certs):
        self._certs = certs

    def iter_certs(self, include_root=True):
        return iter(self._certs)


def test_verified_chains_are_kept_by_their_certificates(pki):
    genuine = _Path(pki.root.asn1, pki.ca.asn1, pki.rsa_signer.asn1)
    assert validation._links_verify(genuine) and validation._links_verify(genuine)
    # The same CA and signer under a root that did not sign the CA: not excused by the cached chain.
    assert not validation._links_verify(_Path(pki.other_root.asn1, pki.ca.asn1, pki.rsa_signer.asn1))
    assert not validation._links_verify(_Path(pki.root.asn1, pki.rsa_signer.asn1))


# --- the per-thread event loop -------------------------------------------------------------------

def test_the_loop_is_reused_and_replaced_after_a_failure(tmp_path, pki):
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(tiny_pdf())
    validate_pdf(plain, [pki.root.asn1])
    loop = validation._LOOPS.holder.loop
    validate_pdf(plain, [pki.root.asn1])
    assert validation._LOOPS.holder.loop is loop and not loop.is_closed()
    with pytest.raises(InvalidPdfError):
        validate_pdf(b"not a pdf", [pki.root.asn1])
    assert loop.is_closed() and validation._LOOPS.holder is None
    assert validate_pdf(plain, [pki.root.asn1]).sub_indication == "NO_SIGNATURE_FOUND"


def test_a_thread_s_loop_is_closed_when_the_thread_ends(tmp_path, pki):
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(tiny_pdf())
    loops = []

    def work():
        validate_pdf(plain, [pki.root.asn1])
        loops.append(validation._LOOPS.holder.loop)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    gc.collect()
    assert len(loops) == 1 and loops[0].is_closed()


def test_not_from_a_running_loop(pki):
    async def inside():
        return validate_pdf(tiny_pdf(), [pki.root.asn1])

    with pytest.raises(RuntimeError, match="running event loop"):
        asyncio.run(inside())


# --- signing/parse_speedups.py: pyHanko's own answers, errors and stream positions -------------------

def _outcome(fn, data: bytes, *args, **kwargs):
    """What ``fn(*args, stream, ...)`` returns or raises on ``data``, and where it leaves the stream."""
    stream = io.BytesIO(data)
    try:
        return fn(*args, stream, **kwargs), stream.tell()
    except (PdfError, TypeError) as exc:
        return type(exc), str(exc), stream.tell()


def _random_tokens(rng: random.Random) -> bytes:
    alphabet = b" \n\r\t\f\x00()<>[]{}/%abcXYZ019#.-+" + bytes(range(0x80, 0x84))
    return bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))


def test_fast_token_readers_match_pyhanko():
    rng = random.Random(20260305)
    cases = [b"", b"   ", b"  % comment\n  x", b"\x00\x00/Name", b"abc", b"abc def", b"/A#20B>>", b"x" * 300 + b" y",
             b" " * 300 + b"z", b"%only a comment"] + [_random_tokens(rng) for _ in range(400)]
    classes = [misc.PDF_WHITESPACE + misc.PDF_DELIMITERS, misc.PDF_WHITESPACE, b"\n", b"%"]
    for data in cases:
        for class_chars in classes:
            for maxchars in (None, 0, -1, 1, 5, 20, 128, 129, 1000):
                theirs = _outcome(parse_speedups._pyhanko_read_until_class, data, class_chars, maxchars=maxchars)
                ours = _outcome(parse_speedups._read_until_class, data, class_chars, maxchars=maxchars)
                assert ours == theirs, (data, class_chars, maxchars)
        for seek_back in (False, True):
            for allow_eof in (False, True):
                theirs = _outcome(parse_speedups._pyhanko_read_non_whitespace, data, seek_back=seek_back,
                                  allow_eof=allow_eof)
                ours = _outcome(parse_speedups.read_non_whitespace, data, seek_back=seek_back, allow_eof=allow_eof)
                assert ours == theirs, (data, seek_back, allow_eof)


@pytest.mark.parametrize("name", [b"Type", b"A#20B", b"Ti#74le", b"caf\xc3\xa9", b"\xe9t\xe9", b"A#2", b"A#zz",
                                  b"A B", b"", b"x" * 200])
def test_fast_name_decoding_matches_pyhanko(name):
    outcomes = []
    for fn in (parse_speedups._pyhanko_decode_name, parse_speedups._decode_name, parse_speedups._decode_name):
        try:
            value = fn(name)
            outcomes.append((type(value), str(value)))
        except PdfError as exc:
            outcomes.append((type(exc), str(exc)))
    assert outcomes[0] == outcomes[1] == outcomes[2]


def test_fast_readers_are_the_ones_pyhanko_uses():
    assert misc._read_until_class is parse_speedups._read_until_class
    assert generic.read_non_whitespace is parse_speedups.read_non_whitespace
    assert generic._decode_name is parse_speedups._decode_name
    first = generic.read_object(io.BytesIO(b"[/Type /A#20B (x)]"), "one container")
    second = generic.read_object(io.BytesIO(b"[/Type]"), "another container")
    assert list(first) == ["/Type", "/A B", "x"] and first[0] == second[0]
    assert first[0] is not second[0]  # names are never shared objects: each knows its own container
    assert (first[0].container_ref, second[0].container_ref) == ("one container", "another container")


def test_a_certificate_set_of_many_tiny_elements_is_left_to_pyhanko_at_once():
    # A hostile CMS can carry a certificate set of 200,000 empty SEQUENCEs (400 KB): read off the
    # encoding one slice at a time that would take time quadratic in its length.
    import time

    from asn1crypto import cms

    from signing import reuse

    body = b"\x30\x00" * 200_000
    length = len(body).to_bytes(3, "big")
    certificate_set = cms.CertificateSet.load(b"\x31\x83" + length + body)
    started = time.process_time()
    assert reuse._plain_certificate_ders(certificate_set) is None
    assert time.process_time() - started < 0.05
