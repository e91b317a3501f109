"""The interlink-axis transport: one interface (``AxisTransport``) for sending and receiving
edXML packages, the value types it returns, and its error.

Implementations: ``inter_axis.client.HubAxisTransport`` speaks HTTP to a ``docsvc axis-hub``
(the province's own hub, also used in tests). An adapter for the national axis SDK would be a
second implementation of the same interface.

Message flow, as the national axis SDK names it (VN-STANDARDS §1.10):
``send`` (SendKnobstick) → the hub keeps one delivery per recipient, *pending* →
``list_received`` (ReceiveKnobsticks) → ``get`` (GetKnobstick) → ``ack`` (UpdateKnobstickStatus
"done"): the delivery becomes *delivered* and the hub stops listing it.

Status packages (gói tin trạng thái, §1.9) travel exactly like documents: ``update_status``
is ``send`` restricted to status packages, addressed by the hub to ``ResponseFor/OrganId``.
Both need an idempotency key, because a send whose response was lost (timeout, hub restart)
must be retried safely: the hub answers a retry carrying the same key and the same bytes with
the original receipt instead of a second copy.

Batches: ``send_many``, ``get_many`` and ``ack_many`` do what ``send``, ``get`` and ``ack`` do for
several packages at the cost of one request. ``send_many`` and ``get_many`` answer per package
(a receipt or a path, or the ``TransportError`` the single call would have raised), so one
package's refusal never fails the others; a failure of the request as a whole (axis down,
credentials refused) raises, as the single calls do.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, runtime_checkable

#: What ``send`` accepts: a file path, or a binary stream positioned at the package's start.
PackageSource = Path | str | BinaryIO

PackageKind = Literal["document", "status"]

#: Stable error codes. ``unavailable`` is the only retryable one: the caller (the docsvc outbox
#: job) retries it with backoff and the *same* idempotency key; the others will fail again.
DUPLICATE_DOCUMENT = "duplicate_document"
UNAUTHORIZED = "unauthorized"
SENDER_MISMATCH = "sender_mismatch"
UNKNOWN_RECIPIENT = "unknown_recipient"
INVALID_PACKAGE = "invalid_package"
TOO_LARGE = "too_large"
IDEMPOTENCY_CONFLICT = "idempotency_conflict"
NOT_FOUND = "not_found"
UNAVAILABLE = "unavailable"

ERROR_CODES = frozenset(
    {
        DUPLICATE_DOCUMENT,
        UNAUTHORIZED,
        SENDER_MISMATCH,
        UNKNOWN_RECIPIENT,
        INVALID_PACKAGE,
        TOO_LARGE,
        IDEMPOTENCY_CONFLICT,
        NOT_FOUND,
        UNAVAILABLE,
    }
)


class TransportError(Exception):
    """The axis refused a request or could not be reached.

    ``code`` is one of ``ERROR_CODES``:

    - ``duplicate_document``: this sender already sent a new document (BussinessDocType 0) with
      this DocumentId to one of these recipients, under another idempotency key;
    - ``idempotency_conflict``: the idempotency key was already used for *different* bytes;
    - ``unauthorized``: unknown or wrong agency credentials;
    - ``sender_mismatch``: the package's ``From/OrganId`` is not the authenticated agency;
    - ``unknown_recipient``: a ``To/OrganId`` is not an agency registered on the axis;
    - ``invalid_package``: not a well-formed, safe edXML package (``detail["reason"]`` holds
      the inspector's code, e.g. ``malformed_xml``, ``hostile_xml``);
    - ``too_large``: over the package size limit; for a ``send_many`` request as a whole, over
      the axis's batch caps (``detail["reason"]`` ``batch_count`` or ``batch_bytes``);
    - ``not_found``: no such message for this agency;
    - ``unavailable``: the axis could not be reached or failed; retry later with the same key.
    """

    def __init__(self, code: str, message: str, detail: dict | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail or {}

    @property
    def retryable(self) -> bool:
        """True only for ``unavailable``: the same request may succeed later."""
        return self.code == UNAVAILABLE


@dataclass(frozen=True)
class SendReceipt:
    """The axis accepted a package: it is stored durably and pending for every recipient."""

    message_id: str
    """The axis's id of this package (VNPT's "DocId"); recipients see the same id."""
    document_id: str
    """edXML ``DocumentId`` (for a status package: ``ResponseFor/DocumentId``)."""
    recipients: tuple[str, ...]
    """OrganIds the package is delivered to, in the package's order."""
    kind: PackageKind = "document"
    replayed: bool = False
    """True when this answers a retry: the package had already been accepted under this key."""


@dataclass(frozen=True)
class ReceivedRef:
    """A package waiting for this agency (not yet acknowledged)."""

    message_id: str
    from_organ_id: str
    document_id: str
    kind: PackageKind
    status_code: str | None
    """Two-digit edXML ``StatusCode`` for status packages, else ``None``."""
    received_at: datetime
    """When the axis accepted the package (UTC)."""
    size: int = 0
    sha256: str = ""
    """Hex SHA-256 of the package bytes as the axis stored them; ``get`` checks it."""


@dataclass(frozen=True)
class Agency:
    """An agency reachable over the axis."""

    organ_id: str
    name: str


@dataclass(frozen=True)
class DeliveryState:
    """Where one recipient's copy of a sent package is."""

    recipient: str
    state: Literal["pending", "delivered"]
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class SentMessage:
    """A package this agency sent, with its delivery state per recipient."""

    message_id: str
    document_id: str
    kind: PackageKind
    received_at: datetime
    deliveries: tuple[DeliveryState, ...] = field(default_factory=tuple)


def new_idempotency_key() -> str:
    """A fresh key for one logical send. Store it with the outgoing record *before* the first
    attempt, and pass the same key on every retry."""
    return secrets.token_urlsafe(24)


@runtime_checkable
class AxisTransport(Protocol):
    """Send and receive edXML packages over an interlink axis as one agency.

    Every method raises ``TransportError``; none retries by itself."""

    agency_id: str
    """The OrganId this transport authenticates as."""

    def send(self, package: PackageSource, *, idempotency_key: str) -> SendReceipt:
        """Hand a document or status package to the axis for every recipient it names.

        Returns once the axis has stored it durably. A retry with the same key and the same
        bytes returns the original receipt (``replayed=True``) and delivers nothing twice."""
        ...

    def update_status(self, package: PackageSource, *, idempotency_key: str) -> SendReceipt:
        """Send a status package (§1.9) to the sender of the document it answers.

        The same as ``send`` but refuses a document package with ``invalid_package``, so a
        caller cannot mistake one for the other."""
        ...

    def list_received(self, limit: int = 100) -> list[ReceivedRef]:
        """Packages addressed to this agency and not yet acknowledged, oldest first."""
        ...

    def get(self, message_id: str, out: BinaryIO) -> int:
        """Write the package's bytes to ``out`` (checked against its SHA-256); returns the size.

        Works until and after ``ack``, so a receiver that crashed mid-download can fetch again."""
        ...

    def ack(self, message_id: str) -> None:
        """Record that this agency has the package safely (idempotent); it is no longer listed."""
        ...

    def sent_status(self, message_id: str) -> SentMessage:
        """Delivery state per recipient of a package this agency sent."""
        ...

    def list_agencies(self) -> list[Agency]:
        """Every agency registered on the axis, by OrganId."""
        ...

    def send_many(self, packages: Sequence[tuple[PackageSource, str] | tuple[PackageSource, str, PackageKind]]
                  ) -> list[SendReceipt | TransportError]:
        """``send`` for several (package, idempotency key) pairs, documents and statuses alike, at
        the cost of one request (or a few, where the axis caps a batch's count or bytes). A third
        element ``"status"`` makes that package's send an ``update_status`` (a document package is
        then refused with ``invalid_package``); ``"document"`` refuses a status package.

        Returns one outcome per package, in order: its ``SendReceipt`` (``replayed=True`` for a
        retry under the same key and bytes), or the ``TransportError`` that ``send`` would have
        raised for it alone (``duplicate_document``, ``sender_mismatch``, ``invalid_package``,
        ``too_large``, ``idempotency_conflict``, ``unknown_recipient``...). Every accepted package is
        stored durably before this returns, exactly as by ``send``. Raises ``TransportError`` when
        the request as a whole fails (``unavailable``: retry the same keys and bytes, which is
        safe; ``unauthorized``); packages of the batch may then have been accepted or not."""
        ...

    def get_many(self, message_ids: Sequence[str], directory: Path) -> list[Path | TransportError]:
        """``get`` for several packages at the cost of one request (or a few, over the axis's cap):
        each is written to ``directory/<message_id>.edxml`` and checked against its SHA-256.

        Returns one outcome per id, in order: the file's path, or the ``TransportError`` that
        ``get`` would have raised for it alone (``not_found``; ``unavailable`` when its bytes do
        not match their SHA-256, and no file is left for it). Raises ``TransportError`` when the
        request as a whole fails."""
        ...

    def ack_many(self, message_ids: Sequence[str]) -> None:
        """``ack`` for several packages at the cost of one request (idempotent). Raises
        ``not_found`` naming (``detail["unknown"]``) the ids not addressed to this agency; the
        others are acknowledged all the same."""
        ...
