"""Reused certificate paths (signing.validation._PATHS) never change a verdict: they are keyed by the
trust, bounded in time, and every signature is still checked on its own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from signing import validation
from signing.interfaces import SignatureSpec
from signing.pades import sign_pdf
from signing.validation import validate_pdf
from tests.support.pdfs import tiny_pdf


@pytest.fixture(autouse=True)
def _empty_cache():
    validation._PATHS.clear()
    yield
    validation._PATHS.clear()


def _signed(tmp_path: Path, rsa_key, text: str) -> Path:
    src, out = tmp_path / f"{text}.in.pdf", tmp_path / f"{text}.pdf"
    src.write_bytes(tiny_pdf(text))
    sign_pdf(src, out, rsa_key, SignatureSpec(reason="Phê duyệt"))
    return out


def test_a_path_is_reused_for_the_same_trust_only(tmp_path, rsa_key, pki):
    first, second = _signed(tmp_path, rsa_key, "Van ban 1"), _signed(tmp_path, rsa_key, "Van ban 2")
    assert validate_pdf(first, [pki.root.asn1]).indication == "TOTAL-PASSED"
    assert len(validation._PATHS._entries) == 1
    assert validate_pdf(second, [pki.root.asn1]).indication == "TOTAL-PASSED"
    assert len(validation._PATHS._entries) == 1  # the same signer certificate: reused
    # Another trust store does not see the path found for the first one.
    report = validate_pdf(second, [pki.other_root.asn1])
    assert (report.indication, report.sub_indication) == ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")


def test_a_reused_path_does_not_excuse_a_tampered_signature(tmp_path, rsa_key, pki):
    good, bad = _signed(tmp_path, rsa_key, "Van ban 1"), _signed(tmp_path, rsa_key, "Van ban 2")
    assert validate_pdf(good, [pki.root.asn1]).indication == "TOTAL-PASSED"
    data = bytearray(bad.read_bytes())
    data[data.index(b"Van ban 2")] ^= 0x01
    bad.write_bytes(bytes(data))
    report = validate_pdf(bad, [pki.root.asn1])
    assert (report.indication, report.sub_indication) == ("TOTAL-FAILED", "HASH_FAILURE")


def test_paths_expire_and_are_not_kept_for_fetching_or_past_contexts(tmp_path, rsa_key, pki, monkeypatch):
    signed = _signed(tmp_path, rsa_key, "Van ban 1")
    validate_pdf(signed, [pki.root.asn1], allow_fetching=True)
    validate_pdf(signed, [pki.root.asn1], validation_time=datetime.now(UTC))
    assert not validation._PATHS._entries
    validate_pdf(signed, [pki.root.asn1])
    (key,) = validation._PATHS._entries
    monkeypatch.setattr(validation.time, "monotonic", lambda: 1e12)  # far past PATH_CACHE_SECONDS
    assert validation._PATHS.get(key, datetime.now(UTC)) is None
