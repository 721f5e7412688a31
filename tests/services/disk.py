"""A small disk for tests of what ama does when a disk fills up: a tmpfs of a few MiB.

``small_disk(size)`` mounts one on a folder of the test's own and returns a
:class:`SmallDisk`. As root it is mounted where every process sees it; otherwise it lives
in a user and mount namespace of its own (``unshare``, which needs no privilege where user
namespaces are allowed, as on Debian and Ubuntu), held open by a sleeping process, and
:meth:`SmallDisk.run` enters it (``nsenter``). Either way the commands a test runs through
``run`` (and a server started with ``wrapper=disk.wrapper``) see the disk; the test's own
process may not, so it looks at the disk through ``run`` too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class SmallDisk:
    path: Path  # where it is mounted
    enter: list[str]  # nsenter's command (without its "--"), or nothing where all see it
    _filler: int = field(default=0)

    @property
    def wrapper(self) -> list[str]:
        """The command prefix that runs a process where the disk is seen."""
        return [*self.enter, "--"] if self.enter else []

    def run(self, *command: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``command`` where the disk is mounted, in ``cwd`` (which may be on it); its
        exit status, stdout and stderr."""
        if self.enter:  # nsenter opens a --wd before it enters: a shell changes to it after
            command = ("sh", "-c", 'cd "$0" && exec "$@"', str(cwd or os.getcwd()), *command)
        return subprocess.run([*self.wrapper, *command], cwd=None if self.enter else cwd,
                              capture_output=True, text=True, timeout=timeout,
                              env=dict(env if env is not None else os.environ))

    def fill(self, leave: int = 0) -> None:
        """Fill the disk with a file of zeros, leaving about ``leave`` bytes free."""
        self._filler += 1
        available, block = self.run("stat", "-f", "-c", "%a %S", str(self.path)).stdout.split()
        blocks = max(0, (int(available) * int(block) - leave) // 4096)
        done = self.run("dd", "if=/dev/zero", f"of={self.path}/.filler-{self._filler}",
                        "bs=4096", f"count={blocks}", "status=none")
        assert done.returncode in (0, 1), done.stderr  # 1: the disk filled before the count

    def free(self) -> None:
        """Remove what :meth:`fill` wrote."""
        for n in range(1, self._filler + 1):
            self.run("rm", "-f", f"{self.path}/.filler-{n}")

    def read(self, path: Path) -> bytes:
        """The bytes of the file at ``path`` (on the disk)."""
        wrapper = self.wrapper
        return subprocess.run([*wrapper, "cat", str(path)], capture_output=True,
                              check=True, timeout=60).stdout

    def files(self, under: Path) -> list[str]:
        """The files under ``under`` (on the disk), relative to it, sorted."""
        done = self.run("find", str(under), "-type", "f", "-printf", "%P\\n")
        assert done.returncode == 0, done.stderr
        return sorted(done.stdout.split())


def _tools() -> None:
    missing = [t for t in ("mount", "unshare", "nsenter") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"the full-disk tests need {', '.join(missing)} (util-linux, mount): "
                    "apt-get install util-linux mount", pytrace=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], SmallDisk]]:
    """Yield ``mount(size)`` -> a :class:`SmallDisk` of ``size`` bytes (a tmpfs)."""
    _tools()
    mounted: list[Path] = []
    holders: list[subprocess.Popen[str]] = []

    def mount(size: int) -> SmallDisk:
        path = tmp_path / f"disk-{len(mounted) + len(holders) + 1}"
        path.mkdir()
        options = f"size={size},mode=0777"
        if os.geteuid() == 0:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"mounting a tmpfs as root failed: {done.stderr}", pytrace=False)
            mounted.append(path)
            return SmallDisk(path, [])
        holder = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private",
             "sh", "-c", f"mount -t tmpfs -o {options} tmpfs '{path}' && echo ready "
             "&& exec sleep 100000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        holders.append(holder)
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "ready":
            holder.kill()
            pytest.fail("a user and mount namespace for a small disk could not be made "
                        f"(unshare): {holder.communicate()[1]}; run the tests as root, or "
                        "allow user namespaces (sysctl kernel.unprivileged_userns_clone=1)",
                        pytrace=False)
        return SmallDisk(path, ["nsenter", "-t", str(holder.pid), "-U", "-m",
                                "--preserve-credentials"])

    try:
        yield mount
    finally:
        for path in mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
        for holder in holders:
            holder.kill()
            holder.wait()
