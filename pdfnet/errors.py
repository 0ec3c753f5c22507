"""The package's exception types, all in one place.

Every one is a :class:`UserError`: "the user asked for something wrong" (CLI: exit code 2, one line, no
traceback). Those a library caller may reasonably catch as bad values are ``ValueError`` too.
"""

__all__ = ["CheckpointError", "ConfigError", "ImageReadError", "InputSizeError", "UserError"]


class UserError(Exception):
    """A bad input, path or value. The CLI prints ``pdfnet <cmd>: error: <message>`` and exits 2."""


class ConfigError(UserError, ValueError):
    """A user error in a config file or override; the message names the key and the source."""


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, unreadable, of an unknown kind, or does not match the model
    (missing/extra key, wrong shape, wrong constant)."""


class InputSizeError(UserError, ValueError):
    """An input size the network cannot process (non-square, wrong multiple)."""


class ImageReadError(UserError):
    """An image file is missing, unreadable or not a decodable image."""
