"""Exceptions that mean "the user asked for something wrong" (CLI: exit code 2, one line)."""


class UserError(Exception):
    """A bad input, path or value. The CLI prints ``pdfnet <cmd>: error: <message>`` and exits 2."""
