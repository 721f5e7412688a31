"""Progress bars: drawn on stderr when it is a terminal, never into a pipe, never with -q."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.e2e.conftest import installed


def run(args: list[str], cwd: Path, tty: bool,
        extra: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """Run the installed ``ama`` with stderr on a pseudo-terminal (``tty``) or a pipe, with
    ``extra`` in its environment; return the exit status, stdout and everything written to
    stderr."""
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", **(extra or {})}
    if not tty:
        proc = subprocess.run([installed(), *args], cwd=cwd, env=env, capture_output=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stdout, proc.stderr
    primary, secondary = os.openpty()
    try:
        proc = subprocess.Popen([installed(), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=secondary)
        os.close(secondary)
        drawn = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            drawn += chunk
        out = proc.stdout.read() if proc.stdout else b""
        return proc.wait(timeout=120), out, drawn
    finally:
        os.close(primary)


def test_add_draws_progress_on_a_terminal_only(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    assert run(["class", "init", "ml-models"], tmp_path, tty=False)[0] == 0
    assert run(["init", "ml-models"], root, tty=False)[0] == 0
    for i in range(400):
        folder = root / f"d{i % 40}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}").write_bytes(f"file {i}\n".encode() * 64)

    code, out, drawn = run(["add", "d0", "d1", "d2", "d3"], root, tty=True)
    assert code == 0
    assert b"Staging" in drawn and b"\x1b[" in drawn  # the bar, with terminal escapes
    assert b"Staging" not in out

    code, out, err = run(["add", "d4", "d5", "d6", "d7"], root, tty=False)
    assert code == 0
    assert b"Staging" not in err and b"\x1b[" not in err

    code, out, drawn = run(["add", "-q", "."], root, tty=True)
    assert code == 0
    assert b"Staging" not in drawn and out == b""


def _script_on_a_terminal(script: Path) -> tuple[bytes, bytes]:
    """Run a Python ``script`` with stderr on a pseudo-terminal; its stdout and what it
    drew."""
    import sys

    primary, secondary = os.openpty()
    try:
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                                stderr=secondary, stdin=subprocess.DEVNULL,
                                env={**os.environ, "TERM": "xterm-256color"})
        os.close(secondary)
        drawn = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
        out = proc.stdout.read() if proc.stdout else b""
        assert proc.wait(timeout=60) == 0, drawn
    finally:
        os.close(primary)
    return out, drawn


def test_the_bar_runs_no_thread_so_a_command_can_still_fork(tmp_path: Path) -> None:
    """A live thread stops the forked split of large work (ama.plumbing.parallel): the bar
    is redrawn from the command's own calls, not by a thread of its own."""
    script = tmp_path / "bar.py"
    script.write_text(
        "import threading\n"
        "from ama.cli.commands._porcelain import progress\n"
        "from ama.plumbing.parallel import can_fork\n"
        "with progress('Placing') as bar:\n"
        "    assert bar is not None, 'stderr is a terminal: a bar is drawn'\n"
        "    bar(1, 2)\n"
        "    seen = (threading.active_count(), can_fork())\n"
        "    bar(2, 2)\n"
        "print(*seen)\n")
    out, drawn = _script_on_a_terminal(script)
    assert b"Placing" in drawn
    assert out.split()[0] == b"1"
    assert out.split()[1] == (b"True" if (os.cpu_count() or 1) > 1 else b"False")


def test_a_wait_stopped_for_a_fork_goes_on_with_its_clock(tmp_path: Path) -> None:
    """A store's disk wait is told in two parts around the fork of its renames: the bar
    stops drawing for the fork (no thread across it) and then draws the same step on, its
    clock counting from the first part, never a "counting…" frame between."""
    script = tmp_path / "wait.py"
    script.write_text(
        "import threading, time\n"
        "from ama.cli.commands._porcelain import progress\n"
        "from ama.plumbing.parallel import can_fork\n"
        "with progress('Staging') as bar:\n"
        "    bar(3, 3)\n"
        "    bar(0, 0, phase='syncing to disk')\n"
        "    time.sleep(0.6)\n"
        "    bar(1, 1, phase='syncing to disk')\n"
        "    between = (threading.active_count(), can_fork())\n"
        "    bar(0, 0, phase='syncing to disk')\n"
        "    time.sleep(0.6)\n"
        "    bar(1, 1, phase='syncing to disk')\n"
        "print(*between, threading.active_count())\n")
    out, drawn = _script_on_a_terminal(script)
    assert out.split() == [b"1", b"True" if (os.cpu_count() or 1) > 1 else b"False", b"1"]
    shown = frames(drawn, "Staging: syncing to disk")
    clock = [float(m.group(1)) for f in shown if (m := re.search(r"([0-9.]+) s", f))]
    assert clock and max(clock) >= 1.0, shown  # 1.2 s of waiting in all, in one clock
    assert clock == sorted(clock), shown
    everything = frames(drawn, "Staging")
    after = everything[everything.index(shown[0]):]
    assert not any("counting" in f for f in after), after


def frames(drawn: bytes, label: str) -> list[str]:
    """The bar's successive lines as drawn on the terminal, escapes removed."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", drawn.decode("utf-8", "replace"))  # colours
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", text)  # cursor moves between frames
    return [line.strip() for line in re.split(r"[\r\n]+", text) if label in line]


def _asset_with_a_large_file(tmp_path: Path) -> Path:
    """An asset directory tmp_path/m holding a 64 MiB file and three small ones."""
    root = tmp_path / "m"
    root.mkdir()
    assert run(["class", "init", "ml-models"], tmp_path, tty=False)[0] == 0
    assert run(["init", "ml-models"], root, tty=False)[0] == 0
    (root / "a-big.bin").write_bytes(os.urandom(1 << 20) * 64)
    for i in range(3):
        (root / f"small{i}.txt").write_bytes(b"x" * 1000)
    return root


def test_bars_show_their_totals_first_and_move_within_a_large_file(tmp_path: Path) -> None:
    """The first frame names the files and bytes to do; a large file moves the bar window
    by window, not in one jump at its end."""
    root = _asset_with_a_large_file(tmp_path)

    code, _, drawn = run(["add", "."], root, tty=True)
    assert code == 0
    shown = [f for f in frames(drawn, "Staging") if "counting" not in f]
    assert shown and "0/4 files" in shown[0] and "64.0 MiB" in shown[0], shown[:3]
    assert not [f for f in shown if re.search(r"\b(bytes|[kMG]B)/s", f)], shown
    half = re.compile(r"[0-3]/4 files +32\.[0-9] MiB/64\.0 MiB")
    assert any(half.search(f) for f in shown), "\n".join(shown)

    # Another user's store, so that the clone has every object to bring.
    bob = {"AMA_HOME": str(tmp_path / "bob-home")}
    remote = (Path(os.environ["AMA_HOME"]) / "remote").as_uri()
    assert run(["remote", "add", "team", remote], tmp_path, False, bob)[0] == 0
    assert run(["remote", "default", "team"], tmp_path, False, bob)[0] == 0
    for args, label, cwd, env in ((["upload", "-m", "first"], "Uploading", root, None),
                                  (["clone", "ml-models/1", "-d", "c"], "Cloning", tmp_path,
                                   bob)):
        code, _, drawn = run(args, cwd, True, env)
        assert code == 0, args
        # The transfer's frames: not the counting, nor the steps around it ("Cloning: …").
        shown = [f for f in frames(drawn, label) if "counting" not in f
                 and f"{label}:" not in f]
        # Objects, not work-tree files: the version's tree and manifest travel too.
        assert shown and re.search(r"0/[1-9] files +0 B/64\.0 MiB", shown[0]), shown
        # No rate before there is one, and a rate in the sizes' binary units.
        assert not [f for f in shown if re.search(r"\b(bytes|[kMG]B)/s", f)], shown


def test_the_steps_after_a_transfer_show_and_move(tmp_path: Path) -> None:
    """Counting a version's files, syncing what arrived to disk and placing the files in
    the work tree each have their own frames, and placing moves within a large file."""
    root = _asset_with_a_large_file(tmp_path)
    assert run(["add", "-q", "."], root, tty=False)[0] == 0
    assert run(["upload", "-q", "-m", "first"], root, tty=False)[0] == 0
    with open(root / "a-big.bin", "r+b") as f:  # a second version: other bytes, same size
        f.write(b"second version")
    assert run(["add", "-q", "."], root, tty=False)[0] == 0
    assert run(["upload", "-q", "-m", "second"], root, tty=False)[0] == 0

    bob = {"AMA_HOME": str(tmp_path / "bob-home")}
    remote = (Path(os.environ["AMA_HOME"]) / "remote").as_uri()
    assert run(["remote", "add", "team", remote], tmp_path, False, bob)[0] == 0
    assert run(["remote", "default", "team"], tmp_path, False, bob)[0] == 0
    code, _, drawn = run(["clone", "ml-models/1/0.0.0", "-d", "c"], tmp_path, True, bob)
    assert code == 0
    shown = frames(drawn, "Cloning")
    # The remote opening, then the files of the version counted before the totals are
    # known.
    reaching = [i for i, f in enumerate(shown) if "Cloning: reaching the remote" in f]
    counted = [i for i, f in enumerate(shown) if re.search(r"counting… 4 files", f)]
    assert reaching and counted and reaching[0] < counted[0], shown
    checks = (("Switching", ["switch", "0.0.1"], tmp_path / "c"),)
    for label, lines in (("Cloning", shown),) + tuple(
            (lbl, frames(run(args, cwd, True, bob)[2], lbl)) for lbl, args, cwd in checks):
        reaching = [f for f in lines if f"{label}: reaching the remote" in f]
        syncing = [f for f in lines if f"{label}: syncing to disk" in f]
        placing = [f for f in lines if f"{label}: placing files" in f]
        assert reaching and syncing and placing, lines
        # Opening the remote and bringing the trees is named, not a still "counting…".
        assert lines.index(reaching[0]) < lines.index(syncing[0]), lines
        # After the sync, not before: the files are placed from what the sync made durable.
        assert lines.index(syncing[0]) < lines.index(placing[0]), lines
        with_totals = [f for f in placing if "MiB" in f]
        assert re.search(r"0/[1-4] files +0 B/64\.0 MiB", with_totals[0]), placing
        # The large file is placed window by window, not in one jump at its end.
        moving = re.compile(r"0/[1-4] files +[1-9][0-9.]* MiB/64\.0 MiB")
        assert any(moving.search(f) for f in with_totals), placing
        assert re.search(r"([1-4])/\1 files +64\.0 MiB/64\.0 MiB", with_totals[-1]), placing
    assert (tmp_path / "c" / "a-big.bin").read_bytes()[:14] == b"second version"


def test_the_folder_scan_shows_a_count_that_grows(tmp_path: Path) -> None:
    """Before the totals are known, the walk of a large folder shows the files and bytes it
    has found so far (not a bare "counting…" until the totals)."""
    root = tmp_path / "m"
    root.mkdir()
    assert run(["class", "init", "ml-models"], tmp_path, tty=False)[0] == 0
    assert run(["init", "ml-models"], root, tty=False)[0] == 0
    # Enough files that the walk lasts several frames on any machine; the ignore file
    # makes each name cost matches, as it does in a real asset (none of these match).
    (root / ".amaignore").write_text("".join(f"*.tmp{i}\ncache{i}/\n" for i in range(20)))
    for d in range(200):
        folder = root / f"d{d:03d}"
        folder.mkdir()
        for i in range(100):
            (folder / f"f{i}.bin").write_bytes(b"%06d" % (d * 100 + i) * 100)

    code, _, drawn = run(["add", "."], root, tty=True)
    assert code == 0
    shown = frames(drawn, "Staging")
    counts = [(int(m[1].replace(",", "")), m[2]) for f in shown
              if (m := re.search(r"counting… ([0-9,]+) files +([0-9.]+ [KM]iB|[0-9,]+ B)", f))]
    # How many counts are drawn depends on how long the walk lasts (ten frames a second):
    # at least one, in order; that the count grows call by call is checked without a
    # terminal (tests/unit/porcelain/test_progress.py).
    assert counts, shown[:10]
    assert [n for n, _ in counts] == sorted(n for n, _ in counts), counts
    assert all(0 < n <= 20_001 for n, _ in counts), counts
    # The counting comes before the totals, which name every file found.
    totals = [i for i, f in enumerate(shown) if "0/20,001 files" in f]
    assert totals and all(shown.index(f) < totals[0] for f in shown if "counting…" in f)


def test_the_steps_of_an_upload_show_in_order_and_the_packing_moves(tmp_path: Path) -> None:
    """An upload of many small files names each step that has no count of its own (writing
    the trees, asking the remote what it lacks, the remote storing the packs, the commit),
    in that order, and the bar moves while the small files are packed, not only once the
    remote has them all."""
    root = tmp_path / "m"
    root.mkdir()
    assert run(["class", "init", "ml-models"], tmp_path, tty=False)[0] == 0
    assert run(["init", "ml-models"], root, tty=False)[0] == 0
    # Small enough to travel in a pack, large enough that a report of packed objects is
    # worth a frame of its own whatever the machine's speed.
    for i in range(300):
        (root / f"f{i:03d}.bin").write_bytes(os.urandom(200 << 10))
    assert run(["add", "-q", "."], root, tty=False)[0] == 0

    code, _, drawn = run(["upload", "-m", "first"], root, tty=True)
    assert code == 0
    shown = frames(drawn, "Uploading")

    def first(pattern: str) -> int:
        found = [i for i, f in enumerate(shown) if re.search(pattern, f)]
        assert found, (pattern, shown)
        return found[0]

    # 300 files, their tree and the manifest.
    steps = [first("Uploading: writing trees"),
             first("Uploading: asking the remote what it lacks"),
             first(r"Uploading +\S* *256/302 files"),
             first("Uploading: remote storing packs"),
             first("Uploading: committing")]
    assert steps == sorted(steps), shown
    packing = [int(m[1].replace(",", "")) for f in shown[steps[1]:steps[3]]
               if (m := re.search(r"([0-9,]+)/302 files", f))]
    assert packing[0] == 0 and 0 < min(n for n in packing if n) < 302, packing
    assert packing == sorted(packing), packing
