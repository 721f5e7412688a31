"""A switch killed while it copies a big file into the work tree: the temp file it leaves is
never staged or listed, and running the switch again removes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.test_lifecycle import AMA, ama, files

BIG = 4_000_000  # each copy a few milliseconds or more: many looks at it while it lasts
COUNT = 12


def kill_in_the_act(args: list[str], cwd: Path, env: dict[str, str],
                    caught: Callable[[], bool]) -> None:
    """Run ``ama ARGS``, stopping it (SIGSTOP) again and again to look at what it is doing,
    and SIGKILL it while stopped as soon as ``caught()``: what ``caught`` saw is what the
    kill leaves, whatever the machine's speed. Fail if it ends first."""
    proc = subprocess.Popen([AMA, *args], cwd=cwd, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stat = Path(f"/proc/{proc.pid}/stat")
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        proc.send_signal(signal.SIGSTOP)
        # The state follows the command's name in parentheses: T once stopped, Z if exited.
        while proc.poll() is None and stat.read_text().rpartition(")")[2].split()[0] not in "TZ":
            time.sleep(0.0002)
        if proc.poll() is None and caught():
            proc.send_signal(signal.SIGKILL)
            break
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.001)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (
        f"ama {' '.join(args)} finished before it could be interrupted "
        f"(exit {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''})")


def temp_files(root: Path) -> list[Path]:
    """ama's temp files in the work tree (any name ama ever gave them)."""
    return [p for p in root.rglob("*") if ".ama-" in p.name and ".ama" not in
            p.relative_to(root).parts]


def test_a_killed_switch_leaves_no_temp_file_to_stage(tmp_path: Path) -> None:
    env = {"AMA_HOME": str(tmp_path / "home")}
    ama("class", "init", "data", cwd=tmp_path, env=env)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "data", cwd=m, env=env)
    for n in range(COUNT):
        (m / f"big{n}.bin").write_bytes(os.urandom(BIG))
    ama("add", ".", cwd=m, env=env)
    ama("upload", "-m", "first", cwd=m, env=env)
    v0 = files(m)
    for n in range(COUNT):
        (m / f"big{n}.bin").write_bytes(os.urandom(BIG))
    ama("add", ".", cwd=m, env=env)
    ama("upload", "-m", "second", cwd=m, env=env)

    def copying() -> bool:
        return any(".ama-" in name for name in os.listdir(m))

    kill_in_the_act(["switch", "--version", "0.0.0"], m, env, copying)
    left = temp_files(m)  # the file it was copying when killed
    assert left
    status = json.loads(ama("status", "--json", cwd=m, env=env).stdout)
    assert status["untracked"] == []
    (m / ".ama" / "index.lock").unlink()  # the killed switch's, as ama's hint about it says
    staged = json.loads(ama("add", ".", "--json", cwd=m, env=env).stdout)
    assert staged["new"] == []
    ama("switch", "--version", "0.0.0", cwd=m, env=env)
    assert temp_files(m) == [] and files(m) == v0
    assert all(not p.exists() for p in left)
