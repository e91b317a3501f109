"""``docsvc axis parse`` / ``docsvc axis build`` (wired into docsvc's CLI by the application)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from inter_axis.build import write_package
from inter_axis.errors import EdxmlError
from inter_axis.model import (
    AttachmentSource,
    Business,
    BusinessDocType,
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    OtherInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    TraceHeader,
)
from inter_axis.parse import read_package
from inter_axis.xmldsig import sign_package, verify_package

axis_app = typer.Typer(help="edXML packages of the national document interlink axis.", no_args_is_help=True)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if not f.name.startswith("_")}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _fail(exc: EdxmlError) -> None:
    typer.echo(f"error [{exc.code}]: {exc}", err=True)
    raise typer.Exit(2) from exc


@axis_app.command("parse")
def parse_command(
    file: Annotated[Path, typer.Argument(help="the .edxml package")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    trust: Annotated[list[Path] | None, typer.Option("--trust", help="trusted root certificate (PEM)")] = None,
) -> None:
    """Print header fields, statuses, attachments (size, SHA-256), warnings and the signature status."""
    try:
        with tempfile.TemporaryDirectory(prefix="axis-parse-") as spool, read_package(file, spool_dir=spool) as parsed:
            check = None
            if parsed.signature == "xmldsig" and trust:
                check = verify_package(file, [p.read_bytes() for p in trust], spool_dir=spool)
            signature = (
                check.reason
                if check
                else ("present, not checked (no --trust)" if parsed.signature == "xmldsig" else parsed.signature)
            )
            result = {
                "kind": parsed.kind,
                "document": _plain(parsed.document),
                "status": _plain(parsed.status),
                "attachments": [
                    {
                        "content_id": a.content_id,
                        "name": a.name,
                        "content_type": a.content_type,
                        "size": a.size,
                        "sha256": a.sha256,
                    }
                    for a in parsed.attachments
                ],
                "warnings": list(parsed.warnings),
                "signature": {
                    "status": signature,
                    "valid": bool(check and check.valid),
                    "signer": check.signer if check else None,
                },
            }
    except EdxmlError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    if parsed.kind == "document":
        header = parsed.document.header
        typer.echo(f"document {header.effective_document_id}: {header.subject}")
        typer.echo(f"from {header.from_org.organ_id} to {', '.join(o.organ_id for o in header.to)}")
    else:
        status = parsed.status
        about = status.response_for.document_id
        typer.echo(f"status {status.status_code} from {status.from_org.organ_id} about {about}")
    for att in result["attachments"]:
        typer.echo(f"attachment {att['content_id']} {att['name']} {att['size']} bytes sha256={att['sha256']}")
    for warning in result["warnings"]:
        typer.echo(f"warning: {warning}")
    typer.echo(f"signature: {signature}" + (f" ({check.signer})" if check and check.signer else ""))


def _date(value: str | None) -> date | None:
    return datetime.strptime(value, "%Y/%m/%d").date() if value else None


def package_from_spec(spec: dict, base: Path) -> DocumentPackage:
    """A :class:`DocumentPackage` from the JSON spec ``docsvc axis build`` reads (field names as the model)."""
    h = spec["header"]
    header = MessageHeader(
        from_org=Organization(**h["from_org"]),
        to=tuple(Organization(**o) for o in h["to"]),
        code=DocumentCode(**h["code"]),
        promulgation_place=h.get("promulgation_place", ""),
        promulgation_date=_date(h["promulgation_date"]),
        document_type=DocumentType(**h["document_type"]),
        subject=h["subject"],
        content=h.get("content", ""),
        signer=SignerInfo(**h.get("signer", {})),
        due_date=_date(h.get("due_date")),
        other_info=OtherInfo(
            **{**h.get("other_info", {}), "appendixes": tuple(h.get("other_info", {}).get("appendixes", ()))}
        ),
        response_for=tuple(
            ResponseFor(**{**r, "promulgation_date": _date(r.get("promulgation_date"))})
            for r in h.get("response_for", ())
        ),
        steering_type=h.get("steering_type", 1),
        to_places=tuple(h.get("to_places", ())),
    )
    b = spec.get("business", {})
    business = Business(
        doc_type=BusinessDocType(b.get("doc_type", 0)),
        reason=b.get("reason", "Văn bản điện tử mới"),
        document_id=b.get("document_id", ""),
        staff=StaffInfo(**b["staff"]) if b.get("staff") else None,
    )
    traces = tuple(
        TraceHeader(t["organ_id"], datetime.strptime(t["timestamp"], "%Y/%m/%d %H:%M:%S"))
        for t in spec.get("traces", ())
    )
    attachments = tuple(
        AttachmentSource(a["content_id"], a["name"], a["content_type"], base / a["path"], a.get("description", ""))
        for a in spec.get("attachments", ())
    )
    return DocumentPackage(header=header, traces=traces, business=business, attachments=attachments)


@axis_app.command("build")
def build_command(
    spec: Annotated[Path, typer.Argument(help="JSON spec: header, business, traces, attachments (paths)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="the .edxml file to write")],
    key: Annotated[Path | None, typer.Option("--key", help="organisation RSA key (PEM) to sign with")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", help="its certificate (PEM), then the chain")] = None,
) -> None:
    """Write an edXML package; signed (enveloped XML-DSig) when --key and --cert are given."""
    if (key is None) != (cert is None):
        typer.echo("error [bad_signature]: --key and --cert go together", err=True)
        raise typer.Exit(2)
    try:
        package = package_from_spec(json.loads(spec.read_text(encoding="utf-8")), spec.parent)
        if key is None:
            with open(out, "wb") as stream:
                size = write_package(package, stream)
        else:
            with tempfile.NamedTemporaryFile(suffix=".edxml") as unsigned:
                write_package(package, unsigned)
                unsigned.flush()
                with open(out, "wb") as stream:
                    size = sign_package(unsigned.name, stream, key.read_bytes(), cert.read_bytes())
    except EdxmlError as exc:
        out.unlink(missing_ok=True)
        _fail(exc)
    except (KeyError, TypeError, ValueError) as exc:
        typer.echo(f"error [invalid_spec]: {exc!r}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"wrote {out} ({size} bytes)")
