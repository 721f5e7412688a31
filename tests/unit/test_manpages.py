"""The man pages: generated from the command definitions, checked in, complete, renderable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from ama.cli import manpages
from ama.cli.command import group
from ama.cli.main import COMMANDS, cli
from ama.plumbing.hashing import EMPTY_BLOB_ID, hash_bytes
from ama.plumbing.objects import Tree, TreeEntry

MAN_DIR = Path(__file__).resolve().parents[2] / "man"
SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES",
            "SEE ALSO")
GENERATED = sorted(p.name for p in MAN_DIR.glob("*.1"))
ALL_PAGES = sorted(p.name for p in MAN_DIR.glob("*.[15]"))
HAVE_MAN = shutil.which("man") is not None


def render(path: Path) -> tuple[str, str]:
    """Render a page as `MANWIDTH=80 man --warnings -l` does; return (text, warnings)."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], "MANWIDTH": "80",
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MANPAGER": "cat", "PAGER": "cat",
           "MAN_KEEP_FORMATTING": ""}
    done = subprocess.run(["man", "--warnings", "-l", str(path)], capture_output=True,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()
    text = re.sub(r".\x08", "", done.stdout.decode())  # overstrike bold and underline
    return text, done.stderr.decode()


def test_checked_in_pages_are_what_the_commands_generate(tmp_path: Path) -> None:
    written = manpages.write(tmp_path)
    fresh = {p.name: p.read_text(encoding="utf-8") for p in written}
    stale = []
    for name, text in fresh.items():
        checked_in = MAN_DIR / name
        if not checked_in.exists() or checked_in.read_text(encoding="utf-8") != text:
            stale.append(name)
    extra = [name for name in GENERATED if name not in fresh]
    assert not stale and not extra, (
        f"man/ is out of date (differs: {stale}, no longer generated: {extra}); "
        "run 'make man' and commit man/"
    )


def test_every_command_of_the_table_has_a_page() -> None:
    assert "ama.1" in GENERATED
    for name in COMMANDS:
        assert f"ama-{name}.1" in GENERATED


def test_generation_is_deterministic() -> None:
    assert manpages.generate() == manpages.generate()


@pytest.mark.parametrize("name", GENERATED)
def test_every_generated_page_has_the_seven_sections_in_order(name: str) -> None:
    text = (MAN_DIR / name).read_text(encoding="utf-8")
    headings = re.findall(r"^\.SH (.+)$", text, re.MULTILINE)
    assert [h for h in headings if h in SECTIONS] == list(SECTIONS)
    assert re.search(r"^\.TH \"[A-Z-]+\" \"1\" \"\" \"ama \d", text, re.MULTILINE)


@pytest.mark.parametrize("name", ALL_PAGES)
def test_every_page_refers_only_to_pages_that_exist(name: str) -> None:
    text = (MAN_DIR / name).read_text(encoding="utf-8")
    for page, section in re.findall(r"\\fB(ama(?:\\-[a-z0-9\\-]+)?)\\fR\((\d)\)", text):
        target = f"{page.replace(chr(92) + '-', '-')}.{section}"
        assert (MAN_DIR / target).exists(), f"{name} refers to {target}, which does not exist"


@pytest.mark.skipif(not HAVE_MAN, reason="man (Debian package man-db) is not installed")
@pytest.mark.parametrize("name", ALL_PAGES)
def test_every_page_renders_without_warnings(name: str) -> None:
    text, warnings = render(MAN_DIR / name)
    assert warnings == ""
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.MULTILINE), f"{section} not rendered"
    assert "\\-" not in text and "\\fB" not in text  # no escape leaked into the output


@pytest.mark.skipif(not HAVE_MAN, reason="man (Debian package man-db) is not installed")
def test_hash_object_page_reads_as_its_help() -> None:
    text, _ = render(MAN_DIR / "ama-hash-object.1")
    assert "ama-hash-object - Compute object ids of files" in text
    assert "ama hash-object [OPTIONS] [FILES]..." in text
    assert re.search(r"^\s+--stdin-paths\n\s+Read file paths from stdin", text, re.MULTILINE)
    assert re.search(r"^\s+3\s+not found", text, re.MULTILINE)
    assert "$ find data -type f | ama hash-object -w --stdin-paths" in text


@pytest.mark.skipif(not HAVE_MAN, reason="man (Debian package man-db) is not installed")
def test_root_page_lists_every_command() -> None:
    text, _ = render(MAN_DIR / "ama.1")
    for name, (_module, summary, _group) in COMMANDS.items():
        words = r"\s+".join(re.escape(w) for w in summary.split())
        assert re.search(rf"^\s+ama-{name}\(1\)\n\s+{words}", text, re.MULTILINE), name


def test_roff_escaping() -> None:
    assert manpages.escape(r"a\b") == r"a\eb"
    assert manpages.escape("--all") == r"\-\-all"
    assert manpages.escape("refs/…") == r"refs/\[u2026]"
    assert manpages.text_line(".hidden") == r"\&.hidden"
    assert manpages.text_line("'quoted'") == r"\&'quoted'"
    assert manpages.text_line("  indented") == "indented"


@group("remote", examples=[("List the remotes:", "ama remote list")],
       see_also=["ama-remote(1)", "ama-show-ref(1)"])
def _remote() -> None:
    """Manage remotes.

    \b
    .verbatim   spacing
    'kept \\ as is
    """


@_remote.command("add", examples=[("Add one:", "ama remote add origin 'file:///srv/x'")],
                 exit_codes={0: "added", 1: "a remote of that name exists"})
@click.option("--default", "make_default", is_flag=True,
              help=".dot first, a \\ backslash, 'quotes'.")
@click.argument("name")
@click.argument("url")
def _remote_add(make_default: bool, name: str, url: str) -> None:
    """Add the remote NAME at URL."""


@_remote.group("token")
def _remote_token() -> None:
    """Tokens."""


@_remote_token.command("set")
@click.option("--expires", metavar="DAYS", type=int, help="Days until it expires.")
def _remote_token_set(expires: int | None) -> None:
    """Store a token."""


def test_group_page_lists_every_subcommand_with_its_options(tmp_path: Path) -> None:
    root = manpages.context(cli, "ama")
    roff = manpages.command_page(manpages.context(_remote, "remote", root), "Manage remotes")
    headings = re.findall(r"^\.SH (.+)$", roff, re.MULTILINE)
    assert headings == ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS",
                        "EXIT STATUS", "EXAMPLES", "SEE ALSO"]
    assert r"\fBama remote add\fR [\fIOPTIONS\fR] \fINAME\fR \fIURL\fR" in roff
    assert r"\fBama remote token set\fR [\fIOPTIONS\fR]" in roff
    assert r"\&.dot first, a \e backslash, 'quotes'." in roff
    assert r"\&.verbatim   spacing" in roff
    if not HAVE_MAN:
        return
    page = tmp_path / "ama-remote.1"
    page.write_text(roff, encoding="utf-8")
    text, warnings = render(page)
    assert warnings == ""
    assert "ama-remote - Manage remotes" in text
    assert re.search(r"^\s+ama remote add \[OPTIONS\] NAME URL$", text, re.MULTILINE)
    assert re.search(r"^\s+--default\n\s+\.dot first, a \\ backslash, 'quotes'\.", text,
                     re.MULTILINE)
    assert re.search(r"^\s+--expires DAYS\n\s+Days until it expires\.", text, re.MULTILINE)
    assert re.search(r"^\s+1\s+a remote of that name exists", text, re.MULTILINE)
    assert "$ ama remote list" in text and "$ ama remote add origin 'file:///srv/x'" in text
    assert ".verbatim   spacing" in text and "'kept \\ as is" in text
    see_also = text.split("SEE ALSO")[1]
    assert "ama-show-ref(1)" in see_also and "ama-remote(1)" not in see_also


def test_format_page_pins_real_ids() -> None:
    text = (MAN_DIR / "ama-format.5").read_text(encoding="utf-8")
    hello = hash_bytes(b"hello\n")
    tree = Tree.of([TreeEntry("blob", hello, 6, "hello.txt")]).serialize()
    for oid in (EMPTY_BLOB_ID, hash_bytes(Tree().serialize()), hello, hash_bytes(tree)):
        assert oid in text
    assert f"blob {hello} 6\thello.txt" in text
