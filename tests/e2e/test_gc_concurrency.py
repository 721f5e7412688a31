"""``ama store gc`` beside commands that write objects, through the installed ``ama``: gc
waits for them (or stops, naming them), never deletes what they wrote, and an object gone
from the store behind the index is stored again by ``add`` and ``upload``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

AMA = shutil.which("ama", path=os.path.dirname(sys.executable)) or "ama"
COUNT = 6000


def ama(*args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([AMA, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


def objects() -> Path:
    return Path(os.environ["AMA_HOME"]) / "objects"


def asset_dir(tmp_path: Path) -> Path:
    ama("class", "init", "data", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "data", cwd=m)
    return m


def staged_ids(m: Path) -> dict[str, str]:
    lines = ama("ls-files", "-s", cwd=m).stdout.splitlines()
    return {line.split("\t")[1]: line.split()[1] for line in lines}


def test_gc_during_add_deletes_nothing_the_add_writes(tmp_path: Path) -> None:
    m = asset_dir(tmp_path)
    (tmp_path / "seed").write_text("seed\n")
    ama("hash-object", "-w", str(tmp_path / "seed"), cwd=m)  # the store exists before the add
    for i in range(COUNT):
        folder = m / f"d{i % 50}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}").write_text(f"file {i}\n")
    add = subprocess.Popen([AMA, "add", "."], cwd=m, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    # Start gc once the add is writing objects (its temp files are there), with no grace.
    while add.poll() is None and not any(
            name.startswith(".tmp-") for folder in objects().glob("??")
            for name in os.listdir(folder)):
        pass
    gc = subprocess.run([AMA, "store", "gc", "--grace", "0", "--json"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=300)
    _out, err = add.communicate(timeout=300)
    assert add.returncode == 0, err
    assert err == f"{COUNT} new, 0 modified, 0 removed\n" and "Traceback" not in gc.stderr
    assert gc.returncode == 0, gc.stderr
    ids = staged_ids(m)
    assert len(ids) == COUNT
    assert [p for p, oid in ids.items()
            if not (objects() / oid[:2] / oid[2:]).is_file()] == []
    assert ama("add", ".", "--json", cwd=m).stdout.count('"restored": []') == 1
    ama("upload", "-m", "all of them", cwd=m)


HOLD = """
import sys
from ama.plumbing.lock import store_in_use
with store_in_use(sys.argv[1]):
    print("using", flush=True)
    sys.stdin.read()
"""


def test_gc_stops_naming_the_command_that_uses_the_store(tmp_path: Path) -> None:
    m = asset_dir(tmp_path)
    (tmp_path / "garbage").write_text("nobody needs me\n")
    garbage = ama("hash-object", "-w", str(tmp_path / "garbage"), cwd=m).stdout.strip()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(objects()), "hold-the-store"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "using\n"
        err = ama("store", "gc", "--grace", "0", "--wait", "0", cwd=m, code=1).stderr
        assert f"ama: error: the asset store {objects()} is in use by process {holder.pid} (" \
            in err
        assert "hold-the-store" in err
        assert (objects() / garbage[:2] / garbage[2:]).exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait()
    gone = json.loads(ama("store", "gc", "--grace", "0", "--json", cwd=m).stdout)
    assert gone["deleted"] == [garbage]


def test_an_object_gone_from_the_store_is_stored_again_by_add_and_upload(
        tmp_path: Path) -> None:
    m = asset_dir(tmp_path)
    (m / "a.txt").write_text("a\n")
    (m / "b.txt").write_text("b\n")
    ama("add", ".", cwd=m)
    ids = staged_ids(m)
    for oid in ids.values():
        (objects() / oid[:2] / oid[2:]).unlink()
    added = json.loads(ama("add", ".", "--json", cwd=m).stdout)
    assert added["restored"] == ["a.txt", "b.txt"] and added["new"] == []
    assert all((objects() / oid[:2] / oid[2:]).is_file() for oid in ids.values())
    (objects() / ids["b.txt"][:2] / ids["b.txt"][2:]).unlink()
    ama("upload", "-m", "first", cwd=m)
    assert (objects() / ids["b.txt"][:2] / ids["b.txt"][2:]).is_file()
    assert json.loads(ama("status", "--json", cwd=m).stdout)["uploaded"] is True
    # A staged file whose bytes changed cannot give the lost object back: named, not sent.
    (m / "c.txt").write_text("c\n")
    ama("add", "c.txt", cwd=m)
    c = staged_ids(m)["c.txt"]
    (objects() / c[:2] / c[2:]).unlink()
    (m / "c.txt").write_text("other\n")
    os.utime(m / "c.txt", ns=(os.stat(m / "c.txt").st_atime_ns,) * 2)
    err = ama("upload", "-m", "second", cwd=m, code=3).stderr
    assert f"object {c} is not in the asset store, and c.txt no longer holds its bytes" in err


def test_two_processes_adding_and_uploading_on_one_store_both_succeed(tmp_path: Path) -> None:
    """Two asset directories of one machine share its store: adds and uploads running at
    the same time, with files in common, each complete and the store stays whole."""
    ama("class", "init", "data", cwd=tmp_path)
    dirs = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        ama("init", "data", cwd=d)
        for i in range(1500):
            folder = d / f"d{i % 30}"
            folder.mkdir(exist_ok=True)
            # Half the files are the same bytes in both: the same objects, written twice.
            (folder / f"f{i}").write_text(f"shared {i}\n" if i % 2 else f"{name} {i}\n")
        dirs.append(d)

    def both(*args: str) -> list[subprocess.CompletedProcess[str]]:
        running = [subprocess.Popen([AMA, *args], cwd=d, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for d in dirs]
        done = []
        for proc in running:
            out, err = proc.communicate(timeout=300)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return done

    for result in both("add", "."):
        assert result.returncode == 0, result.stderr
        assert result.stderr == "1500 new, 0 modified, 0 removed\n"
    uploaded = both("upload", "-m", "at once", "--json")
    assert all(r.returncode == 0 for r in uploaded), [r.stderr for r in uploaded]
    assert sorted(json.loads(r.stdout)["name"] for r in uploaded) == ["data/1", "data/2"]
    verified = json.loads(ama("store", "verify", "--json", cwd=tmp_path).stdout)
    # 2,250 distinct files (750 in common), their trees and two manifests.
    assert verified["corrupt"] == [] and verified["checked"] == verified["total"] > 2250
    for d in dirs:
        status = json.loads(ama("status", "--json", cwd=d).stdout)
        assert status["clean"] and status["uploaded"] and status["tracked"] == 1500
