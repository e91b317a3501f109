"""``HubAxisTransport``: the ``AxisTransport`` over the HTTP API of a ``docsvc axis-hub``.

API (JSON; errors are ``{"error": {"code", "message", "detail"}}`` with the codes of
``inter_axis.transport``); every request carries ``Authorization: Bearer <agency secret>``
and ``X-Agency-Id``:

- ``POST /v1/messages`` body = the package (``application/xml``, with ``Content-Length``),
  header ``Idempotency-Key`` → 201 receipt (200 with ``replayed`` for a retry);
- ``GET /v1/messages?limit=N`` → pending packages for this agency;
- ``GET /v1/messages/{id}/content`` → the package bytes, ``X-Content-SHA256``;
- ``POST /v1/messages/{id}/ack``; ``POST /v1/acks`` with ``{"message_ids": [...]}`` (up to 1000; 404
  ``not_found`` naming the ids not addressed to us, the others are acknowledged);
- ``GET /v1/sent/{id}``; ``GET /v1/agencies``.

The client never retries: retry policy belongs to the caller (the outbox job), which keeps
the idempotency key with the outgoing record.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import httpx

from inter_axis.transport import (
    ERROR_CODES,
    INVALID_PACKAGE,
    NOT_FOUND,
    TOO_LARGE,
    UNAUTHORIZED,
    UNAVAILABLE,
    Agency,
    DeliveryState,
    PackageSource,
    ReceivedRef,
    SendReceipt,
    SentMessage,
    TransportError,
)

CHUNK = 256 * 1024
#: Most packages one ``list_received`` returns (the hub's cap).
MAX_LIST = 1000


@dataclass(frozen=True)
class HubEndpointSpec:
    """Where the axis hub is and who we are on it."""

    endpoint: str
    """Base URL, e.g. ``http://127.0.0.1:8100``."""
    agency_id: str
    """Our OrganId on the axis."""
    secret: str
    """Our agency secret (sent as a bearer token)."""
    max_package_bytes: int = 300 * 1024**2
    """Refuse larger packages locally, before uploading anything."""
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    """Longest wait for the hub to answer once the request is sent (it inspects and fsyncs)."""
    write_timeout: float = 60.0
    """Longest stall while uploading one chunk."""


class HubAxisTransport:
    """``AxisTransport`` for a hub reached over HTTP. Thread-safe (one pooled ``httpx.Client``)."""

    def __init__(self, spec: HubEndpointSpec, *, transport: httpx.BaseTransport | None = None) -> None:
        self.spec = spec
        self.agency_id = spec.agency_id
        timeout = httpx.Timeout(
            connect=spec.connect_timeout, read=spec.read_timeout, write=spec.write_timeout, pool=spec.connect_timeout
        )
        self._http = httpx.Client(
            base_url=spec.endpoint.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {spec.secret}", "X-Agency-Id": spec.agency_id},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubAxisTransport:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- sending -----------------------------------------------------------------------------
    def send(self, package: PackageSource, *, idempotency_key: str) -> SendReceipt:
        return self._send(package, idempotency_key, expect_kind=None)

    def update_status(self, package: PackageSource, *, idempotency_key: str) -> SendReceipt:
        return self._send(package, idempotency_key, expect_kind="status")

    def _send(self, package: PackageSource, idempotency_key: str, expect_kind: str | None) -> SendReceipt:
        with _sized_file(package) as (fh, size):
            if size > self.spec.max_package_bytes:
                raise TransportError(
                    TOO_LARGE,
                    f"package is {size} bytes; the limit is {self.spec.max_package_bytes}",
                    {"size": size, "limit": self.spec.max_package_bytes},
                )
            headers = {
                "Content-Type": "application/xml",
                "Content-Length": str(size),
                "Idempotency-Key": idempotency_key,
            }
            params = {"kind": expect_kind} if expect_kind else None
            body = _read_chunks(fh)
            response = self._request("POST", "/v1/messages", content=body, headers=headers, params=params)
        data = response.json()
        return SendReceipt(
            message_id=data["message_id"],
            document_id=data["document_id"],
            recipients=tuple(data["recipients"]),
            kind=data["kind"],
            replayed=data["replayed"],
        )

    # -- receiving ---------------------------------------------------------------------------
    def list_received(self, limit: int = 100) -> list[ReceivedRef]:
        if not 1 <= limit <= MAX_LIST:
            raise ValueError(f"limit must be between 1 and {MAX_LIST}")
        items = self._request("GET", "/v1/messages", params={"limit": limit}).json()["messages"]
        return [
            ReceivedRef(
                message_id=i["message_id"],
                from_organ_id=i["from_organ_id"],
                document_id=i["document_id"],
                kind=i["kind"],
                status_code=i["status_code"],
                received_at=datetime.fromisoformat(i["received_at"]),
                size=i["size"],
                sha256=i["sha256"],
            )
            for i in items
        ]

    def get(self, message_id: str, out: BinaryIO) -> int:
        digest = hashlib.sha256()
        size = 0
        try:
            with self._http.stream("GET", f"/v1/messages/{message_id}/content") as response:
                if response.status_code != 200:
                    response.read()
                    raise _error_from(response)
                expected = response.headers.get("X-Content-SHA256", "")
                for chunk in response.iter_bytes(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise TransportError(UNAVAILABLE, f"download of {message_id} failed: {exc}") from exc
        if digest.hexdigest() != expected:
            raise TransportError(
                UNAVAILABLE,
                f"download of {message_id} does not match its SHA-256; fetch again",
                {"expected": expected, "got": digest.hexdigest()},
            )
        return size

    def ack(self, message_id: str) -> None:
        self._request("POST", f"/v1/messages/{message_id}/ack")

    def ack_many(self, message_ids: list[str]) -> None:
        """Acknowledge several received packages in one request (``ack`` for each, at the cost of one).
        ``not_found`` names those not addressed to us; the others are acknowledged all the same."""
        for start in range(0, len(message_ids), MAX_LIST):
            self._request("POST", "/v1/acks", json={"message_ids": list(message_ids[start:start + MAX_LIST])})

    def sent_status(self, message_id: str) -> SentMessage:
        data = self._request("GET", f"/v1/sent/{message_id}").json()
        return SentMessage(
            message_id=data["message_id"],
            document_id=data["document_id"],
            kind=data["kind"],
            received_at=datetime.fromisoformat(data["received_at"]),
            deliveries=tuple(
                DeliveryState(recipient=d["recipient"], state=d["state"], delivered_at=_parse_time(d["delivered_at"]))
                for d in data["deliveries"]
            ),
        )

    def list_agencies(self) -> list[Agency]:
        return [
            Agency(organ_id=a["organ_id"], name=a["name"])
            for a in self._request("GET", "/v1/agencies").json()["agencies"]
        ]

    # -- plumbing ----------------------------------------------------------------------------
    def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(UNAVAILABLE, f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise _error_from(response)
        return response


def _error_from(response: httpx.Response) -> TransportError:
    """Translate a hub error response; anything unrecognisable (a proxy's 502, a crash) is ``unavailable``."""
    try:
        error = response.json()["error"]
        code, message, detail = error["code"], error["message"], error.get("detail") or {}
    except (ValueError, KeyError, TypeError):
        code, message, detail = None, response.text[:200], {}
    if response.status_code == 401:
        code = UNAUTHORIZED
    elif response.status_code == 404 and code not in ERROR_CODES:
        code = NOT_FOUND
    elif code not in ERROR_CODES or response.status_code >= 500:
        code = UNAVAILABLE
    return TransportError(code, f"HTTP {response.status_code}: {message}", detail)


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _read_chunks(fh: BinaryIO) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK):
        yield chunk


@contextmanager
def _sized_file(package: PackageSource) -> Iterator[tuple[BinaryIO, int]]:
    """Open ``package`` so its size is known up front: the hub then refuses an oversize package
    from ``Content-Length`` before any body arrives. A non-seekable stream is spooled to a
    temporary file first."""
    if isinstance(package, str | Path):
        try:
            fh = open(package, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise TransportError(INVALID_PACKAGE, f"cannot read package {package}: {exc}") from exc
        with fh:
            yield fh, os.fstat(fh.fileno()).st_size
        return
    if package.seekable():
        start = package.tell()
        size = package.seek(0, os.SEEK_END) - start
        package.seek(start)
        yield package, size
        return
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(package, spool, CHUNK)
        size = spool.tell()
        spool.seek(0)
        yield spool, size
