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
- ``GET /v1/sent/{id}``; ``GET /v1/agencies``;
- ``POST /v1/messages/batch`` (``send_many``) and ``POST /v1/messages/contents`` (``get_many``), below.

Batches travel in one framing both ways (media type ``application/vnd.docsvc.axis-batch``): one
line of JSON, the *manifest* (UTF-8, ended by ``\n``, at most 256 KiB), then the packages' bytes
one after another, each exactly as long as the manifest says. Nothing is escaped or encoded, so
the hub cuts the stream at known offsets straight into its package files, and a reader never
holds more than a buffer.

- ``send_many`` sends ``{"packages": [{"idempotency_key": K, "size": N}, ...]}`` then the bytes,
  with ``Content-Length`` = manifest line + sizes. The hub answers 200
  ``{"results": [...]}``, one per package in order: a receipt (``message_id``, ``document_id``,
  ``recipients``, ``kind``, ``replayed``) or ``{"error": {"code", "message", "detail"}}``. The
  request as a whole is refused with the usual error body: 413 ``too_large`` over the hub's caps
  (``detail["reason"]`` ``batch_count``: more than 100 packages; ``batch_bytes``: more than
  32 MiB of packages), 422 ``invalid_package`` (``batch_manifest``, ``batch_framing``) for a
  body that does not follow the format, 401, 503. The client keeps within the caps by itself:
  a longer batch goes as several requests, in order, and a package over the byte cap alone
  through ``POST /v1/messages``.
- ``get_many`` sends ``{"message_ids": [...]}`` (at most 100) and receives a manifest
  ``{"packages": [{"message_id", "size", "sha256"} | {"message_id", "error": {...}}, ...]}``, one
  per id in order, then the bytes of each package found.

The client never retries: retry policy belongs to the caller (the outbox job), which keeps
the idempotency key with the outgoing record.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
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
    PackageKind,
    PackageSource,
    ReceivedRef,
    SendReceipt,
    SentMessage,
    TransportError,
)

CHUNK = 256 * 1024
#: Most packages one ``list_received`` returns (the hub's cap).
MAX_LIST = 1000
BATCH_MEDIA_TYPE = "application/vnd.docsvc.axis-batch"
#: Longest manifest line a batch answer may have (the hub's limit for the ones it reads).
MAX_MANIFEST_BYTES = 256 * 1024
#: Codes that concern the request as a whole, never one package of a batch: they are raised.
REQUEST_CODES = frozenset({UNAUTHORIZED, UNAVAILABLE})
#: What a message id handed to ``get_many`` may look like (it names a file in the caller's directory).
MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


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
    max_batch_packages: int = 100
    """Most packages in one ``send_many`` request (the hub's ``--max-batch-packages``)."""
    max_batch_bytes: int = 32 * 1024**2
    """Most package bytes in one ``send_many`` request (the hub's ``--max-batch-bytes``)."""
    max_get_many: int = 100
    """Most packages in one ``get_many`` request (the hub's cap)."""


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
        return _receipt(response.json())

    def send_many(self, packages: Sequence[tuple[PackageSource, str] | tuple[PackageSource, str, PackageKind]]
                  ) -> list[SendReceipt | TransportError]:
        """``AxisTransport.send_many``: one ``POST /v1/messages/batch`` per ``max_batch_packages`` packages
        or ``max_batch_bytes`` bytes, in order (a package over the byte cap goes alone, as ``send``).
        A package that cannot be read, or is over ``max_package_bytes``, is refused here without
        being uploaded. A failed request raises: those of the batch sent before it were accepted."""
        outcomes: list[SendReceipt | TransportError | None] = [None] * len(packages)
        with ExitStack() as stack:
            group: list[tuple[int, BinaryIO, int, int, str, str | None]] = []
            group_bytes = 0
            for index, (package, key, *kind) in enumerate(packages):
                kind = kind[0] if kind else None
                try:
                    fh, size = stack.enter_context(_sized_file(package))
                except TransportError as exc:
                    outcomes[index] = exc
                    continue
                start = fh.tell()  # read from here when sent (one stream may be given twice)
                if size > self.spec.max_package_bytes:
                    outcomes[index] = TransportError(
                        TOO_LARGE, f"package is {size} bytes; the limit is {self.spec.max_package_bytes}",
                        {"size": size, "limit": self.spec.max_package_bytes})
                    continue
                if group and (len(group) == self.spec.max_batch_packages
                              or group_bytes + size > self.spec.max_batch_bytes):
                    self._send_batch(group, outcomes)
                    group, group_bytes = [], 0
                if size > self.spec.max_batch_bytes:  # too big for any batch: alone, as send does it
                    fh.seek(start)
                    outcomes[index] = self._send_alone(fh, key, kind)
                    continue
                group.append((index, fh, start, size, key, kind))
                group_bytes += size
            if group:
                self._send_batch(group, outcomes)
        return outcomes

    def _send_alone(self, fh: BinaryIO, key: str, kind: str | None) -> SendReceipt | TransportError:
        try:
            return self._send(fh, key, expect_kind=kind)
        except TransportError as exc:
            if exc.code in REQUEST_CODES:
                raise
            return exc

    def _send_batch(self, group: list[tuple[int, BinaryIO, int, int, str, str | None]],
                    outcomes: list[SendReceipt | TransportError | None]) -> None:
        entries = [{"idempotency_key": key, "size": size, **({"kind": kind} if kind else {})}
                   for *_, size, key, kind in group]
        manifest = json.dumps({"packages": entries}, separators=(",", ":")).encode() + b"\n"

        def body() -> Iterator[bytes]:
            pieces, gathered = [manifest], len(manifest)
            for _, fh, start, size, _, _ in group:
                fh.seek(start)
                left = size
                while left:
                    piece = fh.read(min(left, CHUNK))
                    if not piece:
                        raise TransportError(INVALID_PACKAGE, f"package ended {left} bytes before its size")
                    pieces.append(piece)
                    gathered += len(piece)
                    left -= len(piece)
                    if gathered >= 4 * CHUNK:
                        yield b"".join(pieces)
                        pieces, gathered = [], 0
            if pieces:
                yield b"".join(pieces)

        headers = {"Content-Type": BATCH_MEDIA_TYPE,
                   "Content-Length": str(len(manifest) + sum(size for *_, size, _, _ in group))}
        results = self._request("POST", "/v1/messages/batch", content=body(), headers=headers).json()["results"]
        if len(results) != len(group):
            raise TransportError(UNAVAILABLE, f"the hub answered {len(results)} outcomes for {len(group)} packages")
        for (index, *_), result in zip(group, results, strict=True):
            outcomes[index] = _item_error(result["error"]) if "error" in result else _receipt(result)

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

    def get_many(self, message_ids: Sequence[str], directory: Path) -> list[Path | TransportError]:
        """``AxisTransport.get_many``: one ``POST /v1/messages/contents`` per ``max_get_many`` ids. Each
        file is written under a temporary name and renamed once its SHA-256 matches, so a path
        returned is a whole, checked package, and a failure leaves no partial file."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        outcomes: list[Path | TransportError | None] = [None] * len(message_ids)
        wanted = []
        for index, message_id in enumerate(message_ids):
            if isinstance(message_id, str) and MESSAGE_ID.fullmatch(message_id):
                wanted.append(index)
            else:
                # Another axis may list ids our batch route does not take (dots, colons, longer):
                # such a package is still asked for, alone, and its file named by the id's digest so
                # that no id can name a file outside ``directory``. Never a not_found of our own making:
                # the receiver would reject and acknowledge a package it never saw.
                outcomes[index] = self._get_alone(message_id, directory)
        for start in range(0, len(wanted), self.spec.max_get_many):
            indexes = wanted[start:start + self.spec.max_get_many]
            self._get_batch([message_ids[i] for i in indexes], indexes, directory, outcomes)
        return outcomes

    def _get_alone(self, message_id: str, directory: Path) -> Path | TransportError:
        """One package by ``get`` into ``directory`` under a name derived from its id's SHA-256;
        ``not_found`` is its outcome, any other failure raises as a failed batch would."""
        name = "id-" + hashlib.sha256(str(message_id).encode()).hexdigest()[:40]
        target, partial = directory / f"{name}.edxml", directory / f".{name}.{secrets.token_hex(4)}.part"
        try:
            with open(partial, "wb") as out:
                self.get(message_id, out)
            os.replace(partial, target)
            return target
        except TransportError as exc:
            if exc.code != NOT_FOUND:
                raise
            return exc
        finally:
            partial.unlink(missing_ok=True)

    def _get_batch(self, ids: list[str], indexes: list[int], directory: Path,
                   outcomes: list[Path | TransportError | None]) -> None:
        try:
            with self._http.stream("POST", "/v1/messages/contents", json={"message_ids": ids}) as response:
                if response.status_code != 200:
                    response.read()
                    raise _error_from(response)
                reader = _Framed(response.iter_bytes(CHUNK))
                try:
                    entries = json.loads(reader.line(MAX_MANIFEST_BYTES))["packages"]
                    if [e["message_id"] for e in entries] != ids:
                        raise ValueError("the manifest does not list the ids asked for, in order")
                except (ValueError, KeyError, TypeError) as exc:
                    raise TransportError(UNAVAILABLE, f"the hub's answer is not a package batch: {exc}") from exc
                for index, entry in zip(indexes, entries, strict=True):
                    if "error" in entry:
                        outcomes[index] = _item_error(entry["error"])
                    else:
                        outcomes[index] = _receive(reader, entry, directory, self.spec.max_package_bytes)
                if reader.has_more():
                    raise TransportError(UNAVAILABLE, "the hub's answer goes on after its last package")
        except BaseException as exc:
            # The request failed as a whole: the caller gets no path, so none of its files may stay.
            for index in indexes:
                if isinstance(outcomes[index], Path):
                    outcomes[index].unlink(missing_ok=True)
                outcomes[index] = None
            if isinstance(exc, httpx.HTTPError):
                raise TransportError(UNAVAILABLE, f"download of {len(ids)} packages failed: {exc}") from exc
            raise

    def ack(self, message_id: str) -> None:
        self._request("POST", f"/v1/messages/{message_id}/ack")

    def ack_many(self, message_ids: Sequence[str]) -> None:
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


def _receipt(data: dict) -> SendReceipt:
    return SendReceipt(message_id=data["message_id"], document_id=data["document_id"],
                       recipients=tuple(data["recipients"]), kind=data["kind"], replayed=data["replayed"])


def _item_error(error: dict) -> TransportError:
    """One package's refusal inside a batch answer (an unknown code reads as ``unavailable``)."""
    code = error.get("code")
    return TransportError(code if code in ERROR_CODES else UNAVAILABLE, str(error.get("message", "")),
                          error.get("detail") or {})


class _Framed:
    """Reads a batch answer: its manifest line, then each package's bytes by size."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def _more(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._buffer += chunk
                return True
        return False

    def line(self, limit: int) -> bytes:
        while (end := self._buffer.find(b"\n")) == -1:
            if len(self._buffer) > limit or not self._more():
                raise ValueError("no manifest line")
        line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
        return line

    def has_more(self) -> bool:
        """Whether any byte is left after what was read."""
        return bool(self._buffer) or self._more()

    def copy(self, size: int, out: BinaryIO, digest) -> None:
        """Exactly ``size`` bytes to ``out`` (and the digest)."""
        while size:
            if not self._buffer and not self._more():
                raise TransportError(UNAVAILABLE, f"the hub's answer ended {size} bytes early")
            piece, self._buffer = self._buffer[:size], self._buffer[size:]
            digest.update(piece)
            out.write(piece)
            size -= len(piece)


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _receive(reader: _Framed, entry: dict, directory: Path, max_bytes: int) -> Path | TransportError:
    """One package of a ``get_many`` answer to ``directory/<id>.edxml``, or its error if its bytes do not
    match their SHA-256 (no file is left then). Written under a temporary name and renamed, so the
    file exists only whole and checked. A size or digest that is not one (negative, not a number,
    beyond the package limit) breaks the answer's framing: the whole request fails as unavailable."""
    message_id, size, expected = entry["message_id"], entry.get("size"), entry.get("sha256")
    if type(size) is not int or not 0 <= size <= max_bytes or not isinstance(expected, str) \
            or not _SHA256_HEX.fullmatch(expected):
        raise TransportError(UNAVAILABLE, f"the hub's answer describes {message_id} with an impossible "
                             f"size or digest ({str(size)[:20]!r}, {str(expected)[:70]!r})")
    target = directory / f"{message_id}.edxml"
    partial = directory / f".{message_id}.{secrets.token_hex(4)}.part"
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            reader.copy(size, out, digest)
        if digest.hexdigest() != expected:
            return TransportError(UNAVAILABLE, f"download of {message_id} does not match its SHA-256; fetch again",
                                  {"expected": expected, "got": digest.hexdigest()})
        os.replace(partial, target)
        return target
    finally:
        partial.unlink(missing_ok=True)


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
