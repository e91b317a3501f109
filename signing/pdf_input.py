"""Reading PDF input for signing and validation: one place that opens sources, checks the
header, and turns the many errors a damaged file raises deep in the parser into ours."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO, TypeVar

from pyhanko.pdf_utils.misc import PdfError

from signing.errors import InvalidPdfError

PdfSource = BinaryIO | str | os.PathLike
#: Errors a damaged file can raise from deep inside the parser, besides pyHanko's own.
PARSE_ERRORS = (PdfError, ValueError, KeyError, IndexError, TypeError, AttributeError,
                AssertionError, RecursionError, EOFError, UnicodeDecodeError)
T = TypeVar("T")


@contextmanager
def input_stream(source: PdfSource) -> Iterator[BinaryIO]:
    """A readable binary stream for a path or an already open stream."""
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as fh:
                yield fh
        except OSError as exc:
            raise InvalidPdfError(f"cannot read {source}: {exc.strerror}") from exc
    else:
        yield source


def parse_pdf(stream: BinaryIO, parse: Callable[[BinaryIO], T]) -> T:
    """Check the ``%PDF-`` header, then run ``parse`` (a pyHanko reader or writer factory)
    with parser errors reported as ``InvalidPdfError``."""
    head = stream.read(1024)
    stream.seek(0)
    if b"%PDF-" not in head:
        raise InvalidPdfError("not a PDF file (no %PDF- header)")
    try:
        return parse(stream)
    except PARSE_ERRORS as exc:
        raise InvalidPdfError(f"unreadable PDF: {exc}") from exc
