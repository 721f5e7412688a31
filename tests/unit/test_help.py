"""Every command answers --help with its exit status and examples; ama --help lists them all."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from ama.cli.main import COMMANDS, cli


def _command_paths() -> list[list[str]]:
    """Every command of the table and, for a command with subcommands, each of those."""
    paths: list[list[str]] = []

    def visit(command: click.Command, path: list[str], ctx: click.Context) -> None:
        paths.append(path)
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{' '.join(path)} lists {name} but has no such command"
                visit(sub, [*path, name], click.Context(sub, info_name=name, parent=ctx))

    root = click.Context(cli, info_name="ama")
    for name in COMMANDS:
        command = cli.get_command(root, name)
        assert command is not None, f"the table names {name}, whose module has no command"
        visit(command, [name], click.Context(command, info_name=name, parent=root))
    return paths


COMMAND_PATHS = _command_paths()


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_answers_help(path: list[str], flag: str) -> None:
    result = CliRunner().invoke(cli, [*path, flag], prog_name="ama")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: ama {' '.join(path)} ")
    assert "\nExit status:\n" in result.output
    assert "\n  0  " in result.output
    assert "\nExamples:\n" in result.output
    # Every command shows itself in use (within `eval "$(…)"` or after a `mkdir` too).
    assert re.search(r"\n    \$ .*\bama \S", result.output), result.output


def test_ama_help_lists_every_command_with_its_summary() -> None:
    result = CliRunner().invoke(cli, ["--help"], prog_name="ama")
    assert result.exit_code == 0
    assert result.output.startswith("Usage: ama [OPTIONS] COMMAND [ARGS]...")
    for name, (_module, summary, group) in COMMANDS.items():
        assert f"\n{group.capitalize()} commands:\n" in result.output
        words = r"\s+".join(re.escape(w) for w in summary.split())
        assert re.search(rf"^  {re.escape(name)}\s+{words}", result.output, re.MULTILINE), (
            f"ama --help does not list {name} with its summary")


def test_ama_without_a_command_shows_help() -> None:
    result = CliRunner().invoke(cli, [], prog_name="ama")
    assert "Usage: ama [OPTIONS] COMMAND [ARGS]..." in result.output
    assert "hash-object" in result.output


def test_unknown_command_exits_2_and_says_so() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"], prog_name="ama")
    assert result.exit_code == 2
    assert result.output == ("ama: error: no such command 'no-such-command'\n"
                             "hint: run 'ama --help' for the list of commands\n")


def test_mistyped_command_suggests_the_right_one() -> None:
    result = CliRunner().invoke(cli, ["uplaod"], prog_name="ama")
    assert result.exit_code == 2
    assert result.output == ("ama: error: no such command 'uplaod'\n"
                             "hint: did you mean 'ama upload'?\n")


def test_unknown_option_exits_2() -> None:
    result = CliRunner().invoke(cli, ["hash-object", "--no-such-option"], prog_name="ama")
    assert result.exit_code == 2
    assert result.output == ("ama: error: no such option '--no-such-option'\n"
                             "hint: run 'ama hash-object --help' for its usage\n")


@pytest.mark.parametrize("argv, message", [
    (["class", "info"], "missing NAME (or --name NAME)"),
    (["switch"], "missing VERSION (or --version VERSION)"),
    (["switch", "0.0.1", "--version", "0.0.2"],
     "VERSION given twice: '0.0.1' and --version '0.0.2'"),
    (["clone"], "missing argument 'NAME'"),
    (["clone", "ml-models/1", "a", "b"], "got unexpected extra argument (b)"),
])
def test_usage_errors_have_the_shape_of_every_error(argv: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, argv, prog_name="ama")
    assert result.exit_code == 2
    command = " ".join(a for a in argv[:2] if a.isalpha())
    assert result.output == (f"ama: error: {message}\n"
                             f"hint: run 'ama {command} --help' for its usage\n")


def test_version() -> None:
    from ama import __version__

    result = CliRunner().invoke(cli, ["--version"], prog_name="ama")
    assert result.exit_code == 0
    assert result.output == f"ama, version {__version__}\n"
