"""Model-level user errors; each is both a :class:`pdfnet.errors.UserError` (CLI: exit 2, one line)
and a ``ValueError`` (library callers)."""

from __future__ import annotations

from ..errors import UserError

__all__ = ["CheckpointError", "InputSizeError"]


class CheckpointError(UserError, ValueError):
    """A checkpoint does not match the model (missing/extra key, wrong shape, wrong constant)."""


class InputSizeError(UserError, ValueError):
    """An input size the network cannot process (non-square, wrong multiple)."""
