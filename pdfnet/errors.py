"""The package's exception types, all in one place.

Every one is a :class:`UserError`: "the user asked for something wrong" (CLI: exit code 2, one line, no
traceback). Those a library caller may reasonably catch as bad values are ``ValueError`` too.
"""

import re

__all__ = ["CheckpointError", "ConfigError", "ImageReadError", "InputSizeError", "UserError"]

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
