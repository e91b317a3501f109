"""Development signature and seal images on disk: ``signing.images`` draws them (a blue
handwritten-style name, a red round seal at real size); this keeps one file per text so the
appearance engine's per-file image cache is hit on every later signature."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from signing.images import seal_png, signature_png


def cached_png(directory: Path, kind: str, text: str) -> Path:
    """Write (once) and return the PNG for ``text`` under ``directory``; ``kind`` is signature or seal."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.png"
    if not path.exists():
        data = signature_png(text) if kind == "signature" else seal_png(text)
        # A per-process temporary name: two workers drawing the same image must not interleave.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
