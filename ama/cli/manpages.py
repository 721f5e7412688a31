"""The man pages of the command line, generated from the click definitions.

One page per entry of the command table (:data:`ama.cli.main.COMMANDS`), ``ama-<name>.1``,
and ``ama.1`` for ``ama`` itself. A command with subcommands (a click group, such as
``ama remote``) gets one page that lists every subcommand with its options. Each page has
the sections NAME, SYNOPSIS, DESCRIPTION, OPTIONS, EXIT STATUS, EXAMPLES and SEE ALSO, taken
from the command's help, its parameters and what :class:`ama.cli.command.AmaCommand` carries
(``examples``, ``exit_codes``, ``see_also``). A command added to the table gets its page the
next time the pages are generated; nothing here names a command.

The output depends only on the definitions and the package version (no date, no terminal
width), so the pages are checked in and a test regenerates them and fails on a difference.

Written here rather than with click-man, which emits no EXIT STATUS or EXAMPLES section and
stamps each page with the current date.

Regenerate the pages in ``man/`` with ``make man``, which runs::

    python -m ama.cli.manpages man
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import click

from ama import __version__
from ama.cli.command import EXIT_CODES

MANUAL = "ama Manual"

# ama.1 is the page of the group in ama/cli/main.py, which carries no examples of its own.
ROOT_EXAMPLES: list[tuple[str, str]] = [
    ("List the commands:", "ama --help"),
    ("Read the manual of one command:", "man ama-hash-object"),
    ("Store a folder's files and record them as a version:",
     "ama commit-manifest $(ama write-tree) -m 'first'"),
]
ROOT_SEE_ALSO = ["ama-format(5)", "b3sum(1)", "git(1)"]

_SEE_ALSO_RE = re.compile(r"(.+)\((\w+)\)\Z")
_WORD_RE = re.compile(r"[A-Z][A-Z0-9_]*(?:\.\.\.|…)?\Z")


# -- roff escaping ---------------------------------------------------------------------------


def escape(text: str) -> str:
    """Return ``text`` as roff that prints as ``text``: backslashes as ``\\e``, hyphens as
    ``\\-`` (so commands and options copy and paste), non-ASCII as ``\\[uXXXX]``."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\e")
        elif ch == "-":
            out.append("\\-")
        elif ord(ch) > 126 or (ord(ch) < 32 and ch != "\t"):
            out.append(f"\\[u{ord(ch):04X}]" if ord(ch) > 126 else " ")
        else:
            out.append(ch)
    return "".join(out)


def line(roff: str) -> str:
    """Return an already escaped text line that roff cannot take for a request: a leading
    ``.`` or ``'`` is guarded by ``\\&`` and leading spaces (which would break the line) go."""
    roff = roff.lstrip(" ")
    if roff.startswith((".", "'")):
        return "\\&" + roff
    return roff


def text_line(text: str) -> str:
    """Return ``text`` as one escaped, safe roff text line."""
    return line(escape(text))


def bold(text: str) -> str:
    return f"\\fB{escape(text)}\\fR"


def italic(text: str) -> str:
    return f"\\fI{escape(text)}\\fR"


def reference(name: str) -> str:
    """Return ``ama-fsck(1)`` as roff: the page name in bold, its section after it."""
    match = _SEE_ALSO_RE.match(name)
    if match is None:
        return escape(name)
    return f"{bold(match.group(1))}({escape(match.group(2))})"


# -- reading the click definitions ------------------------------------------------------------


def help_paragraphs(help_text: str | None) -> list[tuple[bool, str]]:
    """Split a command's help into paragraphs: ``(verbatim, text)`` pairs.

    As click does: text after ``\\f`` is dropped, and a paragraph whose first line is ``\\b``
    keeps its line breaks (``verbatim``); other paragraphs are re-flowed.
    """
    if not help_text:
        return []
    text = inspect.cleandoc(help_text).partition("\f")[0]
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        if block.startswith("\b"):
            paragraphs.append((True, block[1:].strip("\n")))
        else:
            paragraphs.append((False, " ".join(block.split())))
    return paragraphs


def summary(command: click.Command, fallback: str = "") -> str:
    """The one-line summary of a command: its table entry, else its short help."""
    if fallback:
        return fallback
    return command.get_short_help_str(limit=200)


def context(command: click.Command, name: str, parent: click.Context | None = None
             ) -> click.Context:
    """A context for ``command`` as ``make_context`` would build it, without parsing."""
    return click.Context(command, info_name=name, parent=parent, **command.context_settings)


def subcommands(ctx: click.Context) -> Iterator[click.Context]:
    """Yield a context for each visible leaf command below the group of ``ctx``, in order,
    descending into nested groups."""
    group = ctx.command
    assert isinstance(group, click.Group)
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        sub_ctx = context(sub, name, ctx)
        if isinstance(sub, click.Group):
            yield from subcommands(sub_ctx)
        else:
            yield sub_ctx


def options(ctx: click.Context, with_help: bool = True) -> list[tuple[str, str]]:
    """``(roff term, help text)`` for each visible option of the command of ``ctx``
    (leaving out ``--help`` unless ``with_help``)."""
    rows = []
    help_option = ctx.command.get_help_option(ctx)
    for param in ctx.command.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden:
            continue
        if param is help_option and not with_help:
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        rows.append((_term(names), " ".join(help_text.split())))
    return rows


def _term(names: str) -> str:
    """``-o, --output FILE`` in roff: option names bold, metavars italic."""
    parts = []
    for alternative in names.split(", "):
        words = alternative.split(" ")
        shown = [bold(words[0])]
        shown.extend(italic(w) if _WORD_RE.match(w) else escape(w) for w in words[1:])
        parts.append(" ".join(shown))
    return ", ".join(parts)


def usage(ctx: click.Context) -> str:
    """The synopsis line of the command of ``ctx`` in roff."""
    pieces = [bold(ctx.command_path)]
    for piece in ctx.command.collect_usage_pieces(ctx):
        pieces.append(_usage_piece(piece))
    return " ".join(pieces)


def _usage_piece(piece: str) -> str:
    out = []
    for token in re.split(r"([A-Z][A-Z0-9_]*)", piece):
        if token and re.fullmatch(r"[A-Z][A-Z0-9_]*", token):
            out.append(italic(token))
        else:
            out.append(escape(token))
    return "".join(out)


# -- writing a page ---------------------------------------------------------------------------


class Page:
    """The lines of one man page, written as the macros of man(7)."""

    def __init__(self, name: str, section: int) -> None:
        self.lines: list[str] = [
            f'.TH "{name.upper()}" "{section}" "" "ama {__version__}" "{MANUAL}"',
            ".ie \\n(.g .ds Aq \\(aq",  # a straight quote in examples, as man-db advises
            ".el .ds Aq '",
            ".nh",  # no hyphenation: ids, paths and options are never split
            ".ad l",
        ]

    def section(self, title: str) -> None:
        self.lines.append(f".SH {title}")

    def subsection(self, roff: str) -> None:
        self.lines.extend([".SS", line(roff)])

    def paragraph(self, roff: str) -> None:
        self.lines.extend([".PP", line(roff)])

    def help(self, help_text: str | None) -> None:
        """Add a command's help paragraphs."""
        for verbatim, text in help_paragraphs(help_text):
            if verbatim:
                self.lines.extend([".PP", ".nf"])
                self.lines.extend("\\&" + escape(t) for t in text.splitlines())
                self.lines.append(".fi")
            else:
                self.paragraph(escape(text))

    def item(self, term: str, roff: str) -> None:
        self.lines.extend([".TP", line(term), line(roff)])

    def example(self, text: str, command: str) -> None:
        self.paragraph(escape(text))
        shown = escape(command).replace("'", "\\*(Aq")
        self.lines.extend([".PP", ".RS 4", ".nf", line(f"$ {shown}"), ".fi", ".RE"])

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def _page_name(ctx: click.Context) -> str:
    return ctx.command_path.replace(" ", "-")


def _options_section(page: Page, ctx: click.Context) -> None:
    rows = options(ctx)
    for term, help_text in rows:
        page.item(term, escape(help_text) if help_text else "")
    if not rows:
        page.paragraph("None.")


def _exit_status_section(page: Page, codes: dict[int, str]) -> None:
    for code, text in sorted(codes.items()):
        page.item(bold(str(code)), escape(text))


def _see_also_section(page: Page, names: Iterable[str], own: str) -> None:
    seen: list[str] = []
    for name in names:
        if name not in seen and not name.startswith(own + "("):
            seen.append(name)
    page.paragraph(", ".join(reference(n) for n in seen) if seen else "None.")


def command_page(ctx: click.Context, table_summary: str = "") -> str:
    """Return the page of the command of ``ctx`` (a group lists its subcommands)."""
    command = ctx.command
    name = _page_name(ctx)
    page = Page(name, 1)
    page.section("NAME")
    page.lines.append(line(f"{escape(name)} \\- {escape(summary(command, table_summary))}"))

    leaves = list(subcommands(ctx)) if isinstance(command, click.Group) else []
    page.section("SYNOPSIS")
    page.lines.append(line(usage(ctx)))
    for sub in leaves:
        page.lines.extend([".br", line(usage(sub))])

    page.section("DESCRIPTION")
    page.help(command.help)
    if not command.help:
        page.paragraph(escape(summary(command, table_summary)) + ".")

    page.section("OPTIONS")
    _options_section(page, ctx)

    codes = getattr(command, "exit_codes", None) or EXIT_CODES
    examples = list(getattr(command, "examples", []))
    see_also = list(getattr(command, "see_also", []))
    if leaves:
        page.section("COMMANDS")
        for sub in leaves:
            page.subsection(usage(sub))
            page.help(sub.command.help or sub.command.get_short_help_str(limit=200))
            for term, help_text in options(sub, with_help=False):
                page.item(term, escape(help_text) if help_text else "")
            sub_codes = getattr(sub.command, "exit_codes", None)
            if sub_codes and sub_codes != codes:
                page.paragraph(f"Exit status of {bold(sub.command_path)}:")
                _exit_status_section(page, sub_codes)
            examples.extend(e for e in getattr(sub.command, "examples", []) if e not in examples)
            see_also.extend(getattr(sub.command, "see_also", []))

    page.section("EXIT STATUS")
    _exit_status_section(page, codes)

    page.section("EXAMPLES")
    for text, example in examples:
        page.example(text, example)
    if not examples:
        page.paragraph("See " + reference("ama(1)") + ".")

    page.section("SEE ALSO")
    _see_also_section(page, [*see_also, "ama(1)"], name)
    return page.render()


def root_page(ctx: click.Context, table: dict[str, tuple[str, str, str]]) -> str:
    """Return ``ama.1``: what ama is, its options and every command of the table, by group."""
    command = ctx.command
    assert isinstance(command, click.Group)
    page = Page("ama", 1)
    page.section("NAME")
    text = summary(command).rstrip(".")
    text = text[len("ama: "):] if text.startswith("ama: ") else text
    page.lines.append(line(f"ama \\- {escape(text)}"))
    page.section("SYNOPSIS")
    page.lines.append(line(usage(ctx)))
    page.section("DESCRIPTION")
    page.help(command.help)
    page.section("OPTIONS")
    _options_section(page, ctx)
    page.section("COMMANDS")
    groups: dict[str, list[str]] = {}
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        group = table[name][2] if name in table else "other"
        groups.setdefault(group, []).append(name)
    for group, names in groups.items():
        page.subsection(escape(f"{group.capitalize()} commands"))
        for name in names:
            page.item(reference(f"ama-{name}(1)"), escape(table[name][1] if name in table
                                                           else ""))
    page.section("EXIT STATUS")
    from ama.cli.main import INTERRUPT_GRACE

    _exit_status_section(page, {**(getattr(command, "exit_codes", None) or EXIT_CODES),
                                130: f"interrupted (Ctrl-C): the command unwinds, or, "
                                     f"{INTERRUPT_GRACE:.0f} seconds later or at a second "
                                     "Ctrl-C, stops at once as a kill would; run it again "
                                     "to go on"})
    page.section("EXAMPLES")
    for text, example in getattr(command, "examples", None) or ROOT_EXAMPLES:
        page.example(text, example)
    page.section("SEE ALSO")
    _see_also_section(page, getattr(command, "see_also", None) or ROOT_SEE_ALSO, "ama")
    return page.render()


def generate() -> dict[str, str]:
    """Return every generated page: file name -> roff text."""
    from ama.cli.main import COMMANDS, cli

    root = context(cli, "ama")
    pages = {"ama.1": root_page(root, COMMANDS)}
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        if command is None or command.hidden:
            continue
        ctx = context(command, name, root)
        entry = COMMANDS.get(name)
        pages[f"{_page_name(ctx)}.1"] = command_page(ctx, entry[1] if entry else "")
    for program, group in _other_programs():
        top = context(group, program)
        pages[f"{program}.1"] = command_page(top)
        for name in group.list_commands(top):
            command = group.get_command(top, name)
            if command is not None and not command.hidden:
                ctx = context(command, name, top)
                pages[f"{_page_name(ctx)}.1"] = command_page(ctx)
    return pages


def _other_programs() -> list[tuple[str, click.Group]]:
    """The other console scripts of this distribution whose module has a click group
    ``cli`` (``ama-server``), found through the installed entry points so the client's
    command line never imports the remote's code."""
    import importlib
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group="console_scripts"):
        if ep.name.startswith("ama") and ep.module != "ama.cli.main" and (
                ep.dist is None or ep.dist.name == "amapy"):
            group = getattr(importlib.import_module(ep.module), "cli", None)
            if isinstance(group, click.Group):
                found.append((ep.name, group))
    return sorted(found, key=lambda item: item[0])


def write(folder: str | Path) -> list[Path]:
    """Write every page into ``folder`` and remove generated pages of commands that are
    gone (``ama*.1`` files not generated now); return the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pages = generate()
    for stale in folder.glob("ama*.1"):
        if stale.name not in pages:
            stale.unlink()
    written = []
    for file_name, text in sorted(pages.items()):
        path = folder / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m ama.cli.manpages FOLDER``: write the pages into FOLDER."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ama.cli.manpages FOLDER", file=sys.stderr)
        return 2
    for path in write(args[0]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
