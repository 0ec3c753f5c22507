"""Output-path checks (standard library only: config and CLI code use them too).

* :func:`check_output_dir` / :func:`check_output_file` prove an output location usable (right kind,
  creatable, writable) **before** the work, so a command never computes for an hour and then finds
  it cannot save. Writes themselves go through :mod:`pdfnet.utils.atomic`.
* :func:`safe_name` keeps names that become paths (split names) inside their folder.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from pdfnet.errors import UserError, file_system_error
from pdfnet.utils.atomic import make_dirs

__all__ = ["check_output_dir", "check_output_file", "safe_name"]

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
        make_dirs(path)
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
