"""Safe file writes and output-path checks (no heavy imports: config and CLI code use it too).

* :func:`atomic_open` is the one way pdfnet writes a file: a temp file in the destination folder,
  created with the mode the umask gives ordinary files (``mkstemp`` alone gives 0600), renamed over
  the destination only when complete; on any failure the temp file is removed and an ``OSError``
  becomes a one-line :class:`~pdfnet.errors.FileSystemError` naming the destination.
* :func:`check_output_dir` / :func:`check_output_file` prove an output location usable (right kind,
  creatable, writable) **before** the work, so a command never computes for an hour and then finds
  it cannot save.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pdfnet.errors import FileSystemError, UserError, file_system_error

__all__ = ["atomic_open", "check_output_dir", "check_output_file", "file_mode", "replace_all", "safe_name",
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


def _make_dirs(folder: Path) -> None:
    """``mkdir -p``; a file where a folder is needed is ``ENOTDIR`` (``mkdir`` says ``EEXIST``)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None


def _write_failure(exc: BaseException, path: Path, tmp: Path) -> BaseException:
    """The exception to raise for a failed write of ``path`` (``tmp`` still on disk)."""
    if isinstance(exc, OSError):
        return file_system_error(exc, path)
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


@contextmanager
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
    path = Path(path)
    try:
        _make_dirs(path.parent)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=".tmp")
    except OSError as e:
        raise file_system_error(e, path) from None
    tmp = Path(name)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        err = _write_failure(e, path, tmp)
        tmp.unlink(missing_ok=True)
        if err is e:
            raise
        raise err from None


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


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Make sure ``path`` is (or can be created as) a folder this process can write into.

    Creates the folder (and parents) and writes then removes a probe file in it.

    Raises:
        UserError: ``path`` exists and is not a folder.
        FileSystemError: it cannot be created or written (permissions, read-only, full, …).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} exists and is not a folder")
    try:
        _make_dirs(path)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".pdfnet-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise file_system_error(e, path) from None
    return path


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Make sure ``path`` can be written as a file: not a folder, and its folder is writable."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file path")
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"{what} {path}: {path.parent} is not a folder")
    check_output_dir(path.parent, f"folder of the {what}")
    if len(path.name.encode()) > 255:
        raise file_system_error(OSError(errno.ENAMETOOLONG, "File name too long"), path)
    return path


def safe_name(name: str, what: str = "name") -> str:
    """``name`` if it is a plain file/folder name (no separator, not ``.``/``..``), else a UserError.

    For names that become paths under an output folder (split names, run names), so that
    ``--splits ../X`` cannot write outside it.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name or os.sep in name:
        raise UserError(f"{what} {name!r} is not a plain name (no '/', '\\\\', '.' or '..')")
    return name
