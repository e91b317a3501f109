"""``docsvc pki init`` and ``docsvc sign`` end to end on a fresh data directory, no server running."""

from __future__ import annotations

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from docsvc.pki.cli import pki_app, sign_command
from docsvc.settings import Settings
from signing.devpki import DevPki
from signing.validation import validate_pdf
from tests.support.signing import decree30_pdf, nss_db_trusting, pdfsig

cli = typer.Typer()
cli.add_typer(pki_app, name="pki")
cli.command("sign")(sign_command)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    from tests.support.signing import BASE_URL

    path = tmp_path / "data"
    monkeypatch.setenv("DOCSVC_DATA_DIR", str(path))
    monkeypatch.setenv("DOCSVC_SIGNING__PUBLIC_BASE_URL", BASE_URL)
    monkeypatch.delenv("DOCSVC_KEY_PASSPHRASE", raising=False)
    return path


def _run(*args: str, input: str | None = None):  # noqa: A002
    return CliRunner().invoke(cli, list(args), input=input)


def _validate(path, data_dir):
    pki = DevPki.open(data_dir / "pki")
    return validate_pdf(path, [pki.trust_root], other_certs=[pki.chain[0]])


def test_init_then_sign_organisation_at_b_lta(data_dir, tmp_path):
    source = tmp_path / "in.pdf"
    source.write_bytes(decree30_pdf())
    init = _run("pki", "init")
    assert init.exit_code == 0, init.output
    assert (data_dir / "pki" / "root-ca.pem").exists()
    assert _run("pki", "init").exit_code == 0  # idempotent

    out = tmp_path / "out.pdf"
    result = _run("sign", str(source), str(out), "--level", "B-LTA", "--profile", "organisation")
    assert result.exit_code == 0, result.output
    report = _validate(out, data_dir)
    assert report.indication == "TOTAL-PASSED", report.to_dict()
    kinds = [s.kind for s in report.signatures]
    assert kinds == ["signature", "document-timestamp"]
    sig = report.signatures[0]
    assert sig.pades_level == "B-LTA"
    assert sig.signer.name == Settings().root_organisation_name
    poppler = pdfsig(out, nss_db_trusting(tmp_path / "nss", data_dir / "pki"), data_dir / "pki")
    assert "Signature is Valid." in poppler.split("Signature #2")[0], poppler


def test_sign_personal_with_a_pkcs12_key_and_image(data_dir, tmp_path, monkeypatch):
    assert _run("pki", "init").exit_code == 0
    pki = DevPki.open(data_dir / "pki")
    issued = pki.issue_personal("Lê Thị Hoa", "001190000123", "Sở Tư pháp", position="Phó Giám đốc")
    p12 = tmp_path / "hoa.p12"
    p12.write_bytes(issued.to_pkcs12("mật-khẩu-1"))
    source = tmp_path / "in.pdf"
    source.write_bytes(decree30_pdf(signer="Lê Thị Hoa"))
    out = tmp_path / "out.pdf"
    result = _run("sign", str(source), str(out), "--level", "B-T", "--key", str(p12), input="mật-khẩu-1\n")
    assert result.exit_code == 0, result.output
    sig = _validate(out, data_dir).signatures[0]
    assert (sig.indication, sig.pades_level, sig.signer.name) == ("TOTAL-PASSED", "B-T", "Lê Thị Hoa")

    pem = tmp_path / "hoa.pem"
    pem.write_bytes(issued.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
                    + issued.certificate.public_bytes(serialization.Encoding.PEM)
                    + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issued.chain))
    out2 = tmp_path / "out2.pdf"
    result = _run("sign", str(source), str(out2), "--level", "B-B", "--key", str(pem))
    assert result.exit_code == 0, result.output
    assert _validate(out2, data_dir).signatures[0].indication == "TOTAL-PASSED"


def test_wrong_passphrase_and_unknown_level_fail_cleanly(data_dir, tmp_path, monkeypatch):
    assert _run("pki", "init").exit_code == 0
    pki = DevPki.open(data_dir / "pki")
    p12 = tmp_path / "k.p12"
    p12.write_bytes(pki.issue_personal("Lê Văn Nam", "001190000124", "Sở Tư pháp").to_pkcs12("right-one"))
    source = tmp_path / "in.pdf"
    source.write_bytes(decree30_pdf())
    monkeypatch.setenv("DOCSVC_KEY_PASSPHRASE", "wrong-one")
    out = tmp_path / "out.pdf"
    result = _run("sign", str(source), str(out), "--key", str(p12))
    assert result.exit_code == 1 and "passphrase" in result.output and not out.exists()
    bad = _run("sign", str(source), str(out), "--level", "B-X")
    assert bad.exit_code == 2 and not out.exists()


@pytest.mark.parametrize("content", ["not-pdf", "truncated", "encrypted"])
def test_unusable_input_exits_2_and_writes_nothing(data_dir, tmp_path, content):
    from tests.support.pdfs import encrypted_pdf

    assert _run("pki", "init").exit_code == 0
    source = tmp_path / "in.pdf"
    source.write_bytes({"not-pdf": b"GIF89a not a pdf", "truncated": decree30_pdf()[:900],
                        "encrypted": encrypted_pdf()}[content])
    out = tmp_path / "out.pdf"
    result = _run("sign", str(source), str(out), "--level", "B-B")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["data", "in.pdf"]


def test_missing_output_directory_is_a_clear_error(data_dir, tmp_path):
    assert _run("pki", "init").exit_code == 0
    source = tmp_path / "in.pdf"
    source.write_bytes(decree30_pdf())
    result = _run("sign", str(source), str(tmp_path / "nowhere" / "out.pdf"), "--level", "B-B")
    assert result.exit_code == 2 and "no directory" in result.output, result.output


def test_copy_form_box_and_anchor_options(data_dir, tmp_path):
    """The copy profile shows the chosen copy form and copying agency; --box puts a signature
    exactly there; an --anchor that is not on the page is an error, not a silent fallback."""
    import subprocess

    from pyhanko.pdf_utils.reader import PdfFileReader

    assert _run("pki", "init").exit_code == 0
    source = tmp_path / "in.pdf"
    source.write_bytes(decree30_pdf())
    copy = tmp_path / "copy.pdf"
    result = _run("sign", str(source), str(copy), "--level", "B-B", "--profile", "copy", "--copy-form", "TRÍCH SAO",
                  "--copying-org", "UBND huyện Nam Đàn")
    assert result.exit_code == 0, result.output
    text = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "1", str(copy), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "TRÍCH SAO" in text and "UBND huyện Nam Đàn" in text, text

    boxed = tmp_path / "boxed.pdf"
    result = _run("sign", str(source), str(boxed), "--level", "B-B", "--box", "100", "200", "260", "280",
                  "--page", "0")
    assert result.exit_code == 0, result.output
    with boxed.open("rb") as handle:
        (sig,) = PdfFileReader(handle, strict=False).embedded_signatures
        assert [float(v) for v in sig.sig_field["/Rect"]] == [100.0, 200.0, 260.0, 280.0]

    missing = _run("sign", str(source), str(tmp_path / "x.pdf"), "--anchor", "Không có trên trang")
    assert missing.exit_code == 2 and "not found on any page" in missing.output, missing.output
