"""The ``pdfnet`` entry point: every command (and every alias) is registered, configures and parses."""

from __future__ import annotations

import pytest

from pdfnet.cli.main import COMMANDS, build_parser, main

NAMES = [(name, name) for name in COMMANDS]
NAMES += [(alias, name) for name, cmd in COMMANDS.items() for alias in cmd.aliases]


@pytest.mark.parametrize("given, name", NAMES)
def test_every_command_and_alias_shows_its_help(given, name, capsys):
    with pytest.raises(SystemExit) as e:
        main([given, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: pdfnet {given}") and len(out.splitlines()) > 3  # its own arguments


def test_top_level_help_lists_commands_without_importing_them(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    args = build_parser("score").parse_args(["score", "--pred-dir", "p", "--gt-dir", "g"])
    assert args.command == "score" and args.func.__module__ == "pdfnet.cli.score"


def test_no_command_and_unknown_command(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit) as e:
        main(["evaluate"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err
