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
    """``(text_before, marker)`` pairs in document order; the last pair has marker None."""
    names = [m.encode() for m in markers]
    if not names:
        yield data, None
        return
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
