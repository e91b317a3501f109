"""Faster, result-identical replacements for pyHanko's byte-at-a-time PDF tokenizer helpers (in
the spirit of ``signing/speedups.py``, which does the same for hex strings).

Reading a one-page signed PDF (xref sections, trailer, catalog, form fields, the signature
dictionary) was ~40% of a validation once certificates were no longer parsed per document, and
most of that was three helpers reading one byte per ``stream.read(1)`` call:

* ``misc._read_until_class`` (every name, keyword and number token): reads a small chunk and
  finds the first stop byte with a compiled character class, then leaves the stream right after
  that byte, exactly where pyHanko's loop leaves it;
* ``misc.read_non_whitespace``: skips whitespace with ``bytes.lstrip`` over a small chunk; a
  comment (``%``) or a chunk of nothing but whitespace goes back to pyHanko's own function from
  the same position, so comments and end-of-stream errors are pyHanko's;
* ``generic._decode_name`` (``#xx`` escapes, UTF-8/Latin-1): a pure function of the name's bytes,
  memoised (bounded) as text; each call still returns a new ``NameObject`` (read objects carry
  their container reference, so they are never shared).

:func:`install` puts them in place process-wide (idempotent); ``signing.validation`` calls it.
"""

from __future__ import annotations

import functools
import os
import re

from pyhanko.pdf_utils import generic, misc, reader, xref
from pyhanko.pdf_utils.misc import PDF_WHITESPACE

_CHUNK = 128
_PERCENT = 0x25
_pyhanko_read_until_class = misc._read_until_class
_pyhanko_read_non_whitespace = misc.read_non_whitespace
_pyhanko_decode_name = generic._decode_name


@functools.lru_cache(maxsize=16)
def _stop_pattern(class_chars: bytes) -> re.Pattern[bytes]:
    return re.compile(b"[" + b"".join(re.escape(bytes((c,))) for c in class_chars) + b"]")


def _read_until_class(class_chars: bytes, stream, maxchars=None) -> tuple[bytes, bool]:
    """Same contract as pyHanko's: the bytes before the first byte of ``class_chars`` (which is
    consumed), or up to the end of the stream (``True``), or ``maxchars`` bytes read in all."""
    if not class_chars or (maxchars is not None and maxchars <= 0):
        return _pyhanko_read_until_class(class_chars, stream, maxchars)  # odd calls: pyHanko's own answer
    pattern = _stop_pattern(class_chars)
    budget = maxchars
    chunks = []
    while True:
        size = _CHUNK if budget is None else min(_CHUNK, budget)
        if size <= 0:
            return b"".join(chunks), False
        data = stream.read(size)
        if not data:
            return b"".join(chunks), True
        found = pattern.search(data)
        if found is not None:
            end = found.start()
            chunks.append(data[:end])
            stream.seek(end + 1 - len(data), os.SEEK_CUR)
            return b"".join(chunks), False
        chunks.append(data)
        if budget is not None:
            budget -= len(data)


def read_non_whitespace(stream, seek_back=False, allow_eof=False):
    """Same contract as pyHanko's ``read_non_whitespace``: the next byte that is not PDF whitespace
    (comments skipped), the stream left after it (or on it, with ``seek_back``)."""
    data = stream.read(_CHUNK)
    rest = data.lstrip(PDF_WHITESPACE)
    if rest and rest[0] != _PERCENT:
        consumed = len(data) - len(rest) + (0 if seek_back else 1)
        stream.seek(consumed - len(data), os.SEEK_CUR)
        return rest[:1]
    stream.seek(-len(data), os.SEEK_CUR)
    return _pyhanko_read_non_whitespace(stream, seek_back=seek_back, allow_eof=allow_eof)


#: PDF names are at most 127 bytes (ISO 32000 annex C); longer ones are decoded but not kept.
_NAME_MEMO_MAX = 127


@functools.lru_cache(maxsize=4096)
def _name_text(name_bytes: bytes) -> str:
    return str(_pyhanko_decode_name(name_bytes))  # an error is not cached: it is raised again


def _decode_name(name_bytes: bytes) -> generic.NameObject:
    if len(name_bytes) > _NAME_MEMO_MAX:
        return _pyhanko_decode_name(name_bytes)
    return generic.NameObject(_name_text(name_bytes))


def install() -> None:
    """Put the replacements in place (idempotent, process-wide)."""
    misc._read_until_class = _read_until_class
    for module in (misc, generic, reader, xref):
        if getattr(module, "read_non_whitespace", None) is _pyhanko_read_non_whitespace:
            module.read_non_whitespace = read_non_whitespace
    generic._decode_name = _decode_name
