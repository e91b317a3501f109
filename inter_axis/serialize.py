"""Writing a small package tree whose attachment texts are markers, streaming each attachment's
base64 text in place of its marker. Shared by :mod:`inter_axis.build` and :mod:`inter_axis.xmldsig`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from lxml import etree

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
BlobWriter = Callable[[], Iterable[bytes]]
"""Yields the (already XML-safe) text of one attachment in chunks."""


def split_on_markers(data: bytes, markers: Iterable[str]) -> Iterator[tuple[bytes, str | None]]:
    """``(text_before, marker)`` pairs in document order; the last pair has marker None.

    Markers are random per package, so a regex of them would be compiled anew for every package
    (and would evict the ``re`` cache): when they share a prefix (``AXISBLOB…``, as every marker here
    does), occurrences of the prefix are found with ``bytes.find`` and the marker is looked up by
    length, in one pass. The result is the regex alternation's: leftmost match, the first listed
    marker when several match at one position."""
    names = [m.encode() for m in markers]
    if not names:
        yield data, None
        return
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    if len(prefix) < 4:
        yield from _split_with_regex(data, names)
        return
    order = {}
    for rank, name in enumerate(names):
        order.setdefault(name, rank)
    lengths = sorted({len(name) for name in names})
    pos = start = 0
    while (at := data.find(prefix, start)) != -1:
        found = None
        for length in lengths:
            candidate = data[at : at + length]
            if candidate in order and (found is None or order[candidate] < order[found]):
                found = candidate
        if found is None:
            start = at + 1
            continue
        yield data[pos:at], found.decode()
        pos = start = at + len(found)
    yield data[pos:], None


def _split_with_regex(data: bytes, names: list[bytes]) -> Iterator[tuple[bytes, str | None]]:
    pattern = re.compile(b"|".join(re.escape(n) for n in names))
    pos = 0
    for match in pattern.finditer(data):
        yield data[pos : match.start()], match.group().decode()
        pos = match.end()
    yield data[pos:], None


def serialize_tree(root: etree._Element) -> bytes:
    """The document as the VNPT builder writes it: double-quoted declaration, UTF-8, literal prefixes."""
    return XML_DECLARATION + etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=False) + b"\n"


def write_with_blobs(data: bytes, blobs: dict[str, BlobWriter], out: BinaryIO) -> int:
    """Write ``data`` to ``out``, each marker replaced by its blob's chunks; returns bytes written."""
    written = 0
    for text, marker in split_on_markers(data, blobs):
        out.write(text)
        written += len(text)
        if marker is not None:
            for chunk in blobs[marker]():
                out.write(chunk)
                written += len(chunk)
    return written


def c14n_escape(chunk: bytes) -> bytes:
    """Text as canonical XML (and lxml) writes it; base64 never needs it, a lenient input might."""
    if b">" in chunk:
        chunk = chunk.replace(b">", b"&gt;")
    return chunk
