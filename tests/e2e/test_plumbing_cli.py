"""Every plumbing command, through the installed ``ama`` and through click's CliRunner:
outputs, exit codes (docs/design.md §6), and bad input leaving the store and index untouched."""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from blake3 import blake3

from tests.e2e.conftest import Ama, installed

EMPTY_ID = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
HELLO_ID = "8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99"
SUB_ID = "271bfe4688a3db29c466b7da4549f3b0f8dbab69e36b8c9fd04b3d9a6f494a0f"
ROOT_ID = "cb10e03ea6baf52007b00c8ea552274cc3537b8bb49b24b37c48ab68c6398f26"
MANIFEST_ID = "795d6f0110fbc5cf043809db22b570e3f7dd1e7a631c966cf61bd56d583221d8"
RUN_BYTES = b"#!/bin/sh\necho hi\n"
ADA = {"AMA_AUTHOR_NAME": "Ada", "AMA_AUTHOR_EMAIL": "ada@example.org",
       "AMA_AUTHOR_DATE": "2026-11-27T16:00:00Z"}
ZERO = "0" * 64
ABSENT = "1" * 64  # an id no test stores


def home() -> Path:
    return Path(os.environ["AMA_HOME"])


def object_path(oid: str) -> Path:
    return home() / "objects" / oid[:2] / oid[2:]


def put(root: Path, rel: str, data: bytes | str, mode: int | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        os.chmod(path, mode)
    return path


def snapshot(ama: Ama) -> dict[str, tuple[bytes, int]]:
    """Every file of the asset store and of ``.ama/``: bytes and permission bits."""
    found = {}
    for base in (home(), ama.cwd / ".ama"):
        if base.exists():
            for p in sorted(base.rglob("*")):
                if p.is_file():
                    found[str(p)] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return found


@dataclass
class Built:
    tree: str
    manifest: str


def build_golden(ama: Ama) -> Built:
    """The files of the golden tree, staged and recorded as the golden manifest."""
    put(ama.cwd, "empty", b"")
    put(ama.cwd, "run.sh", RUN_BYTES, 0o755)
    put(ama.cwd, "sub/hello.txt", b"hello\n")
    ama.ok("update-index", "--add", "empty", "run.sh", "sub/hello.txt")
    tree = ama.ok("write-tree")
    put(ama.cwd.parent, "message.txt", "first\n")
    manifest = ama.ok("commit-manifest", tree, "-F", str(ama.cwd.parent / "message.txt"),
                      env=ADA)
    return Built(tree, manifest)


def commit(ama: Ama, tree: str, message: str, *parents: str) -> str:
    args = [a for p in parents for a in ("-p", p)]
    return ama.ok("commit-manifest", tree, "-m", message, *args, env=ADA)


# -- golden ids ----------------------------------------------------------------------------

def test_golden_ids(ama: Ama) -> None:
    built = build_golden(ama)
    assert built.tree == ROOT_ID
    assert built.manifest == MANIFEST_ID
    assert ama.ok("hash-object", "empty") == EMPTY_ID
    assert ama.ok("rev-parse", f"{MANIFEST_ID[:8]}^{{tree}}") == ROOT_ID
    assert object_path(MANIFEST_ID).read_bytes() == (
        b'{"author":{"email":"ada@example.org","name":"Ada"},"created":"2026-11-27T16:00:00Z",'
        b'"format":"ama-manifest/1","inputs":[],"message":"first\\n","metadata":{},'
        b'"parents":[],"tree":"' + ROOT_ID.encode() + b'"}')


def test_the_same_files_give_the_same_tree_anywhere(ama: Ama, tmp_path: Path) -> None:
    built = build_golden(ama)
    other = tmp_path / "elsewhere" / "deeper"
    put(other, "sub/hello.txt", b"hello\n")
    put(other, "run.sh", RUN_BYTES, 0o755)
    put(other, "empty", b"")
    index_env = {"AMA_INDEX_FILE": "../scratch.index"}
    ama.ok("update-index", "--add", "sub/hello.txt", "run.sh", "empty", cwd=other,
           env=index_env)
    assert (tmp_path / "elsewhere" / "scratch.index").is_file()
    assert ama.ok("write-tree", cwd=other, env=index_env) == built.tree


def test_ama_finds_the_asset_directory_from_a_subfolder(ama: Ama) -> None:
    build_golden(ama)
    assert ama.ok("ls-files", cwd=ama.cwd / "sub") == "empty\nrun.sh\nsub/hello.txt"
    put(ama.cwd, "sub/new.txt", "new")
    ama.ok("update-index", "--add", "new.txt", cwd=ama.cwd / "sub")
    assert "sub/new.txt" in ama.ok("ls-files")


def test_outside_an_asset_directory_commands_exit_3(ama: Ama, tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    for args in (["ls-files"], ["write-tree"], ["update-index", "--add", "x"]):
        result = ama.fails(3, *args, cwd=nowhere)
        assert f"not an asset directory (nor any parent up to /): {nowhere}" in result.err
        assert "hint: run 'ama init CLASS'" in result.err


# -- hash-object ---------------------------------------------------------------------------

def test_hash_object_prints_the_blake3_of_files(ama: Ama) -> None:
    sizes = [0, (1 << 20) - 1, 1 << 20, (1 << 20) + 1]  # both sides of the mmap threshold
    datas = [random.Random(size).randbytes(size) for size in sizes]
    for n, data in enumerate(datas):
        put(ama.cwd, f"f{n}.bin", data)
    ids = ama.ok("hash-object", *[f"f{n}.bin" for n in range(len(sizes))]).split("\n")
    assert ids == [blake3(data).hexdigest() for data in datas]
    assert not (home() / "objects").exists()  # nothing stored without -w


def test_hash_object_w_stores_and_prints_ids_in_order(ama: Ama) -> None:
    put(ama.cwd, "b.txt", "bbb")
    put(ama.cwd, "a.txt", "a")
    ids = ama.ok("hash-object", "-w", "b.txt", "a.txt").split("\n")
    assert ids == [blake3(b"bbb").hexdigest(), blake3(b"a").hexdigest()]
    for oid in ids:
        assert stat.S_IMODE(object_path(oid).stat().st_mode) == 0o444
    assert ama.ok("cat-object", "-p", ids[0]) == "bbb"


def test_hash_object_stdin_and_stdin_paths(ama: Ama) -> None:
    assert ama.ok("hash-object", "--stdin", input=b"hello\n") == HELLO_ID
    assert not object_path(HELLO_ID).exists()
    assert ama.ok("hash-object", "-w", "--stdin", input=b"hello\n") == HELLO_ID
    assert object_path(HELLO_ID).read_bytes() == b"hello\n"
    put(ama.cwd, "x y.txt", "spaced")
    put(ama.cwd, "z.txt", "")
    out = ama.ok("hash-object", "-w", "--stdin-paths", input="x y.txt\nz.txt\n")
    assert out.split("\n") == [blake3(b"spaced").hexdigest(), EMPTY_ID]
    assert object_path(EMPTY_ID).exists()
    ama.fails(2, "hash-object", "--stdin", "--stdin-paths")


def test_hash_object_bad_paths(ama: Ama) -> None:
    put(ama.cwd, "good.txt", "good")
    before = snapshot(ama)
    result = ama.fails(3, "hash-object", "-w", "good.txt", "missing.txt")
    assert "missing.txt: no such file" in result.err
    assert result.out == b""
    assert snapshot(ama) == before  # the good file was not stored either
    (ama.cwd / "folder").mkdir()
    ama.fails(2, "hash-object", "folder")
    os.mkfifo(ama.cwd / "pipe")
    assert "pipe is not a regular file" in ama.fails(2, "hash-object", "pipe").err


# -- cat-object ----------------------------------------------------------------------------

def test_cat_object_type_size_content_and_existence(ama: Ama) -> None:
    built = build_golden(ama)
    assert ama.ok("cat-object", "-t", HELLO_ID) == "blob"
    assert ama.ok("cat-object", "-t", built.tree[:6]) == "tree"
    assert ama.ok("cat-object", "-t", built.manifest[:4]) == "manifest"
    assert ama.ok("cat-object", "-s", HELLO_ID[:5]) == "6"
    assert ama.ok("cat-object", "-s", built.tree) == str(object_path(built.tree).stat().st_size)
    assert ama("cat-object", "-p", blake3(RUN_BYTES).hexdigest()[:6]).out == RUN_BYTES
    assert ama.ok("cat-object", "-p", built.tree) == (
        f"blob {EMPTY_ID} 0\tempty\n"
        f"exec {blake3(RUN_BYTES).hexdigest()} 18\trun.sh\n"
        f"tree {SUB_ID} 6\tsub")
    shown = ama.ok("cat-object", "-p", built.manifest)
    assert json.loads(shown)["tree"] == built.tree
    assert json.loads(shown)["message"] == "first\n"
    result = ama("cat-object", "-e", built.manifest)
    assert (result.code, result.out, result.err) == (0, b"", "")


def test_cat_object_errors(ama: Ama) -> None:
    ama.ok("hash-object", "-w", "--stdin", input=b"hello\n")
    result = ama("cat-object", "-e", EMPTY_ID)
    assert (result.code, result.out) == (1, b"")
    result = ama.fails(3, "cat-object", "-t", EMPTY_ID)
    assert f"object {EMPTY_ID} is not in" in result.err
    unknown = "0000" if not HELLO_ID.startswith("0000") else "ffff"
    assert f"no object id starts with {unknown}" in ama.fails(3, "cat-object", "-t",
                                                               unknown).err
    assert "'xyz!' is not an object id" in ama.fails(3, "cat-object", "-t", "xyz!").err
    for bad in ("8e4", "8E4C7C", HELLO_ID + "0"):
        result = ama.fails(2, "cat-object", "-t", bad)
        assert f"{bad!r} is not an object id" in result.err
    assert "give one of -t, -s, -p or -e" in ama.fails(2, "cat-object", HELLO_ID).err
    ama.fails(2, "cat-object", "-t")


# -- mktree / ls-tree ----------------------------------------------------------------------

def test_mktree_rebuilds_a_tree_from_ls_tree_lines_in_any_order(ama: Ama) -> None:
    built = build_golden(ama)
    lines = ama.ok("ls-tree", built.tree).split("\n")
    assert ama.ok("mktree", input="\n".join(reversed(lines)) + "\n") == built.tree
    assert ama.ok("mktree", "-z", input="\0".join(lines) + "\0") == built.tree
    kept = [line for line in lines if not line.endswith("\trun.sh")]
    smaller = ama.ok("mktree", input="\n".join(kept) + "\n")
    assert ama.ok("ls-tree", "--name-only", smaller) == "empty\nsub"
    assert ama.ok("mktree", input="") == blake3(b"ama-tree 1\n").hexdigest()


def test_mktree_accepts_any_valid_name(ama: Ama) -> None:
    ama.ok("hash-object", "-w", "--stdin", input=b"hello\n")
    name = "naïve name with spaces ✓"
    tree = ama.ok("mktree", "-z", input=f"blob {HELLO_ID} 6\t{name}\0")
    assert ama.ok("ls-tree", "--name-only", tree) == name


MKTREE_BAD = [
    ("blob {h} 6 hello.txt", 2, "input line 1: expected '<type> <id> <size>"),
    ("lnk {h} 6\thello.txt", 2, "unknown type 'lnk'"),
    ("blob {h} 06\thello.txt", 2, "not a canonical number"),
    ("blob {h} 7\thello.txt", 2, "size 7 is wrong"),
    ("blob 8e4c7c1b 6\thello.txt", 2, "'8e4c7c1b' is not an object id"),
    ("blob {h} 6\t..", 2, "'..' is not allowed"),
    ("blob {h} 6\ta/b", 2, "cannot contain '/'"),
    ("blob {h} 6\tsame\nblob {h} 6\tsame", 2, "two entries named 'same'"),
    ("blob {e} 0\tempty", 3, f"empty: object {EMPTY_ID} is not in the asset store"),
    ("tree {h} 6\tsub", 2, f"object {HELLO_ID} is not a tree"),
]


def test_mktree_refuses_malformed_input_and_writes_nothing(ama: Ama) -> None:
    ama.ok("hash-object", "-w", "--stdin", input=b"hello\n")
    before = snapshot(ama)
    for line, code, said in MKTREE_BAD:
        result = ama.fails(code, "mktree", input=line.format(h=HELLO_ID, e=EMPTY_ID) + "\n")
        assert said in result.err, line
        assert result.out == b""
        assert snapshot(ama) == before, line


def test_mktree_z_refuses_control_characters_in_names(ama: Ama) -> None:
    ama.ok("hash-object", "-w", "--stdin", input=b"hello\n")
    before = snapshot(ama)
    names = ["x\nx", "x\tx", ".", "x\rx"]
    if ama.mode == "clirunner":
        names.pop()  # CliRunner's stdin turns \r into \n; a real stdin passes it through
    for name in names:
        result = ama.fails(2, "mktree", "-z", input=f"blob {HELLO_ID} 6\t{name}\0")
        assert f"invalid name {name!r}" in result.err
        assert snapshot(ama) == before


def test_ls_tree_recursive_nul_and_names(ama: Ama) -> None:
    built = build_golden(ama)
    run_id = blake3(RUN_BYTES).hexdigest()
    assert ama.ok("ls-tree", "-r", built.manifest) == (
        f"blob {EMPTY_ID} 0\tempty\nexec {run_id} 18\trun.sh\nblob {HELLO_ID} 6\tsub/hello.txt")
    assert ama("ls-tree", "-r", "-z", "--name-only", built.tree).out == (
        b"empty\0run.sh\0sub/hello.txt\0")
    assert ama.ok("ls-tree", "--name-only", SUB_ID[:7]) == "hello.txt"
    assert (f"object {HELLO_ID} is a blob, not a tree or a manifest"
            in ama.fails(2, "ls-tree", HELLO_ID).err)


# -- update-index / ls-files ---------------------------------------------------------------

def test_update_index_stages_a_link_inside_the_asset_as_a_link(ama: Ama) -> None:
    put(ama.cwd, "zones/Paris", "CET")
    os.symlink("zones/Paris", ama.cwd / "Monaco")
    ama.ok("update-index", "--add", "Monaco", "zones/Paris")
    assert ama.ok("ls-files", "-s") == (
        f"link {blake3(b'zones/Paris').hexdigest()} 11\tMonaco\n"
        f"blob {blake3(b'CET').hexdigest()} 3\tzones/Paris")
    tree = ama.ok("write-tree")
    assert ama.ok("cat-object", "-p", tree).startswith("ama-tree 2\nlink ")


def test_update_index_add_remove_force_remove(ama: Ama) -> None:
    put(ama.cwd, "a.txt", "a")
    put(ama.cwd, "b.txt", "b")
    result = ama.fails(2, "update-index", "a.txt")
    assert "a.txt is not staged yet" in result.err and "--add" in result.err
    ama.ok("update-index", "--add", "a.txt", "b.txt")
    assert ama.ok("ls-files", "-s") == (
        f"blob {blake3(b'a').hexdigest()} 1\ta.txt\nblob {blake3(b'b').hexdigest()} 1\tb.txt")
    put(ama.cwd, "a.txt", "changed")
    ama.ok("update-index", "a.txt")  # a staged file is updated without --add
    assert f"blob {blake3(b'changed').hexdigest()} 7\ta.txt" in ama.ok("ls-files", "-s")
    (ama.cwd / "b.txt").unlink()
    result = ama.fails(2, "update-index", "b.txt")
    assert "b.txt no longer exists" in result.err and "--remove" in result.err
    ama.ok("update-index", "--remove", "b.txt")
    assert ama.ok("ls-files") == "a.txt"
    ama.ok("update-index", "--remove", "a.txt")  # it exists: --remove keeps it staged
    assert ama.ok("ls-files") == "a.txt"
    ama.ok("update-index", "--force-remove", "a.txt")
    assert ama.ok("ls-files") == ""
    assert (ama.cwd / "a.txt").read_text() == "changed"
    assert "not staged" in ama.fails(3, "update-index", "--force-remove", "a.txt").err


def test_update_index_stdin_with_nul_separated_paths(ama: Ama) -> None:
    put(ama.cwd, "with space.txt", "1")
    put(ama.cwd, "d/ü.txt", "2")
    ama.ok("update-index", "--add", "--stdin", "-z", input="with space.txt\0d/ü.txt\0")
    assert ama("ls-files", "-z").out == "d/ü.txt\0with space.txt\0".encode()
    put(ama.cwd, "line.txt", "3")
    ama.ok("update-index", "--add", "--stdin", input="line.txt\n")
    assert "line.txt" in ama.ok("ls-files")


def test_update_index_records_the_executable_bit(ama: Ama) -> None:
    put(ama.cwd, "tool", "#!/bin/sh\n", 0o755)
    ama.ok("update-index", "--add", "tool")
    assert ama.ok("ls-files", "-s").startswith("exec ")


def test_update_index_refresh(ama: Ama) -> None:
    put(ama.cwd, "same", "same")
    put(ama.cwd, "edit", "before")
    ama.ok("update-index", "--add", "same", "edit")
    os.utime(ama.cwd / "same", ns=(0, 10**18))  # touched: new mtime, same bytes
    ama.ok("update-index", "--refresh")
    assert ama.ok("ls-files", "-m") == ""
    put(ama.cwd, "edit", "after!")
    result = ama.fails(1, "update-index", "--refresh")
    assert result.text == "edit: needs update\n"
    assert "1 staged file(s) changed" in result.err
    ama.ok("update-index", "edit")
    ama.ok("update-index", "--refresh")


def test_update_index_with_one_bad_path_changes_nothing(ama: Ama) -> None:
    put(ama.cwd, "staged.txt", "old")
    ama.ok("update-index", "--add", "staged.txt")
    put(ama.cwd, "staged.txt", "new content")
    put(ama.cwd, "good.txt", "good")
    (ama.cwd / "dir").mkdir()
    os.mkfifo(ama.cwd / "pipe")
    os.symlink("../outside", ama.cwd / "link")
    put(ama.cwd.parent, "outside", "x")
    put(ama.cwd, "new\nline", "x")
    put(ama.cwd, "tab\there", "x")
    before = snapshot(ama)
    for bad, code, said in [
        ("new\nline", 2, "a name cannot contain '\\n'"),
        ("tab\there", 2, "a name cannot contain '\\t'"),
        ("missing.txt", 3, "missing.txt: no such file"),
        ("dir", 2, "dir is a folder"),
        ("pipe", 2, "pipe: is a FIFO"),
        ("link", 2, "link: is a symbolic link"),
        ("../outside", 2, "../outside is outside the asset directory"),
        (".ama/index", 2, ".ama/index is inside .ama/"),
    ]:
        result = ama.fails(code, "update-index", "--add", "-z", "--stdin",
                           input=f"staged.txt\0good.txt\0{bad}\0")
        assert said in result.err, bad
        assert snapshot(ama) == before, bad


def test_ls_files_selects_modified_deleted_and_others(ama: Ama) -> None:
    for name in ("keep", "edit", "gone"):
        put(ama.cwd, name, name)
    ama.ok("update-index", "--add", "keep", "edit", "gone")
    put(ama.cwd, "edit", "edited")
    (ama.cwd / "gone").unlink()
    put(ama.cwd, "new file", "new")
    put(ama.cwd, "build/out.o", "o")
    put(ama.cwd, ".amaignore", "build/\n")
    assert ama.ok("ls-files") == "edit\ngone\nkeep"
    assert ama.ok("ls-files", "-m") == "edit\ngone"
    assert ama.ok("ls-files", "-d") == "gone"
    assert ama.ok("ls-files", "-o") == ".amaignore\nnew file"
    assert ama("ls-files", "-m", "-o", "-z").out == b".amaignore\0edit\0gone\0new file\0"
    staged = ama.ok("ls-files", "-s").split("\n")
    assert staged[0] == f"blob {blake3(b'edit').hexdigest()} 4\tedit"


# -- write-tree / read-tree / checkout-index -----------------------------------------------

@pytest.mark.parametrize("target", [b"/etc", b"../../etc", b"d/../../x"])
def test_checkout_index_refuses_a_tree_with_a_link_leaving_it_before_any_write(
        ama: Ama, tmp_path: Path, target: bytes) -> None:
    ama.ok("hash-object", "-w", "--stdin", input=b"hello\n")
    link = ama.ok("hash-object", "-w", "--stdin", input=target)
    tree = ama.ok("mktree", input=(f"link {link} {len(target)}\tevil\n"
                                   f"blob {HELLO_ID} 6\thello.txt\n").encode())
    fresh = tmp_path / "fresh"
    (fresh / ".ama").mkdir(parents=True)
    ama.ok("read-tree", tree, cwd=fresh)
    result = ama.fails(2, "checkout-index", "-a", cwd=fresh)
    assert "evil: its target" in result.err and "nothing was written" in result.err
    assert sorted(os.listdir(fresh)) == [".ama"]


def test_write_tree_refuses_a_blob_missing_from_the_store(ama: Ama) -> None:
    build_golden(ama)
    os.chmod(object_path(HELLO_ID), 0o644)
    object_path(HELLO_ID).unlink()
    result = ama.fails(3, "write-tree")
    assert f"sub/hello.txt is staged as {HELLO_ID}" in result.err
    assert "ama update-index --add sub/hello.txt" in result.err


def test_read_tree_then_checkout_index_restores_the_files(ama: Ama, tmp_path: Path) -> None:
    built = build_golden(ama)
    fresh = tmp_path / "fresh"
    (fresh / ".ama").mkdir(parents=True)
    ama.ok("read-tree", built.manifest[:10], cwd=fresh)
    assert ama.ok("ls-files", "-s", cwd=fresh) == ama.ok("ls-files", "-s")
    assert ama.ok("ls-files", "-d", cwd=fresh) == "empty\nrun.sh\nsub/hello.txt"
    ama.ok("checkout-index", "-a", cwd=fresh)
    assert (fresh / "sub" / "hello.txt").read_bytes() == b"hello\n"
    assert (fresh / "empty").read_bytes() == b""
    assert (fresh / "run.sh").stat().st_mode & 0o111
    assert ama.ok("ls-files", "-m", cwd=fresh) == ""
    assert ama.ok("write-tree", cwd=fresh) == built.tree


def test_checkout_index_link_strategies(ama: Ama, tmp_path: Path) -> None:
    built = build_golden(ama)
    for strategy in ("copy", "hardlink", "symlink"):
        check_link_strategy(ama, built, tmp_path / strategy, strategy)


def check_link_strategy(ama: Ama, built: Built, fresh: Path, strategy: str) -> None:
    (fresh / ".ama").mkdir(parents=True)
    ama.ok("read-tree", built.tree, cwd=fresh)
    ama.ok("checkout-index", "--link", strategy, "sub/hello.txt", "run.sh", cwd=fresh)
    hello, run = fresh / "sub" / "hello.txt", fresh / "run.sh"
    assert hello.read_bytes() == b"hello\n" and run.read_bytes() == RUN_BYTES
    assert not (fresh / "empty").exists()
    obj = object_path(HELLO_ID)
    if strategy == "hardlink":
        assert hello.stat().st_ino == obj.stat().st_ino
    elif strategy == "symlink":
        assert hello.is_symlink() and hello.resolve() == obj.resolve()
    else:
        assert hello.stat().st_ino != obj.stat().st_ino and not hello.is_symlink()
    assert not run.is_symlink() and run.stat().st_ino != object_path(
        blake3(RUN_BYTES).hexdigest()).stat().st_ino  # executables are always copied
    assert run.stat().st_mode & 0o111
    assert ama.ok("ls-files", "-m", "-o", cwd=fresh) == "empty"  # not written: deleted
    assert stat.S_IMODE(obj.stat().st_mode) == 0o444  # the store object stays read-only


def test_checkout_index_refuses_to_overwrite_other_content(ama: Ama) -> None:
    build_golden(ama)
    put(ama.cwd, "sub/hello.txt", "local edit\n")
    before = snapshot(ama)
    result = ama.fails(1, "checkout-index", "-a")
    assert "sub/hello.txt" in result.err and "-f" in result.err
    assert (ama.cwd / "sub" / "hello.txt").read_text() == "local edit\n"
    assert snapshot(ama) == before
    ama.ok("checkout-index", "-f", "sub/hello.txt")
    assert (ama.cwd / "sub" / "hello.txt").read_bytes() == b"hello\n"
    ama.fails(2, "checkout-index")
    ama.fails(2, "checkout-index", "-a", "empty")
    assert "nope is not staged" in ama.fails(3, "checkout-index", "nope").err


# -- commit-manifest -----------------------------------------------------------------------

def test_commit_manifest_records_parents_inputs_message_and_metadata(ama: Ama,
                                                                     tmp_path: Path) -> None:
    built = build_golden(ama)
    meta = put(tmp_path, "meta.json", json.dumps({"epochs": 3, "lr": 0.1, "tags": ["a"]}))
    oid = ama.ok("commit-manifest", built.tree[:8], "-p", built.manifest[:8],
                 "-i", f"{built.manifest}:imagenet/3/0.0.1:training-data",
                 "-m", "retrained", "--metadata", str(meta), env=ADA)
    doc = json.loads(object_path(oid).read_bytes())
    assert doc == {
        "format": "ama-manifest/1", "tree": built.tree, "parents": [built.manifest],
        "inputs": [{"manifest": built.manifest, "name": "imagenet/3/0.0.1",
                    "label": "training-data"}],
        "author": {"name": "Ada", "email": "ada@example.org"},
        "created": "2026-11-27T16:00:00Z", "message": "retrained",
        "metadata": {"epochs": 3, "lr": 0.1, "tags": ["a"]},
    }
    again = ama.ok("commit-manifest", built.tree, "-p", built.manifest, "-i",
                   f"{built.manifest[:6]}:imagenet/3/0.0.1:training-data", "-m", "retrained",
                   "--metadata", "-", input=json.dumps({"tags": ["a"], "lr": 0.1, "epochs": 3}),
                   env=ADA)
    assert again == oid  # same inputs, same canonical bytes, same id
    assert ama.ok("commit-manifest", built.tree, "-F", "-", input="from stdin",
                  env=ADA) != oid


def test_commit_manifest_uses_the_current_time_without_ama_author_date(ama: Ama) -> None:
    built = build_golden(ama)
    oid = ama.ok("commit-manifest", built.tree, "-m", "now")
    doc = json.loads(object_path(oid).read_bytes())
    assert doc["author"] == {"name": "Test User", "email": "test@example.org"}
    assert doc["created"] >= "2024-01-01T00:00:00Z" and doc["created"].endswith("Z")


COMMIT_BAD = [
    (["-m", "a", "-F", "-"], 2, "-m and -F cannot be used together"),
    (["-i", "nonsense"], 2, "input 'nonsense' is not ID:NAME:LABEL"),
    (["-i", "{m}:Bad/1/0.0.1:x"], 2, "invalid class name 'Bad'"),
    (["-i", "{m}:data/1/1.0:x"], 2, "invalid version '1.0'"),
    (["-p", "{t}"], 2, "is not a manifest"),
    (["-p", ABSENT], 3, f"object {ABSENT} is not in"),
    (["--metadata", "-"], 2, "is not JSON"),
]


def test_commit_manifest_bad_input_writes_nothing(ama: Ama) -> None:
    built = build_golden(ama)
    before = snapshot(ama)
    for args, code, said in COMMIT_BAD:
        args = [a.format(m=built.manifest, t=built.tree) for a in args]
        result = ama.fails(code, "commit-manifest", built.tree, *args, input="{not json",
                           env=ADA)
        assert said in result.err, args
        assert result.out == b""
        assert snapshot(ama) == before, args


def test_commit_manifest_needs_a_tree(ama: Ama) -> None:
    built = build_golden(ama)
    before = snapshot(ama)
    assert "is not a tree" in ama.fails(2, "commit-manifest", HELLO_ID, "-m", "x").err
    assert "is not a tree" in ama.fails(2, "commit-manifest", built.manifest, "-m", "x").err
    result = ama.fails(2, "commit-manifest", built.tree, "-m", "x",
                       env={**ADA, "AMA_AUTHOR_DATE": "yesterday"})
    assert "AMA_AUTHOR_DATE='yesterday' is not an ISO 8601 time" in result.err
    assert snapshot(ama) == before


# -- refs: update-ref / show-ref / rev-parse / rev-list ------------------------------------

def history(ama: Ama) -> tuple[str, str, str, str]:
    """Three manifests m1 <- m2 <- m3, plus a side manifest merged into m3."""
    built = build_golden(ama)
    m2 = commit(ama, built.tree, "second", built.manifest)
    side = commit(ama, SUB_ID, "side")
    m3 = commit(ama, built.tree, "third", m2, side)
    return built.manifest, m2, side, m3


def test_update_ref_compare_and_swap(ama: Ama) -> None:
    m1, m2, _side, m3 = history(ama)
    main = "refs/heads/main"
    ama.ok("update-ref", main, m1[:8], ZERO)
    assert (home() / main).read_text() == m1 + "\n"
    before = snapshot(ama)
    result = ama.fails(1, "update-ref", main, m3, m2)
    assert f"ref {main} was expected to be {m2}, but it is {m1}" in result.err
    assert "ama: error:" in result.err and "hint:" in result.err
    assert "expected not to exist" in ama.fails(1, "update-ref", main, m3, "").err
    assert snapshot(ama) == before
    ama.ok("update-ref", main, m2, m1)
    ama.ok("update-ref", main, m3)  # no OLD: whatever it holds
    assert ama.ok("show-ref") == f"{m3} {main}"
    ama.fails(1, "update-ref", "-d", main, m1)
    ama.ok("update-ref", "-d", main, m3)
    assert not (home() / main).exists()
    assert "does not exist" in ama.fails(3, "update-ref", "-d", main).err


UPDATE_REF_BAD = [
    (["refs/heads/a b", "{m}"], 2, "invalid ref name 'refs/heads/a b'"),
    (["refs/heads/x.lock", "{m}"], 2, "invalid ref name"),
    (["heads/main", "{m}"], 2, "must start with 'refs/'"),
    (["refs/heads/main", "nothex!"], 3, "'nothex!' is not an object id"),
    (["refs/heads/main", ABSENT], 3, f"object {ABSENT} is not in"),
    (["refs/heads/main", "{m}", "123"], 2, "old value '123' is not 64 lowercase hex"),
    (["refs/heads/main"], 2, "expected NAME NEW [OLD]"),
]


def test_update_ref_bad_input_changes_nothing(ama: Ama) -> None:
    m1 = build_golden(ama).manifest
    ama.ok("update-ref", "refs/heads/other", m1)
    before = snapshot(ama)
    for args, code, said in UPDATE_REF_BAD:
        result = ama.fails(code, "update-ref", *[a.format(m=m1) for a in args])
        assert said in result.err, args
        assert snapshot(ama) == before, args


def test_head_as_a_symbolic_ref(ama: Ama) -> None:
    m1, m2, _side, _m3 = history(ama)
    ama.ok("update-ref", "HEAD", "ref: refs/heads/main")
    assert (ama.cwd / ".ama" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert "ref refs/heads/main does not exist (reached from HEAD)" in ama.fails(
        3, "rev-parse", "HEAD").err
    ama.ok("update-ref", "HEAD", m1, ZERO)  # moves refs/heads/main, through HEAD
    assert (home() / "refs/heads/main").read_text() == m1 + "\n"
    assert (ama.cwd / ".ama" / "HEAD").read_text() == "ref: refs/heads/main\n"
    ama.ok("update-ref", "HEAD", m2, m1)
    assert ama.ok("rev-parse", "HEAD") == m2
    assert ama.ok("show-ref", "--head") == f"{m2} HEAD\n{m2} refs/heads/main"
    ama.ok("update-ref", "--no-deref", "HEAD", m1)  # detach
    assert (ama.cwd / ".ama" / "HEAD").read_text() == m1 + "\n"
    assert ama.ok("rev-parse", "HEAD", "refs/heads/main") == f"{m1}\n{m2}"


def test_show_ref_patterns(ama: Ama) -> None:
    m1, m2, _side, _m3 = history(ama)
    ama.ok("update-ref", "refs/heads/main", m1)
    ama.ok("update-ref", "refs/tags/v1", m2)
    ama.ok("update-ref", "refs/heads/latest", "ref: refs/tags/v1")
    assert ama.ok("show-ref").split("\n") == [
        f"{m2} refs/heads/latest", f"{m1} refs/heads/main", f"{m2} refs/tags/v1"]
    assert ama.ok("show-ref", "main") == f"{m1} refs/heads/main"
    assert ama.ok("show-ref", "tags/v1") == f"{m2} refs/tags/v1"
    result = ama("show-ref", "ain")  # whole components only
    assert (result.code, result.out) == (1, b"")


def test_rev_parse_names(ama: Ama) -> None:
    m1, m2, side, m3 = history(ama)
    ama.ok("update-ref", "refs/heads/main", m3)
    assert ama.ok("rev-parse", m3[:4], m3, "refs/heads/main") == "\n".join([m3] * 3)
    assert ama.ok("rev-parse", "refs/heads/main~1") == m2
    assert ama.ok("rev-parse", "refs/heads/main~2") == m1
    assert ama.ok("rev-parse", f"{m3[:6]}~") == m2
    assert ama.ok("rev-parse", f"{m3}^2") == side
    assert ama.ok("rev-parse", f"{m3}^^") == m1
    assert ama.ok("rev-parse", f"{m3}~2^{{tree}}") == ROOT_ID
    assert ama.ok("rev-parse", f"{side}^{{tree}}") == SUB_ID
    assert ama.ok("rev-parse", f"{ROOT_ID}^{{tree}}") == ROOT_ID
    assert "has 0 parent(s), not 1" in ama.fails(3, "rev-parse", f"{m1}~1").err
    assert "has 2 parent(s), not 3" in ama.fails(3, "rev-parse", f"{m3}^3").err
    result = ama.fails(3, "rev-parse", m1, "main")
    assert "'main' is not an object id" in result.err
    assert result.out == b""  # nothing printed when any name fails
    assert "ref refs/heads/nope does not exist" in ama.fails(3, "rev-parse",
                                                             "refs/heads/nope").err
    assert "ama show-ref" in ama.fails(3, "rev-parse", "refs/heads/nope").err
    assert "at least 4" in ama.fails(2, "rev-parse", m1[:3]).err


def test_rev_list_history_exclusion_and_objects(ama: Ama) -> None:
    m1, m2, side, m3 = history(ama)
    assert ama.ok("rev-list", m3).split("\n") == [m3, m2, m1, side]
    assert ama.ok("rev-list", m3, f"^{m1}").split("\n") == [m3, m2, side]
    assert ama.ok("rev-list", m3, f"^{m2[:8]}", f"^{side}") == m3
    assert ama.ok("rev-list", m2, f"^{m2}") == ""
    run_id = blake3(RUN_BYTES).hexdigest()
    assert ama.ok("rev-list", "--objects", m1).split("\n") == [
        m1, f"{ROOT_ID}\t", f"{EMPTY_ID}\tempty", f"{run_id}\trun.sh", f"{SUB_ID}\tsub",
        f"{HELLO_ID}\tsub/hello.txt"]
    # side's tree is m1's sub tree: nothing new to list beyond the manifests.
    assert ama.ok("rev-list", "--objects", m3, f"^{m1}").split("\n") == [m3, m2, side]
    assert ama("rev-list", "-z", m2).out == f"{m2}\0{m1}\0".encode()
    assert "is not a manifest" in ama.fails(2, "rev-list", ROOT_ID).err


# -- fsck / count-objects / corruption -----------------------------------------------------

def test_fsck_and_count_objects_on_a_healthy_store(ama: Ama) -> None:
    built = build_golden(ama)
    ama.ok("update-ref", "refs/heads/main", built.manifest)
    result = ama("fsck", "--full")
    assert (result.code, result.out, result.err) == (0, b"", "")
    sizes = sum(p.stat().st_size for p in (home() / "objects").rglob("*") if p.is_file())
    assert ama.ok("count-objects") == f"6 objects, {(sizes + 1023) // 1024} kilobytes"
    assert ama.ok("count-objects", "-v") == (
        f"count: 6\nsize: {(sizes + 1023) // 1024}\ngarbage: 0\nsize-garbage: 0")


def damage(oid: str, how: str) -> str:
    """Damage the stored object ``oid``; return the id of the object that is now bad."""
    path = object_path(oid)
    data = path.read_bytes()
    os.chmod(path, 0o644)
    if how == "flip":
        path.write_bytes(bytes([data[0] ^ 0x01]) + data[1:])
        return oid
    if how == "truncate":
        path.write_bytes(data[:-1])
        return oid
    wrong = "f" * 6 + oid[6:]  # the bytes of oid stored under another name
    object_path(wrong).parent.mkdir(exist_ok=True)
    object_path(wrong).write_bytes(data)
    return wrong


@pytest.mark.parametrize("how", ["flip", "truncate", "wrong-name"])
def test_a_damaged_object_is_refused_and_found_by_fsck(ama: Ama, how: str) -> None:
    built = build_golden(ama)
    bad = damage(HELLO_ID, how)
    for mode in ("-p", "-t", "-s") if ama.mode == "clirunner" else ("-p",):
        result = ama.fails(1, "cat-object", mode, bad)
        assert f"object {bad} at {object_path(bad)} is corrupt" in result.err
        assert result.out == b""
    assert ama("cat-object", "-e", bad).code == 1
    result = ama.fails(1, "fsck")
    assert result.text == f"corrupt\t{bad}\t{object_path(bad)}: its bytes hash to " + (
        f"{blake3(object_path(bad).read_bytes()).hexdigest()}\n")
    assert "1 problem(s) found" in result.err
    if how != "wrong-name":
        fresh = ama.cwd.parent / "fresh"
        (fresh / ".ama").mkdir(parents=True)
        ama.ok("read-tree", built.tree, cwd=fresh)
        assert ama.fails(1, "checkout-index", "-a", cwd=fresh).err.count(HELLO_ID) >= 1
        assert not (fresh / "sub" / "hello.txt").exists()  # never reaches the work tree


def test_fsck_names_every_problem(ama: Ama) -> None:
    built = build_golden(ama)
    run_id = blake3(RUN_BYTES).hexdigest()
    damage(HELLO_ID, "flip")
    damage(run_id, "truncate")
    wrong = damage(EMPTY_ID, "wrong-name")
    os.chmod(object_path(EMPTY_ID), 0o644)
    object_path(EMPTY_ID).unlink()  # a blob the tree names is gone
    ama.ok("update-ref", "refs/heads/lost", built.manifest)
    os.chmod(object_path(built.manifest), 0o644)
    object_path(built.manifest).unlink()  # a manifest a ref names is gone
    put(home() / "objects" / "ab", ".tmp-leftover", "partial")
    result = ama.fails(1, "fsck")
    rows = sorted(tuple(line.split("\t")[:2]) for line in result.lines)
    assert rows == sorted([("corrupt", HELLO_ID), ("corrupt", run_id), ("corrupt", wrong),
                           ("missing", built.manifest), ("garbage", "")])
    assert "named by ref refs/heads/lost" in result.text
    assert ".tmp-leftover" in result.text
    full = ama.fails(1, "fsck", "--full")
    assert f"missing\t{EMPTY_ID}\tempty in tree {built.tree}" in full.text
    assert ama.ok("count-objects", "-v").split("\n")[2:] == ["garbage: 1", "size-garbage: 1"]


def test_fsck_full_finds_wrong_sizes(ama: Ama) -> None:
    ama.ok("hash-object", "-w", "--stdin", input=b"hello\n")
    bad_tree = f"ama-tree 1\nblob {HELLO_ID} 5\thello.txt\n".encode()
    tree_id = ama.ok("hash-object", "-w", "--stdin", input=bad_tree)  # stored as bytes
    assert ama("fsck").code == 0
    result = ama.fails(1, "fsck", "--full")
    assert result.text == (f"badsize\t{HELLO_ID}\thello.txt in tree {tree_id} says 5 bytes, "
                           "it has 6\n")


# -- the command line as a whole -----------------------------------------------------------

PLUMBING = ["hash-object", "cat-object", "mktree", "ls-tree", "update-index", "ls-files",
            "write-tree", "read-tree", "checkout-index", "commit-manifest", "update-ref",
            "show-ref", "rev-parse", "rev-list", "fsck", "count-objects"]


def test_every_plumbing_command_has_help_with_exit_status(ama: Ama) -> None:
    listing = ama.ok("--help")
    assert all(f"  {name}  " in listing for name in PLUMBING), listing
    # Starting a process per command adds nothing that the in-process run does not check.
    for name in PLUMBING if ama.mode == "clirunner" else PLUMBING[:1]:
        text = ama.ok(name, "--help")
        assert f"ama {name}" in text and "Exit status" in text


def test_usage_errors_exit_2(ama: Ama) -> None:
    assert ama.fails(2, "no-such-command").err.startswith("ama: error: no such command")
    ama.fails(2, "ls-files", "--no-such-option")
    ama.fails(2, "rev-parse")


def test_git_ama_runs_the_same_commands(tmp_path: Path) -> None:
    asset = tmp_path / "asset"
    (asset / ".ama").mkdir(parents=True)
    put(asset, "hello.txt", b"hello\n")
    git_ama = installed("git-ama")
    run = lambda *a: subprocess.run([git_ama, *a], cwd=asset, capture_output=True,  # noqa: E731
                                    text=True, check=True).stdout
    run("update-index", "--add", "hello.txt")
    tree = run("write-tree").strip()
    assert tree == blake3(f"ama-tree 1\nblob {HELLO_ID} 6\thello.txt\n".encode()).hexdigest()
    assert run("cat-object", "-t", tree) == "tree\n"
