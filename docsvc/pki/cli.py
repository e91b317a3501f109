"""``docsvc pki init`` and ``docsvc sign``: the development PKI and signing files from the shell.

Wire into docsvc/cli.py with::

    from docsvc.pki.cli import pki_app, sign_command
    app.add_typer(pki_app, name="pki")
    app.command("sign")(sign_command)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer

pki_app = typer.Typer(no_args_is_help=True, help="The development PKI (root CA, issuing CA, TSA, OCSP).")

PASSPHRASE_ENV = "DOCSVC_KEY_PASSPHRASE"


def _settings(data_dir: Path | None):
    if data_dir is not None:
        os.environ["DOCSVC_DATA_DIR"] = str(data_dir.resolve())
    from docsvc.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@pki_app.command("init")
def init(data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Overrides DOCSVC_DATA_DIR.")] = None,
         ) -> None:
    """Create the development PKI (idempotent) and its default seal and personal keys."""
    from docsvc.errors import DocsvcError
    from docsvc.pki.defaults import ensure_default_keys
    from docsvc.pki.service import ensure_dev_pki

    settings = _settings(data_dir)
    try:
        pki = ensure_dev_pki(settings)
        keys = ensure_default_keys(settings, pki)
    except DocsvcError as exc:
        _fail(f"{exc.code}: {exc.message}")
    typer.echo(f"development PKI in {settings.pki_path} (serves {pki.urls.base_url}/pki/...)")
    typer.echo(f"root CA: {settings.pki_path / 'root-ca.pem'}")
    for which, path in keys.items():
        typer.echo(f"default {which} key: {path}")


def _load_key(path: Path, cert: Path | None):
    from signing.keys import FileKeyBackend

    data = path.read_bytes()
    if b"-----BEGIN" not in data:
        passphrase = os.environ.get(PASSPHRASE_ENV)
        if passphrase is None:
            passphrase = typer.prompt("PKCS#12 passphrase", hide_input=True)
        return FileKeyBackend.from_pkcs12(data, passphrase)
    passphrase = None
    if b"ENCRYPTED" in data:
        passphrase = os.environ.get(PASSPHRASE_ENV) or typer.prompt("key passphrase", hide_input=True)
    certs = _certificates(cert.read_bytes() if cert else data)
    return FileKeyBackend.from_pem(data, certs[0], certs[1:], passphrase)


def _certificates(data: bytes) -> list[bytes]:
    """DER certificates in a PEM bundle (signer first, then its chain) or one DER certificate."""
    from asn1crypto import pem

    if not pem.detect(data):
        return [data]
    certs = [der for kind, _, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"]
    if not certs:
        _fail("the PEM file holds no certificate; give --cert")
    return certs


def sign_command(
    input: Annotated[Path, typer.Argument(help="PDF to sign.", exists=True, dir_okay=False)],  # noqa: A002
    output: Annotated[Path, typer.Argument(help="Signed PDF to write.")],
    level: Annotated[Literal["B-B", "B-T", "B-LT", "B-LTA"], typer.Option(help="PAdES baseline level.")] = "B-T",
    profile: Annotated[Literal["personal", "organisation", "attachment", "copy"],
                       typer.Option(help="Decree 30 appearance.")] = "personal",
    key: Annotated[Path | None, typer.Option(help="PKCS#12 (passphrase from $DOCSVC_KEY_PASSPHRASE or a prompt) "
                                                  "or PEM key; default: the development PKI's key for the profile.",
                                             exists=True, dir_okay=False)] = None,
    cert: Annotated[Path | None, typer.Option(help="PEM/DER certificate (+ chain) for a PEM --key.",
                                              exists=True, dir_okay=False)] = None,
    image: Annotated[Path | None, typer.Option(help="Signature or seal PNG.", exists=True, dir_okay=False)] = None,
    number: Annotated[str | None, typer.Option(help="Number/symbol shown by the attachment profile.")] = None,
    copy_form: Annotated[Literal["SAO Y", "SAO LỤC", "TRÍCH SAO"],
                         typer.Option(help="Copy form shown by the copy profile.")] = "SAO Y",
    copying_org: Annotated[str | None, typer.Option(help="Copying agency shown by the copy profile "
                                                         "(default: the certificate's organisation).")] = None,
    anchor: Annotated[str | None, typer.Option(help="Place against this text on the page (personal: the name "
                                                    "under the signature; default: the certificate's name).")] = None,
    box: Annotated[tuple[float, float, float, float] | None,
                   typer.Option(help="Explicit box X1 Y1 X2 Y2 in PDF points (origin bottom left).")] = None,
    page: Annotated[int | None, typer.Option(help="Zero-based page; -1 is the last.")] = None,
    reason: Annotated[str | None, typer.Option(help="Reason for signing.")] = None,
    lock: Annotated[bool, typer.Option("--lock", help="Lock the document with this (last) signature.")] = False,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Overrides DOCSVC_DATA_DIR.")] = None,
) -> None:
    """Sign a PDF file. B-T and above use the development TSA/OCSP in-process (no server needed)."""
    from docsvc.errors import DocsvcError
    from docsvc.pki.defaults import default_key
    from docsvc.pki.images import cached_png
    from docsvc.pki.service import signing_trust
    from docsvc.signatures.specs import build_spec
    from signing.errors import InvalidPdfError, SigningError
    from signing.pades import sign_pdf
    from signing.profiles import ProfileError, ProfileRequest, signature_spec

    settings = _settings(data_dir)
    if input.resolve() == output.resolve():
        _fail("OUT must differ from IN", 2)
    if not output.parent.is_dir():
        _fail(f"cannot write {output}: no directory {output.parent}", 2)
    try:
        backend = _load_key(key, cert) if key else default_key(settings, profile)
        subject = backend.certificate.subject.native
        if image is None and profile in ("personal", "organisation"):
            text = subject.get("common_name", "") if profile == "personal" else subject.get("organization_name", "")
            image = cached_png(settings.pki_path / "images", "signature" if profile == "personal" else "seal", text)
        if profile == "copy":  # build_spec knows no copy details: the CLI asks the profile directly
            request = ProfileRequest(profile="copy", level=level, copy_form=copy_form,
                                     copying_organisation=copying_org, reason=reason, anchor_text=anchor,
                                     box=box, page=page, lock_document=lock)
            spec = signature_spec(input, request, backend.certificate)
        else:
            spec = build_spec(input, profile=profile, level=level, certificate=backend.certificate,
                              image_path=image, reason=reason, number_symbol=number, anchor_text=anchor, box=box,
                              page=page, lock=lock)
        trust = signing_trust(settings, level, backend.certificate)
        sign_pdf(input, output, backend, spec, timestamper=trust.timestamper,
                 validation_context=trust.validation_context)
    except DocsvcError as exc:
        _fail(f"{exc.code}: {exc.message}", 2 if exc.code == "invalid_signature_request" else 1)
    except ProfileError as exc:
        _fail(f"{exc.code}: {exc}", 2)
    except InvalidPdfError as exc:  # also encrypted PDFs: nothing was written
        _fail(f"cannot sign {input}: {exc}", 2)
    except SigningError as exc:
        _fail(f"signing failed: {exc}")
    except OSError as exc:
        _fail(f"cannot sign {input} into {output}: {exc.strerror or exc}", 2)
    typer.echo(f"signed {output} ({profile}, {level}) as {subject.get('common_name', '')}")
