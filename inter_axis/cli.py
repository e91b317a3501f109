"""``docsvc axis parse`` / ``docsvc axis build`` (wired into docsvc's CLI by the application)."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from inter_axis.build import write_package
from inter_axis.errors import EdxmlError
from inter_axis.model import (
    STATUS_CODES,
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
    StatusMessage,
    TraceHeader,
)
from inter_axis.parse import read_package
from inter_axis.xmldsig import load_signing_key, sign_package_with, verify_package

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


def _fail_io(exc: OSError) -> None:
    """A file we had to read or write failed: say which, without a traceback."""
    where = f": {exc.filename}" if exc.filename else ""
    typer.echo(f"error [io_error]: {exc.strerror or exc}{where}", err=True)
    raise typer.Exit(2) from exc


_NO_TRUST_NOTE = "the certificate is NOT checked against a trust root (pass --trust ROOT.pem)"
_REASONS = {
    "no_signature": "the package is not signed",
    "not_xmldsig": "a VNPT-style Signature in the edXML namespace, which no XML-DSig verifier can check",
    "misplaced_signature": "an XML-DSig Signature outside edXMLHeader",
    "multiple_signatures": "more than one Signature",
    "malformed_signature": "an element of the Signature is missing, repeated, empty or garbled",
    "unsupported_algorithm": "an algorithm or key other than RSA-SHA256 (2048+ bits), SHA-256, C14N",
    "bad_reference": "the signature does not cover exactly the whole document",
    "no_certificate": "no certificate in KeyInfo",
    "bad_certificate": "the certificate in KeyInfo cannot be read",
    "digest_mismatch": "the document was changed after signing",
    "signature_mismatch": "the signature value does not match the embedded certificate",
    "untrusted_signer": "the certificate does not chain to a trusted root",
    "certificate_expired": "the certificate was not valid at the time of the check",
}


def _signature(file: Path, trust: list[Path] | None, spool: str) -> dict:
    """Verify always: without trust roots the check still tells whether digest and signature value
    hold for the embedded certificate, which is worth knowing even if nobody vouches for that key."""
    roots = [path.read_bytes() for path in trust or ()]
    check = verify_package(file, roots, spool_dir=spool)
    return {
        "status": check.reason if trust or not check.intact else "intact",
        "reason": check.reason,
        "valid": check.valid,
        "intact": check.intact,
        "trust_checked": bool(trust),
        "signer": check.signer,
    }


def _signature_line(signature: dict) -> str:
    signer = f" (signer {signature['signer']})" if signature["signer"] else ""
    reason = signature["reason"]
    if signature["valid"]:
        return f"signature: valid{signer}, certificate trusted"
    if signature["intact"]:
        checked = "digest and signature value check out against the embedded certificate"
        if not signature["trust_checked"]:
            return f"signature: {checked}{signer}; {_NO_TRUST_NOTE}"
        return f"signature: NOT valid: {reason} ({_REASONS.get(reason, reason)}); {checked}{signer}"
    note = "" if signature["trust_checked"] or reason in ("no_signature", "not_xmldsig") else f"; {_NO_TRUST_NOTE}"
    return f"signature: NOT valid: {reason} ({_REASONS.get(reason, reason)}){signer}{note}"


def _d(value: date | None) -> str:
    return f"{value:%Y/%m/%d}" if value else ""


def _line(label: str, *parts: object) -> list[str]:
    """``label: parts`` when any part has a value (a field absent or empty prints nothing)."""
    text = " ".join(str(p) for p in parts if p not in (None, "", ()))
    return [f"{label}: {text}"] if text else []


def _organization(org: Organization) -> str:
    extra = [f"{name} {value}" for name, value in (
        ("OrganizationInCharge", org.organization_in_charge), ("OrganAdd", org.organ_add), ("Email", org.email),
        ("Telephone", org.telephone), ("Fax", org.fax), ("Website", org.website)) if value]
    return " ".join(filter(None, [org.organ_id, org.organ_name])) + (f" ({'; '.join(extra)})" if extra else "")


def _response_for(response: ResponseFor) -> str:
    parts = [response.organ_id, response.code, _d(response.promulgation_date)]
    return " ".join(p for p in parts if p) + f" (DocumentId {response.document_id})"


def _staff(staff: StaffInfo | None) -> list[str]:
    if staff is None:
        return []
    return _line("StaffInfo", ", ".join(v for v in (staff.department, staff.staff, staff.email, staff.mobile) if v))


def _traces(traces) -> list[str]:
    return [f"TraceHeader: {t.organ_id} {t.timestamp:%Y/%m/%d %H:%M:%S}" if t.timestamp else
            f"TraceHeader: {t.organ_id}" for t in traces]


def _document_lines(document: DocumentPackage) -> list[str]:
    header = document.header
    info = header.other_info
    lines = [f"From: {_organization(header.from_org)}"]
    lines += [f"To: {_organization(org)}" for org in header.to]
    lines += _line("DocumentId", header.effective_document_id)
    lines += _line("Code", str(header.code) if header.code.number or header.code.notation else "")
    lines += _line("PromulgationInfo", ", ".join(v for v in (header.promulgation_place, _d(header.promulgation_date))
                                                 if v))
    doc_type = header.document_type
    lines += _line("DocumentType", doc_type.type_name, f"(Type {doc_type.type}, TypeDetail {doc_type.type_detail})")
    lines += _line("Subject", header.subject)
    lines += _line("Content", header.content)
    signer = header.signer
    lines += _line("SignerInfo", ", ".join(v for v in (signer.competence, signer.position, signer.full_name) if v))
    lines += _line("DueDate", _d(header.due_date))
    other = [f"Priority {info.priority}", f"SphereOfPromulgation {info.sphere_of_promulgation}",
             f"TyperNotation {info.typer_notation}", f"PromulgationAmount {info.promulgation_amount}",
             f"PageAmount {info.page_amount}", f"Direction {str(info.direction).lower()}"]
    lines += _line("OtherInfo", "; ".join(o for o in other if not o.endswith(" ")))
    lines += [f"Appendix: {appendix}" for appendix in info.appendixes]
    lines += [f"ResponseFor: {_response_for(r)}" for r in header.response_for]
    lines += _line("SteeringType", header.steering_type)
    lines += _line("ToPlaces", "; ".join(header.to_places))
    lines += _traces(document.traces)
    business = document.business
    if business is not None:
        lines += _line("Bussiness", f"{int(business.doc_type)} ({business.doc_type.name.lower()})",
                       business.reason and f"\"{business.reason}\"",
                       business.document_id and f"about {business.document_id}")
        lines += [f"Receiver: {r.organ_id} ({'added' if r.receiver_type == 1 else 'removed'})"
                  for r in business.receivers]
        lines += [f"ReplacementInfo: {r.document_id} for {', '.join(r.organ_ids) or '-'}"
                  for r in business.replacements]
        lines += _staff(business.staff)
    return lines


def _status_lines(status: StatusMessage) -> list[str]:
    meaning = STATUS_CODES.get(status.status_code, "")
    lines = [f"From: {_organization(status.from_org)}", f"StatusCode: {status.status_code} ({meaning})"]
    lines += [f"ResponseFor: {_response_for(status.response_for)}"]
    lines += _line("Description", status.description)
    lines += _line("Timestamp", f"{status.timestamp:%Y/%m/%d %H:%M:%S}" if status.timestamp else "")
    lines += _staff(status.staff)
    return lines + _traces(status.traces)


@axis_app.command("parse")
def parse_command(
    file: Annotated[Path, typer.Argument(help="the .edxml package")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    trust: Annotated[list[Path] | None, typer.Option("--trust", help="trusted root certificate (PEM)")] = None,
) -> None:
    """Print every header field present, statuses, attachments (size, SHA-256), warnings and the
    signature status (without --trust: whether it holds for the embedded certificate)."""
    try:
        with tempfile.TemporaryDirectory(prefix="axis-parse-") as spool, read_package(file, spool_dir=spool) as parsed:
            signature = _signature(file, trust, spool)
            result = {
                "kind": parsed.kind,
                "document": _plain(parsed.document),
                "status": _plain(parsed.status),
                "attachments": [
                    {
                        "content_id": a.content_id,
                        "name": a.name,
                        "content_type": a.content_type,
                        "description": a.description,
                        "size": a.size,
                        "sha256": a.sha256,
                    }
                    for a in parsed.attachments
                ],
                "warnings": list(parsed.warnings),
                "signature": signature,
            }
            lines = [f"kind: {parsed.kind}"]
            lines += _document_lines(parsed.document) if parsed.kind == "document" else _status_lines(parsed.status)
    except EdxmlError as exc:
        _fail(exc)
    except OSError as exc:
        _fail_io(exc)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    for att in result["attachments"]:
        about = f" ({att['description']})" if att["description"] else ""
        lines.append(f"attachment: {att['content_id']} {att['name']} {att['content_type']}{about} "
                     f"{att['size']} bytes sha256={att['sha256']}")
    lines += [f"warning: {warning}" for warning in result["warnings"]]
    lines.append(_signature_line(signature))
    typer.echo("\n".join(lines))


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


@contextmanager
def _replacing(out: Path) -> Iterator[BinaryIO]:
    """A stream whose bytes become ``out`` only once everything was written: on any failure the
    partial file is removed and an existing ``out`` is left as it was."""
    try:
        handle, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    except OSError as exc:  # name the file asked for, not our temporary one
        raise OSError(exc.errno, exc.strerror, str(out)) from exc
    partial = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
        umask = os.umask(0)  # mkstemp makes the file 0600; the result should have the usual mode
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


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
        signing_key = load_signing_key(key.read_bytes(), cert.read_bytes()) if key is not None else None
        with _replacing(out) as stream:
            if signing_key is None:
                size = write_package(package, stream)
            else:
                with tempfile.TemporaryFile(prefix="axis-unsigned-") as unsigned:
                    write_package(package, unsigned)
                    unsigned.seek(0)
                    size = sign_package_with(unsigned, stream, signing_key)
    except EdxmlError as exc:
        _fail(exc)
    except OSError as exc:  # e.g. an attachment file that does not exist
        _fail_io(exc)
    except (KeyError, TypeError, ValueError) as exc:
        typer.echo(f"error [invalid_spec]: {exc!r}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"wrote {out} ({size} bytes)")
