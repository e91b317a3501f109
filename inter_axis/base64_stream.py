"""Incremental base64 decoding into a file, with size and SHA-256, that never holds more than one chunk.

Lenient: whitespace anywhere is skipped, stray characters are dropped and reported, a truncated tail is
reported; the caller turns the problems into warnings."""

from __future__ import annotations

import binascii
import hashlib
from typing import BinaryIO

_WHITESPACE = b" \t\r\n"
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


class Base64Sink:
    """Decode base64 text fed in arbitrary chunks into ``out`` (``None``: count and hash only)."""

    def __init__(self, out: BinaryIO | None) -> None:
        self._out = out
        self._pending = b""
        self._padded = False
        self.size = 0
        self._sha = hashlib.sha256()
        self.problems: list[str] = []

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def feed(self, text: bytes) -> None:
        cleaned = text.translate(None, _WHITESPACE)
        if cleaned.translate(None, _ALPHABET):
            self._problem("characters outside the base64 alphabet were dropped")
            cleaned = bytes(b for b in cleaned if b in _ALPHABET)
        if not cleaned:
            return
        if self._padded:
            self._problem("data after base64 padding was ignored")
            return
        data = self._pending + cleaned
        pad = data.find(b"=")
        if pad != -1:
            # Everything up to the quad holding the first '=' is the payload; the rest is ignored.
            end = pad - pad % 4 + 4
            if data[end:].strip(b"="):
                self._problem("data after base64 padding was ignored")
            self._padded = True
            self._emit(data[:end] if len(data) >= end else data + b"=" * (end - len(data)))
            self._pending = b""
            return
        usable = len(data) - len(data) % 4
        self._emit(data[:usable])
        self._pending = data[usable:]

    def _emit(self, quads: bytes) -> None:
        if not quads:
            return
        try:
            decoded = binascii.a2b_base64(quads)
        except binascii.Error:
            self._problem("malformed base64 padding")
            return
        self.size += len(decoded)
        self._sha.update(decoded)
        if self._out is not None:
            self._out.write(decoded)

    def finish(self) -> None:
        """Decode what is left; a length that is not a multiple of four is reported and padded."""
        if self._pending:
            left = len(self._pending) % 4
            self._problem(f"base64 text is truncated ({left} character(s) left over)")
            if left > 1:
                self._emit(self._pending + b"=" * (4 - left))
            self._pending = b""

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()
