"""The hub's side of the batch wire format (``send_many``, ``get_many``; the format itself is
documented in ``inter_axis.client``): a body of one JSON manifest line, then the packages' bytes
one after another.

``BatchReceiver`` takes a ``send_many`` body as it streams in: it cuts the bytes at the sizes the
manifest declares and writes each package to its own upload file, holding at most
``BATCH_WRITE_BYTES`` in memory (pieces of several packages are written in one thread-pool hop).
``open_contents`` prepares a ``get_many`` answer: small packages are read in the same hop that
looks them up, larger ones are streamed from their open files."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool

from docsvc.axis_hub.service import IDEMPOTENCY_KEY, HubService, Incoming
from inter_axis.transport import (
    INVALID_PACKAGE,
    NOT_FOUND,
    TOO_LARGE,
    UNAVAILABLE,
    SendReceipt,
    TransportError,
)

#: Longest manifest line (a hundred entries take ~20 KB).
MAX_MANIFEST_BYTES = 256 * 1024
#: Bytes of a batch gathered in memory before they are written out, and read ahead for a get_many.
BATCH_WRITE_BYTES = 4 * 1024 * 1024
BATCH_MEDIA_TYPE = "application/vnd.docsvc.axis-batch"
#: One line per get_many answer naming the packages it carries: the access log's line for the
#: request names none, and an operator must be able to tell which agency downloaded which package.
fetch_log = logging.getLogger("docsvc.axis_hub.fetch")


def _framing(message: str) -> TransportError:
    return TransportError(INVALID_PACKAGE, message, {"reason": "batch_framing"})


class BatchReceiver:
    """One ``send_many`` body on its way in. ``feed`` runs on the event loop (no I/O);
    ``write_pending``, ``accept`` and ``discard`` block and belong in the thread pool."""

    def __init__(self, service: HubService, declared_length: int | None) -> None:
        self.service = service
        self.declared = declared_length
        self.items: list[Incoming] | None = None
        self._head = bytearray()
        self._begins: list[int] = []
        self._ends: list[int] = []
        self._total = 0
        self._received = 0
        self._current = 0
        self._pending: list[tuple[int, bytes]] = []
        self._pending_size = 0
        self._handed_over = False

    # -- on the event loop ---------------------------------------------------------------------
    def feed(self, chunk: bytes) -> bool:
        """Take the next piece of the body; True when enough is gathered to be written out now."""
        if self.items is None:
            self._head += chunk
            end = self._head.find(b"\n")
            if end == -1:
                if len(self._head) > MAX_MANIFEST_BYTES:
                    raise TransportError(INVALID_PACKAGE, f"the batch manifest exceeds {MAX_MANIFEST_BYTES} bytes",
                                         {"reason": "batch_manifest"})
                return False
            self._manifest(bytes(self._head[:end]))
            chunk = bytes(self._head[end + 1:])
            self._head = bytearray()
        self._take(chunk)
        return self._pending_size >= BATCH_WRITE_BYTES

    def _manifest(self, raw: bytes) -> None:
        service = self.service
        try:
            entries = json.loads(raw)["packages"]
            if not isinstance(entries, list):
                raise TypeError("packages is not a list")
            if len(entries) > service.max_batch_packages:
                raise TransportError(TOO_LARGE, f"a batch carries at most {service.max_batch_packages} packages",
                                     {"reason": "batch_count", "count": len(entries),
                                      "limit": service.max_batch_packages})
            keys = [entry["idempotency_key"] for entry in entries]
            sizes = [entry["size"] for entry in entries]
            kinds = [entry.get("kind") for entry in entries]
            if not all(isinstance(k, str) for k in keys) or not all(
                    type(n) is int and n >= 0 for n in sizes):
                raise TypeError("idempotency_key must be a string and size a whole number")
            if not all(kind in (None, "document", "status") for kind in kinds):
                raise TypeError("kind must be document or status")
        except (ValueError, KeyError, TypeError) as exc:
            raise TransportError(INVALID_PACKAGE, f"unreadable batch manifest: {exc}",
                                 {"reason": "batch_manifest"}) from exc
        self._total = sum(sizes)
        if self._total > service.max_batch_bytes:
            raise TransportError(TOO_LARGE, f"a batch carries at most {service.max_batch_bytes} bytes of packages",
                                 {"reason": "batch_bytes", "size": self._total, "limit": service.max_batch_bytes})
        if self.declared is not None and self.declared != len(raw) + 1 + self._total:
            raise _framing("the body's length is not that of the manifest and the sizes it declares")
        self.items = []
        for key, size, kind in zip(keys, sizes, kinds, strict=True):
            refused = None
            if not IDEMPOTENCY_KEY.match(key):
                refused = TransportError(INVALID_PACKAGE, "Idempotency-Key must be 8-128 URL-safe characters",
                                         {"reason": "idempotency_key"})
            elif size > service.max_package_bytes:
                refused = TransportError(TOO_LARGE, f"package of {size} bytes exceeds {service.max_package_bytes}",
                                         {"size": size, "limit": service.max_package_bytes})
            self.items.append(Incoming(key, None, expect_kind=kind, refused=refused))
            self._begins.append(self._ends[-1] if self._ends else 0)
            self._ends.append(self._begins[-1] + size)

    def _take(self, data: bytes) -> None:
        if not data:
            return
        start, stop = self._received, self._received + len(data)
        if stop > self._total:
            raise _framing("the body is longer than the manifest declares")
        i, ends, begins, count = self._current, self._ends, self._begins, len(self._ends)
        while i < count and ends[i] <= start:
            i += 1
        while i < count and begins[i] < stop:
            lo, hi = max(begins[i], start), min(ends[i], stop)
            if self.items[i].refused is None:  # a refused package's bytes are skipped
                self._pending.append((i, data[lo - start:hi - start]))
                self._pending_size += hi - lo
            if ends[i] > stop:
                break
            i += 1
        self._current, self._received = i, stop

    # -- in the thread pool --------------------------------------------------------------------
    def write_pending(self) -> None:
        """Write out what was gathered. A package whose last byte is written is finished (fsynced,
        its file closed) at once: a batch keeps at most a couple of files open, whatever its count."""
        storage = self.service.storage
        for i, data in self._pending:
            item = self.items[i]
            if item.upload is None:
                item.upload = storage.begin()
            storage.write(item.upload, data)
            if item.upload.size == self._ends[i] - self._begins[i]:
                storage.finish(item.upload)
        self._pending, self._pending_size = [], 0

    def accept(self, sender: str) -> list[SendReceipt | TransportError]:
        """The body has ended: write the rest, then accept or refuse each package (fsync, checks,
        placing and one transaction; see ``HubService.accept_many``)."""
        if self.items is None:
            raise TransportError(INVALID_PACKAGE, "the batch has no manifest line", {"reason": "batch_manifest"})
        if self._received != self._total:
            raise _framing("the body is shorter than the manifest declares")
        self.write_pending()
        for item in self.items:
            if item.refused is None and item.upload is None:  # an empty package: refused as malformed
                item.upload = self.service.storage.begin()
        self._handed_over = True  # accept_many disposes of the uploads, whatever happens
        return self.service.accept_many(sender, self.items)

    @property
    def holds_files(self) -> bool:
        return not self._handed_over and any(item.upload is not None for item in self.items or ())

    def discard(self) -> None:
        for item in self.items or ():
            if item.upload is not None:
                self.service.storage.discard(item.upload)


def outcome_json(outcome: SendReceipt | TransportError) -> dict:
    if isinstance(outcome, TransportError):
        return {"error": {"code": outcome.code, "message": outcome.message, "detail": outcome.detail}}
    return {"message_id": outcome.message_id, "document_id": outcome.document_id,
            "recipients": list(outcome.recipients), "kind": outcome.kind, "replayed": outcome.replayed}


@dataclass
class Contents:
    """A ``get_many`` answer: the manifest line, then each found package's bytes, in order."""

    head: bytes
    parts: list[tuple[bytes | None, BinaryIO | None, int]] = field(default_factory=list)
    """(bytes already read, or the open file to stream, size) of each package sent."""

    @property
    def length(self) -> int:
        return len(self.head) + sum(size for _, _, size in self.parts)

    async def body(self) -> AsyncIterator[bytes]:
        try:
            gathered = [self.head]
            for data, fh, size in self.parts:
                if data is not None:
                    gathered.append(data)
                    continue
                if gathered:
                    yield b"".join(gathered)
                    gathered = []
                left = size
                while left:
                    piece = await run_in_threadpool(fh.read, min(left, BATCH_WRITE_BYTES))
                    if not piece:  # the file shrank under us: end the response short, the client sees it
                        raise OSError(f"{fh.name} ended {left} bytes early")
                    left -= len(piece)
                    yield piece
            if gathered:
                yield b"".join(gathered)
        finally:
            self.close()

    def close(self) -> None:
        for _, fh, _ in self.parts:
            if fh is not None:
                fh.close()


def open_contents(service: HubService, agency: str, message_ids: list[str]) -> Contents:
    """Look the packages up (one query), open them, and read the small ones ahead (blocking)."""
    found = service.packages_for_many(agency, message_ids)
    entries, parts, budget = [], [], BATCH_WRITE_BYTES
    try:
        for message_id in message_ids:
            package = found.get(message_id)
            if package is None:
                entries.append({"message_id": message_id, "error": {
                    "code": NOT_FOUND, "message": f"no message {message_id} for {agency}", "detail": {}}})
                continue
            try:
                fh = open(package.path, "rb")  # noqa: SIM115 - closed by Contents
            except OSError as exc:
                entries.append({"message_id": message_id, "error": {
                    "code": UNAVAILABLE, "message": f"the hub cannot read message {message_id}: {exc.strerror}",
                    "detail": {}}})
                continue
            # The size of the file as it is (it frames the answer); the digest is the one recorded
            # when the package was accepted, so damaged bytes are caught by the client.
            size = os.fstat(fh.fileno()).st_size
            if size <= budget:
                data = fh.read(size)
                fh.close()
                size = len(data)
                budget -= size
                parts.append((data, None, size))
            else:
                parts.append((None, fh, size))
            entries.append({"message_id": message_id, "size": size, "sha256": package.sha256})
    except BaseException:
        Contents(b"", parts).close()
        raise
    head = json.dumps({"packages": entries}, separators=(",", ":")).encode() + b"\n"
    served = [entry["message_id"] for entry in entries if "error" not in entry]
    if served:
        fetch_log.info("get_many by %s: %s", agency, " ".join(served))
    return Contents(head, parts)
