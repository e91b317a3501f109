"""``docsvc verify FILE.pdf [--json]``: exit 0 only when every signature passes, 1 otherwise,
2 for input that cannot be read; trust comes from the same settings as the service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from docsvc.settings import get_settings
from docsvc.validation.cli import verify_command
from signing.devpki import DevPki
from tests.support.pdfs import encrypted_pdf, tiny_pdf
from tests.test_validation_api import SIGNER, sign_with_dev_pki, tamper

app = typer.Typer()
app.command("verify")(verify_command)
app.command("noop")(lambda: None)  # two commands, so "verify" is a subcommand as in docsvc's CLI


@pytest.fixture(scope="module")
def dev_pki(tmp_path_factory) -> DevPki:
    return DevPki.init(tmp_path_factory.mktemp("pki"), base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def signed(dev_pki, tmp_path_factory) -> bytes:
    return sign_with_dev_pki(dev_pki, tmp_path_factory.mktemp("signed"))


@pytest.fixture
def env(monkeypatch, tmp_path, dev_pki):
    """Settings from the environment, as a real ``docsvc verify`` reads them."""
    values = {"DOCSVC_ENVIRONMENT": "test", "DOCSVC_DATA_DIR": str(tmp_path / "data"),
              "DOCSVC_SIGNING__PKI_DIR": str(dev_pki.directory), "DOCSVC_SIGNING__FETCH_REVOCATION": "false"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield monkeypatch
    get_settings.cache_clear()


def _verify(tmp_path: Path, content: bytes | None, *args: str, name: str = "file.pdf"):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    return CliRunner().invoke(app, ["verify", str(path), *args])


def test_signed_file_passes(env, tmp_path, signed):
    result = _verify(tmp_path, signed)
    assert result.exit_code == 0, result.output
    assert SIGNER in result.output and "Kết quả / Result: TOTAL-PASSED" in result.output


def test_json_report(env, tmp_path, signed):
    result = _verify(tmp_path, signed, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["summary"]["indication"] == "TOTAL-PASSED"
    assert body["signatures"][0]["signer"]["name"] == SIGNER


def test_tampered_file_fails(env, tmp_path, signed):
    result = _verify(tmp_path, tamper(signed), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["summary"]["sub_indication"] == "HASH_FAILURE"
    human = _verify(tmp_path, tamper(signed))
    assert human.exit_code == 1 and "TOTAL-FAILED (HASH_FAILURE)" in human.output


def test_unsigned_file_exits_1(env, tmp_path):
    result = _verify(tmp_path, tiny_pdf())
    assert result.exit_code == 1
    assert "INDETERMINATE (NO_SIGNATURE_FOUND)" in result.output


def test_trust_comes_from_settings(env, tmp_path, signed, dev_pki):
    env.setenv("DOCSVC_SIGNING__USE_DEV_PKI", "false")
    untrusted = _verify(tmp_path, signed, "--json")
    assert untrusted.exit_code == 1
    assert json.loads(untrusted.stdout)["summary"]["indication"] == "INDETERMINATE"
    root = tmp_path / "root.pem"
    root.write_bytes(dev_pki.root.cert.public_bytes(serialization.Encoding.PEM))
    env.setenv("DOCSVC_SIGNING__TRUST_ROOTS", json.dumps([str(root)]))
    assert _verify(tmp_path, signed).exit_code == 0


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    (b"plain text, not a pdf", "not_a_pdf"),
    (tiny_pdf()[:150], "invalid_pdf"),
    (encrypted_pdf(), "encrypted_pdf"),
], ids=["missing", "not-pdf", "truncated", "encrypted"])
def test_unreadable_input_exits_2_with_a_message(env, tmp_path, content, message):
    result = _verify(tmp_path, content)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content", [None, b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"],
                         ids=["missing", "not-a-certificate"])
def test_unusable_trust_root_is_a_configuration_error(env, tmp_path, signed, content):
    """A bad trust-root file is the configuration's fault, not the document's: the message says
    so and names the root file, never "cannot read FILE.pdf"."""
    root = tmp_path / "roots" / "national-root.pem"
    if content is not None:
        root.parent.mkdir()
        root.write_bytes(content)
    env.setenv("DOCSVC_SIGNING__TRUST_ROOTS", json.dumps([str(root)]))
    result = _verify(tmp_path, signed)
    assert result.exit_code == 2
    assert "configuration error" in result.output and "signing.trust_roots" in result.output
    assert str(root) in result.output and "signing_unavailable" in result.output
    assert "cannot read " + str(tmp_path / "file.pdf") not in result.output
    assert "Traceback" not in result.output
