"""The conventions every ama command line follows (docs/design.md §6), shared by ``ama`` and
``ama-server``: the exit codes, and the help sections (exit status, examples, see also) that
both ``--help`` and the generated man pages show.

It lives outside ``ama/cli`` so the remote's ``ama-server`` can follow the same conventions
without importing the client's command line (docs/design.md §5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "the operation failed (a conflict, a missing or corrupt object, a failed check)",
    2: "bad usage or bad input",
    3: "not found (an object, a ref, an asset directory)",
    4: "not authenticated or not allowed",
    5: "the remote cannot be reached",
}


class _Sections:
    """The help sections every ama command and command group carries."""

    examples: list[tuple[str, str]]
    see_also: list[str]
    exit_codes: dict[int, str]

    def _init_sections(self, examples: Iterable[tuple[str, str]], see_also: Iterable[str],
                       exit_codes: dict[int, str] | None) -> None:
        self.examples = list(examples)
        self.see_also = list(see_also)
        self.exit_codes = exit_codes if exit_codes is not None else EXIT_CODES

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)  # type: ignore[misc]
        with formatter.section("Exit status"):
            formatter.write_dl([(str(code), text) for code, text in self.exit_codes.items()])
        if self.examples:
            with formatter.section("Examples"):
                for text, example in self.examples:
                    formatter.write_text(text)
                    with formatter.indentation():
                        formatter.write_text(f"$ {example}")
        if self.see_also:
            formatter.write_paragraph()
            formatter.write_text("See also: " + ", ".join(self.see_also))


class AmaCommand(_Sections, click.Command):
    """A click command that carries its examples, exit status and related commands."""

    def __init__(self, *args: Any, examples: Iterable[tuple[str, str]] = (),
                 see_also: Iterable[str] = (), exit_codes: dict[int, str] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(*args, **kwargs)
        self._init_sections(examples, see_also, exit_codes)


class AmaCommandGroup(_Sections, click.Group):
    """A command with subcommands (``ama remote add``): its own help sections, and
    subcommands declared with ``@group.command(...)`` are :class:`AmaCommand` (nested
    groups with ``@group.group(...)`` are of this class), so each one's examples, exit
    status and related commands reach its help and the group's man page."""

    command_class = AmaCommand
    group_class = type  # nested groups are of this same class

    def __init__(self, *args: Any, examples: Iterable[tuple[str, str]] = (),
                 see_also: Iterable[str] = (), exit_codes: dict[int, str] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(*args, **kwargs)
        self._init_sections(examples, see_also, exit_codes)


def command(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], AmaCommand]:
    """Declare an ama command (``examples``, ``see_also`` and ``exit_codes`` go to its help
    and man page)."""
    return click.command(name, cls=AmaCommand, **kwargs)  # type: ignore[return-value]


def group(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], AmaCommandGroup]:
    """Declare an ama command that has subcommands; it gets one man page, ``ama-NAME(1)``,
    listing every subcommand with its options (``examples``, ``see_also`` and
    ``exit_codes`` as for :func:`command`)."""
    return click.group(name, cls=AmaCommandGroup, **kwargs)  # type: ignore[return-value]


def positional_or_option(positional: Any, option: Any, metavar: str, flag: str,
                         required: bool = True) -> Any:
    """The value given as the positional ``metavar`` or as the option ``flag``: commands take
    what people type (``ama switch 0.0.1``) and keep the option older scripts use. Raises
    :class:`click.UsageError` when both disagree, or when a required value is missing."""
    if positional is not None and option is not None and positional != option:
        raise click.UsageError(f"{metavar} given twice: {positional!r} and {flag} {option!r}")
    value = positional if positional is not None else option
    if value is None and required:
        raise click.UsageError(f"missing {metavar} (or {flag} {metavar})")
    return value
