"""The package's exception types, all in one place.

Every one is a :class:`UserError`: "the user asked for something wrong" (CLI: exit code 2, one line, no
traceback). Those a library caller may reasonably catch as bad values are ``ValueError`` too.

:class:`FileSystemError` is the one kind with exit code 1: the operating system refused a read or
write — disk full, permission denied, read-only file system, a path of the wrong kind, a name too
long (the command was right, the work failed). :func:`file_system_error` turns any ``OSError`` into
one, naming the path and what to do; the CLI entry point applies it to every ``OSError`` that reaches
it, and code that knows the path better (an ``OSError`` from a file descriptor carries none) converts
earlier.
"""

from __future__ import annotations

import errno
import os
import re

__all__ = ["CheckpointError", "ConfigError", "FileSystemError", "ImageReadError", "ImageTooLargeError",
           "InputSizeError", "UserError", "file_system_error", "load_failure_reason"]

# How torch's DataLoader re-raises an exception from a worker: ``type(e)(msg)`` with this message.
_WORKER_WRAPPED = re.compile(r"\ACaught \w+ in DataLoader worker process \d+\.\nOriginal Traceback")
_LAST_LINE = re.compile(r"^[\w.]+: (.*)$")


def _unwrap_worker_message(text: str) -> str:
    """The original one-line message of an exception torch re-raised from a DataLoader worker (the last
    line of the worker's traceback, ``module.Class: message``)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    m = _LAST_LINE.match(lines[-1]) if lines else None
    return m.group(1) if m else text


class UserError(Exception):
    """A bad input, path or value. The CLI prints ``pdfnet <cmd>: error: <message>`` and exits 2.

    Raised in a DataLoader worker, it reaches the main process with the same one-line message as
    with ``num_workers=0`` (torch would otherwise prepend the worker's whole traceback).
    """

    #: process exit status the CLI uses for this error
    exit_code: int = 2

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str) and _WORKER_WRAPPED.match(args[0]):
            args = (_unwrap_worker_message(args[0]),)
        super().__init__(*args)


class ConfigError(UserError, ValueError):
    """A user error in a config file or override; the message names the key and the source."""


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, unreadable, of an unknown kind, or does not match the model
    (missing/extra key, wrong shape, wrong constant)."""


class InputSizeError(UserError, ValueError):
    """An input size the network cannot process (non-square, wrong multiple)."""


class ImageReadError(UserError):
    """An image file is missing, unreadable or not a decodable image."""


class ImageTooLargeError(ImageReadError):
    """An image (or a file claiming to be one) exceeds the pixel bound; it is refused before decoding."""


class FileSystemError(UserError, OSError):
    """The operating system refused a file operation; the message names the path and what to do.

    Also an ``OSError`` (with ``errno`` and ``filename``), so library callers that handle OS errors
    keep doing so.
    """

    exit_code = 1

    def __init__(self, message: str, errno_: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errno = errno_
        self.filename = path

    def __str__(self) -> str:
        return self.message


_FREE = "free some space or write somewhere else"
#: errno → (what happened, what to do)
_OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", _FREE),
    errno.EDQUOT: ("disk quota exceeded", _FREE),
    errno.EFBIG: ("file too large for this file system", "write somewhere else"),
    errno.EACCES: ("permission denied", "check its permissions or use another path"),
    errno.EPERM: ("operation not permitted", "check its permissions or use another path"),
    errno.EROFS: ("read-only file system", "choose a writable location"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "check the path"),
    errno.EISDIR: ("is a folder where a file is needed", "give a file path"),
    errno.ENAMETOOLONG: ("file name too long", "use a shorter name or path"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.EEXIST: ("already exists", "remove it or use another path"),
    errno.ENOTEMPTY: ("folder not empty", "remove its contents or use another path"),
    errno.ELOOP: ("too many levels of symbolic links", "check the path"),
    errno.EMFILE: ("too many open files", "raise the open-file limit (ulimit -n) or use fewer workers"),
    errno.EIO: ("input/output error", "check the device"),
    errno.EXDEV: ("crosses file systems", "keep the files on one file system"),
    errno.EINVAL: ("invalid argument (e.g. a name this file system does not allow)", "use another path"),
}


def file_system_error(exc: OSError, path: str | os.PathLike | None = None) -> FileSystemError:
    """A one-line :class:`FileSystemError` for ``exc`` naming ``path`` (default: the path in ``exc``).

    Example: ``ENOSPC`` on ``runs/x/last.pt`` → ``runs/x/last.pt: no space left on the device (free
    some space or write somewhere else)``.
    """
    if isinstance(exc, FileSystemError):
        return exc
    where = path if path is not None else exc.filename
    what, advice = _OS_ERRORS.get(exc.errno or -1, (exc.strerror or type(exc).__name__, ""))
    msg = f"{os.fspath(where)}: {what}" if where is not None else what
    if path is None and exc.filename2 is not None:
        msg += f" (to {os.fspath(exc.filename2)})"
    if advice:
        msg += f" ({advice})"
    if exc.errno is None and not exc.strerror and str(exc):
        msg += f": {str(exc).splitlines()[0]}"
    return FileSystemError(msg, exc.errno, None if where is None else os.fspath(where))


def load_failure_reason(exc: BaseException) -> str:
    """One line saying why a weights file did not load, for our own message.

    A file refused by ``torch.load(weights_only=True)`` (it holds pickled Python objects beyond
    tensors and plain containers) is named as such; torch's advice to retry with
    ``weights_only=False`` (which would run code from the file) is never repeated.
    """
    text = str(exc)
    if "Weights only load failed" in text or "WeightsUnpickler" in text:
        detail = ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith(("Trying to load unsupported", "Unsupported", "Unsupported global")):
                detail = f" ({line.rstrip('.')})"
                break
        return ("not a weights-only file: it holds pickled Python objects (or is not a torch file at all)"
                f"{detail}; pdfnet never unpickles code, so save plain tensors (a state dict) or safetensors")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
