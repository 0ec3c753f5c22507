"""Atomic file writes, one owner: a temp file beside the destination, then ``os.replace``.

An interrupted or failed write never leaves a truncated file at the destination (it keeps its old content
or stays absent) and removes its temp file. Temp names are ``.<name>.<random>.tmp`` in the destination's
folder (the run directory's stale-temp cleanup knows the pattern). Standard library only, so the
torch-free commands (``pdfnet config``) can use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path beside ``path`` for a writer that wants a file name (safetensors, ONNX); on a
    normal exit it replaces ``path``, on any exception it is removed. Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
