"""A small disk for tests of what ama does when a disk fills up: a tmpfs of a few MiB.

``small_disk(size)`` mounts one on a folder of the test's own and returns a
:class:`SmallDisk`. The mount lives in a namespace of its own (``unshare``: a mount
namespace as root, else a user namespace, which needs no privilege where they are allowed,
as on Debian and Ubuntu), held open by a process that ends when the fixture (or the test
process) does, so no mount outlives the test. :meth:`SmallDisk.run` enters it
(``nsenter``): the commands a test runs through ``run`` (and a server started with
``wrapper=disk.wrapper``) see the disk; the test's own process does not, so it looks at
the disk through ``run`` too.
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
    enter: list[str]  # nsenter's command that enters its namespace (without its "--")
    _filler: int = field(default=0)

    @property
    def wrapper(self) -> list[str]:
        """The command prefix that runs a process where the disk is seen."""
        return [*self.enter, "--"]

    def run(self, *command: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``command`` where the disk is mounted, in ``cwd`` (which may be on it); its
        exit status, stdout and stderr."""
        # nsenter opens a --wd before it enters: a shell changes to it after.
        shell = ("sh", "-c", 'cd "$0" && exec "$@"', str(cwd or os.getcwd()))
        return subprocess.run([*self.wrapper, *shell, *command], capture_output=True,
                              text=True, timeout=timeout,
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
        return subprocess.run([*self.wrapper, "cat", str(path)], capture_output=True,
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


# How a namespace with a mount of its own is made: as root, a mount namespace alone (no
# mount outlives the test, not even a killed one's); else, or where root may not mount (a
# container without CAP_SYS_ADMIN), a user namespace in which the caller is root.
_WAYS = {"mount": (["--mount"], ["-m"]),
         "user": (["--user", "--map-root-user", "--mount"], ["-U", "-m",
                                                            "--preserve-credentials"])}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], SmallDisk]]:
    """Yield ``mount(size)`` -> a :class:`SmallDisk` of ``size`` bytes (a tmpfs)."""
    _tools()
    holders: list[subprocess.Popen[str]] = []

    def hold(path: Path, size: int, way: str) -> tuple[subprocess.Popen[str], str]:
        """A process in a new namespace in which the tmpfs is mounted on ``path``; it lives
        until its stdin closes (the fixture's end, or the test process's death)."""
        unshare, _ = _WAYS[way]
        holder = subprocess.Popen(
            ["unshare", *unshare, "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs -o size={size},mode=0777 tmpfs '{path}' && echo ready "
             "&& exec cat >/dev/null"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert holder.stdout is not None
        if holder.stdout.readline().strip() == "ready":
            return holder, ""
        holder.kill()
        return holder, holder.communicate()[1].strip()

    def mount(size: int) -> SmallDisk:
        path = tmp_path / f"disk-{len(holders) + 1}"
        path.mkdir()
        refused = []
        for way in (["mount", "user"] if os.geteuid() == 0 else ["user"]):
            holder, why = hold(path, size, way)
            if not why:
                holders.append(holder)
                return SmallDisk(path, ["nsenter", "-t", str(holder.pid), *_WAYS[way][1]])
            refused.append(f"{way} namespace: {why}")
        pytest.fail("no namespace with a small disk of its own could be made "
                    f"({'; '.join(refused)}): run the tests as root, or allow user "
                    "namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu "
                    "24.04 also kernel.apparmor_restrict_unprivileged_userns=0)",
                    pytrace=False)

    try:
        yield mount
    finally:
        for holder in holders:
            assert holder.stdin is not None
            holder.stdin.close()  # its cat ends, and with it the namespace and its mount
            try:
                holder.wait(timeout=10)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait()
