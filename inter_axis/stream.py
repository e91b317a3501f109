"""Streaming, hostile-input-safe reading of an edXML package into a small lxml tree.

The bytes pass through :class:`_Diverter` before the XML parser: the text of every
``ContentTransferEncoded`` element (the base64 attachments, possibly hundreds of megabytes) is taken out
of the stream and replaced by a short random marker, and handed to a sink instead. The parser therefore
only ever holds the small header/manifest tree, whatever the attachment size, and keeps libxml2's default
limits (no ``huge_tree``). Prefixes, comments and layout of everything else are kept exactly, which the
signature check needs for canonicalisation.

A DTD (``<!DOCTYPE``, hence any ``<!ENTITY``) is refused twice, structurally both times:

- the prolog bytes are scanned construct by construct (XML declaration, processing instructions and
  comments are skipped whole, so ``<!--<a-->`` cannot pass for the root element) and a ``<!DOCTYPE``
  is refused before the parser sees it;
- when the parser reports its first element, the document must have no doctype at all
  (``docinfo``), whatever the bytes looked like; this runs for ``header_only`` reads too.

The parser additionally runs with ``resolve_entities=False, no_network=True, load_dtd=False``."""

from __future__ import annotations

import abc
import io
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from lxml import etree

from inter_axis.errors import HostileXmlError, MalformedXmlError, OversizeError, WrongNamespaceError
from inter_axis.names import LEGACY_NAMESPACES, NS, local_name, namespace_of

Source = str | os.PathLike | BinaryIO | bytes
CHUNK = 1 << 16
DEFAULT_MAX_BYTES = 300 * 1024**2
#: Everything except the attachment text must fit in this (header, manifest, attachment metadata).
DEFAULT_MAX_HEADER_BYTES = 16 * 1024**2

_CTE_START = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?ContentTransferEncoded(?:\s[^<>]{0,2048})?>")
_HOLD = 2200  # longest start tag the regex can match, so a tag split across chunks is held back whole
_BOM = b"\xef\xbb\xbf"
_DOCTYPE = b"<!DOCTYPE"
_MAX_PROLOG_CONSTRUCT = 1 << 16


class BlobSink(abc.ABC):
    """Receives the text of one ``ContentTransferEncoded`` element, in chunks (``\\r`` already normalised)."""

    @abc.abstractmethod
    def write(self, text: bytes) -> None:
        """Take the next chunk of the element's text."""

    def close(self) -> None:  # noqa: B027 - an optional hook: most sinks have nothing to finish
        """Called once the element's text has ended (default: nothing to do)."""


class _NullSink(BlobSink):
    def write(self, text: bytes) -> None:
        pass


@dataclass
class StreamedTree:
    """The small tree of a package plus the attachment texts taken out of it."""

    root: etree._Element
    markers: dict[str, int]
    """Marker text → index of the diverted text region (in document order)."""
    sinks: list[BlobSink] = field(default_factory=list)
    complete: bool = True
    """False when reading stopped after the header (``header_only``)."""

    def blob_index(self, element: etree._Element) -> int | None:
        """Index of the diverted text of ``element``, if its text was diverted."""
        return self.markers.get((element.text or "").strip())


def _scan_prolog(buf: bytes) -> int | None:
    """Walk the prolog in ``buf``: the offset where scanning must resume once more bytes arrive, or
    None once the root element (or anything that is not prolog) starts. Raises on a ``<!DOCTYPE``.

    Constructs are skipped whole, as the parser reads them: the XML declaration and processing
    instructions to ``?>``, comments to ``-->``. A regex over the raw bytes cannot tell ``<a`` inside a
    comment from the root element, which is how ``<!--<a--><!DOCTYPE …>`` used to get through."""
    pos = 0
    while True:
        while pos < len(buf) and buf[pos] in b" \t\r\n":
            pos += 1
        rest = buf[pos : pos + len(_DOCTYPE)]
        if not rest:
            return pos
        if rest[:1] != b"<":
            return None  # not well-formed: the parser says so
        if len(rest) < len(_DOCTYPE) and (_DOCTYPE.startswith(rest) or b"<!--".startswith(rest)):
            return pos  # too short to tell yet
        if rest.startswith(b"<?"):
            end = buf.find(b"?>", pos + 2)
            if end == -1:
                return pos
            pos = end + 2
        elif rest.startswith(b"<!--"):
            end = buf.find(b"-->", pos + 4)
            if end == -1:
                return pos
            pos = end + 3
        elif rest.startswith(_DOCTYPE):
            raise HostileXmlError("a DTD or entity declaration is not allowed in edXML (XXE / entity expansion)")
        else:
            return None  # the root element's start tag (or other markup the parser will refuse)


def _refuse_doctype(element: etree._Element) -> None:
    """Refuse a document that has any doctype, from what the parser built rather than from bytes."""
    info = element.getroottree().docinfo
    if info.internalDTD is not None or info.externalDTD is not None or info.doctype or info.system_url:
        raise HostileXmlError("a DTD is not allowed in edXML")


class _Diverter:
    """Byte filter in front of the parser; see the module docstring."""

    def __init__(self, new_sink: Callable[[int], BlobSink], max_header_bytes: int) -> None:
        self._new_sink = new_sink
        self._max_header = max_header_bytes
        self._nonce = secrets.token_hex(8)
        self.markers: dict[str, int] = {}
        self.sinks: list[BlobSink] = []
        self._buf = b""
        self._sink: BlobSink | None = None
        self._pending_cr = False
        self._in_prolog = True
        self._seen_any = False
        self._prolog = b""
        self.header_bytes = 0

    def _check_prolog(self, data: bytes) -> None:
        if not self._in_prolog:
            return
        if not self._seen_any and (data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]):
            raise MalformedXmlError("edXML must be UTF-8 encoded")
        if not self._seen_any and data.startswith(_BOM):
            data = data[len(_BOM) :]
        self._seen_any = True
        # Only the unscanned rest of the prolog is kept: a construct not finished in this chunk.
        self._prolog += data
        pos = _scan_prolog(self._prolog)
        if pos is None:
            self._in_prolog = False  # the root element starts (or something the parser will refuse)
            self._prolog = b""
            return
        self._prolog = self._prolog[pos:]
        if len(self._prolog) > _MAX_PROLOG_CONSTRUCT:
            raise MalformedXmlError("a comment or processing instruction before the root is longer than 64 KiB")

    def feed(self, data: bytes) -> bytes:
        """Filter one chunk; returns what the parser should see."""
        self._check_prolog(data)
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            if self._sink is not None:
                end = self._buf.find(b"<")
                self._divert(self._buf if end == -1 else self._buf[:end])
                if end == -1:
                    self._buf = b""
                    break
                self._end_blob()
                self._buf = self._buf[end:]
                continue
            match = _CTE_START.search(self._buf)
            if match is not None:
                out.append(self._buf[: match.end()])
                self._buf = self._buf[match.end() :]
                if not match.group().endswith(b"/>"):
                    out.append(self._start_blob())
                continue
            cut = self._buf.rfind(b"<")
            if cut != -1 and len(self._buf) - cut < _HOLD:
                out.append(self._buf[:cut])
                self._buf = self._buf[cut:]
            else:
                out.append(self._buf)
                self._buf = b""
            break
        result = b"".join(out)
        self.header_bytes += len(result)
        if self.header_bytes > self._max_header:
            raise OversizeError(f"the package header/manifest exceeds {self._max_header} bytes")
        return result

    def flush(self) -> bytes:
        """End of input: whatever was held back."""
        if self._sink is not None:
            self._end_blob()
        rest, self._buf = self._buf, b""
        return rest

    def _start_blob(self) -> bytes:
        index = len(self.sinks)
        marker = f"AXISBLOB{self._nonce}N{index}E"
        self.markers[marker] = index
        self._sink = self._new_sink(index)
        self.sinks.append(self._sink)
        return marker.encode()

    def _divert(self, text: bytes) -> None:
        if not text:
            return
        if b"&" in text:
            raise MalformedXmlError("a character or entity reference inside attachment content (base64 needs none)")
        if self._pending_cr:
            self._pending_cr = False
            self._sink.write(b"\n")
            if text.startswith(b"\n"):
                text = text[1:]
        if text.endswith(b"\r"):
            self._pending_cr = True
            text = text[:-1]
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self._sink.write(text)

    def _end_blob(self) -> None:
        if self._pending_cr:
            self._pending_cr = False
            self._sink.write(b"\n")
        self._sink.close()
        self._sink = None


@contextmanager
def open_source(source: Source, max_bytes: int) -> Iterator[BinaryIO]:
    """A binary stream over ``source`` (a path, bytes or an open binary stream); size checked when known."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_bytes:
            raise OversizeError(f"the package is {len(source)} bytes, more than the {max_bytes} allowed")
        yield io.BytesIO(bytes(source))
        return
    if isinstance(source, (str, os.PathLike)):
        try:
            size = os.path.getsize(source)
            stream = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise MalformedXmlError(f"cannot read {os.fspath(source)!r}: {exc.strerror}") from exc
        if size > max_bytes:
            stream.close()
            raise OversizeError(f"the package is {size} bytes, more than the {max_bytes} allowed")
        with stream:
            yield stream
        return
    yield source


def _check_root(element: etree._Element) -> None:
    ns = namespace_of(element.tag)
    if ns != NS:
        if ns in LEGACY_NAMESPACES:
            raise WrongNamespaceError(f"legacy eDoc namespace {ns!r}; edXML uses {NS}")
        raise WrongNamespaceError(f"root element is in namespace {ns!r}, not {NS}")
    if local_name(element.tag) != "edXML":
        raise MalformedXmlError(f"root element is {local_name(element.tag)!r}, not edXML")


def read_tree(
    source: Source,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    new_sink: Callable[[int], BlobSink] | None = None,
    header_only: bool = False,
) -> StreamedTree:
    """Parse ``source`` into a :class:`StreamedTree`; attachment texts go to ``new_sink(index)``.

    ``header_only`` stops after ``edXMLHeader`` (attachments are never read). Raises
    :class:`~inter_axis.errors.EdxmlError` subclasses for malformed, hostile, oversize or foreign input."""
    diverter = _Diverter(new_sink or (lambda _index: _NullSink()), max_header_bytes)
    parser = etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )
    total = 0
    root = None
    with open_source(source, max_bytes) as stream:
        try:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    parser.feed(diverter.flush())
                    root = parser.close()
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise OversizeError(f"the package is larger than the {max_bytes} bytes allowed")
                parser.feed(diverter.feed(chunk))
                for event, element in parser.read_events():
                    if root is None:
                        root = element
                        # Here, before anything is returned (header_only included), whatever the
                        # prolog scan concluded.
                        _refuse_doctype(element)
                        _check_root(element)
                    if header_only and event == "end" and local_name(element.tag) == "edXMLHeader":
                        return StreamedTree(root, diverter.markers, diverter.sinks, complete=False)
        except etree.XMLSyntaxError as exc:
            raise MalformedXmlError(f"not well-formed XML: {exc}") from exc
    _refuse_doctype(root)  # a document small enough to be parsed only by close() had no events yet
    _check_root(root)
    return StreamedTree(root, diverter.markers, diverter.sinks, complete=True)
