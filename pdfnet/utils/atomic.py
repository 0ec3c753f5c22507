"""Atomic file writes, one owner: a temp file beside the destination, then ``os.replace``.

An interrupted or failed write never leaves a truncated file at the destination (it keeps its old content
or stays absent) and removes its temp file. Temp names are ``.<name>.<random>.tmp`` in the destination's
folder (the run directory's stale-temp cleanup knows the pattern). New files get the permissions the
umask gives ordinary files (``mkstemp`` alone gives 0600). A refused write (disk full, permission
denied, read-only file system, a file where a folder is needed …) is one
:class:`~pdfnet.errors.FileSystemError` naming the destination, not the temp file. A set of files can
be written all or none (:func:`replace_all`). Standard library only, so the torch-free commands
(``pdfnet config``) can use it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pdfnet.errors import FileSystemError, file_system_error

__all__ = ["atomic_open", "atomic_path", "atomic_write_bytes", "file_mode", "make_dirs", "replace_all",
           "write_temp"]

#: Below this many free bytes after a failed write, the failure is reported as a full disk.
_NEARLY_FULL = 8 << 20


@functools.cache
def file_mode() -> int:
    """Permission bits of a new regular file under the process umask (``0o666 & ~umask``)."""
    try:
        with open("/proc/self/status") as f:  # Linux: read without changing it (thread-safe)
            m = re.search(r"^Umask:\s*([0-7]+)", f.read(), re.M)
        if m:
            return 0o666 & ~int(m.group(1), 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def make_dirs(folder: Path) -> None:
    """``mkdir -p``; a file where a folder is needed is ``ENOTDIR`` (``mkdir`` says ``EEXIST``)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None


def _write_failure(exc: BaseException, path: Path, tmp: Path) -> BaseException:
    """The exception to raise for a failed write of ``path`` (``tmp`` still on disk)."""
    if isinstance(exc, OSError):
        return file_system_error(exc, path)
    code = re.search(r"\(os error (\d+)\)", str(exc))  # Rust writers (safetensors) report errno so
    if code:
        n = int(code.group(1))
        return file_system_error(OSError(n, os.strerror(n)), path)
    msg = str(exc)
    if isinstance(exc, RuntimeError) and ("inline_container" in msg or "PytorchStreamWriter" in msg):
        # torch.save reports a short write as "unexpected pos …"; almost always a full disk
        try:
            full = os.statvfs(tmp.parent).f_bavail * os.statvfs(tmp.parent).f_frsize < _NEARLY_FULL
        except OSError:
            full = False
        if full:
            return file_system_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path)
        return FileSystemError(f"{path}: the write failed ({str(exc).splitlines()[0]})", None, str(path))
    return exc


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", fsync: bool = False) -> Iterator[IO]:
    """Open a temp file beside ``path`` for writing; on success it replaces ``path`` atomically.

    Args:
        path: destination file (its folder is created).
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).
        fsync: flush to the device before the rename (checkpoints: survive a power cut).

    Raises:
        FileSystemError: the folder cannot be created or written, the disk is full, ``path`` is a
            folder, … (one line naming ``path``). Nothing is left behind.
    """
    with atomic_path(path) as tmp, open(tmp, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
        yield f
        f.flush()
        if fsync:
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path beside ``path`` for a writer that wants a file name (safetensors, ONNX); on a
    normal exit it replaces ``path``, on any exception it is removed. Parent folders are created.
    Errors as :func:`atomic_open`."""
    path = Path(path)
    try:
        make_dirs(path.parent)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=suffix)
        os.fchmod(fd, file_mode())
        os.close(fd)
    except OSError as e:
        raise file_system_error(e, path) from None
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())  # the writer may have recreated the file (0600)
        os.replace(tmp, path)
    except BaseException as e:
        err = _write_failure(e, path, tmp)
        tmp.unlink(missing_ok=True)
        if err is e:
            raise
        raise err from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_temp(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a new temp file beside ``path`` and return the temp file (not renamed yet).

    For sets of files that must appear together (:func:`replace_all`). Errors name ``path``.
    """
    path = Path(path)
    with atomic_open(path.with_name(f".{path.name[:200]}.set.tmp")) as f:
        f.write(data)
    return path.with_name(f".{path.name[:200]}.set.tmp")


def replace_all(files: dict[Path, bytes]) -> list[Path]:
    """Write a set of files all or none: each goes to a temp file first (:func:`write_temp`), and only
    when all are complete are they renamed into place, so a full disk leaves no partial set.

    Raises:
        FileSystemError: one line naming the file that failed; no file of the set is left new.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for dst, data in files.items():
            try:
                temps.append((write_temp(dst, data), Path(dst)))
            except FileSystemError as e:
                raise FileSystemError(str(e).replace(f".{Path(dst).name[:200]}.set.tmp", Path(dst).name),
                                      e.errno, str(dst)) from None
        for i, (tmp, dst) in enumerate(temps):
            try:
                os.replace(tmp, dst)
            except OSError as e:
                for _, prev in temps[:i]:
                    prev.unlink(missing_ok=True)
                raise file_system_error(e, dst) from None
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
    return [dst for _, dst in temps]
