"""Lock files: ``NAME.lock`` beside the file ``NAME`` that a command is about to replace.

The one mechanism behind the locks of refs, of the index and of a switch. A lock file is
created exclusively and holds ``<pid> <host>\\n``, the process that took it; it appears
with that line already in it (a hard link of a temp file that holds it), so a reader never
sees an empty lock that is still being written. While held, :meth:`Lock.commit` replaces
``NAME`` atomically and durably (temp file, fsync, rename, fsync of the folder).

A lock left by a killed process would block every later command. When the holder was on
this host and is no longer running, the lock is broken, with a warning on the ``ama``
logger, and taken. A holder that is alive, or on another host (where this one cannot tell),
is named in the error, and ``ama --break-lock`` (:func:`break_held_locks`) takes the lock
anyway. Two processes breaking the same stale lock at once are serialised by an ``flock``
on it, and each unlinks it only while the name still points at the file it judged stale,
so neither removes the lock the other has just taken.

The asset store has a lock of another kind (:func:`store_in_use`, :func:`store_exclusive`):
an ``flock`` on the objects folder itself (no file of its own), held shared by every
command that may write objects or name them in an index or ref, for as long as it runs, and
exclusively by ``ama store gc``, which so never deletes an object that a running command
has just written or is about to name. The kernel drops an ``flock`` when its holder dies:
it is never stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from ama.plumbing.durable import new_file, write_all, write_atomic
from ama.plumbing.errors import AmaError

log = logging.getLogger("ama")

# Whether a lock held by a live process (or one on another host) is taken anyway: set once
# by ``ama --break-lock`` for the command it runs.
_break_held = False
# A lock file younger than this many seconds that names no process is still being written.
FRESH = 5.0
# The locks this process holds, by the path of the file they guard.
_held: dict[str, Lock] = {}


class Locked(AmaError):
    """Another process holds the lock: its message names the lock file, the pid and host."""


def break_held_locks(enabled: bool = True) -> None:
    """Make the locks taken from now on in this process break a lock that another process
    holds, live or on another host (``ama --break-lock``), with a warning naming it."""
    global _break_held
    _break_held = enabled


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is running on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def held(target: str | os.PathLike[str]) -> Lock | None:
    """The lock this process holds on ``target`` (by whatever path it was taken), if any."""
    return _held.get(os.path.realpath(target))


class Lock:
    """The lock on ``target`` (the file ``target.lock``), as a context manager.

    ``what`` names the locked thing in messages ("the index", "ref refs/heads/main");
    ``error`` is the :class:`Locked` subclass raised when another process holds it.
    """

    def __init__(self, target: str | os.PathLike[str], what: str,
                 error: type[Locked] = Locked, *,
                 host: str | None = None, alive: Callable[[int], bool] = pid_alive) -> None:
        self.target = os.path.abspath(target)
        self.path = self.target + ".lock"
        self.what = what
        self.error = error
        self.host = socket.gethostname() if host is None else host
        self.alive = alive
        self.locked = False

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock; raises :attr:`error` when another process holds it."""
        Path(self.target).parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            if self._create():
                self.locked = True
                _held[os.path.realpath(self.target)] = self
                return
            holder = self._break()
            if holder is not None:
                raise holder
        raise self.error(f"{self.what} is locked: {self.path} keeps coming back",
                         "another ama command is taking it: wait for it, then retry")

    def release(self) -> None:
        """Give the lock up (nothing happens when it is not held)."""
        if not self.locked:
            return
        self.locked = False
        _held.pop(os.path.realpath(self.target), None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def commit(self, data: bytes, mode: int = 0o644) -> None:
        """Replace the locked file with ``data``, durably, keeping the lock."""
        assert self.locked, f"{self.path} is not held"
        write_atomic(self.target, data, mode)

    def _create(self) -> bool:
        """Make the lock file with its holder line in it; False when it exists."""
        line = f"{os.getpid()} {self.host}\n".encode()
        folder, name = os.path.split(self.path)
        temp = f"{folder}/.{name}.{os.getpid()}"  # a dot name: never a ref, never listed
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with new_file(temp):  # a full disk leaves no lock file half made
            try:
                write_all(fd, line)
            finally:
                os.close(fd)
        try:
            os.link(temp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links: create, then write
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with new_file(self.path):  # ours (O_EXCL): not left empty, blocking others
                try:
                    write_all(fd, line)
                finally:
                    os.close(fd)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    def _break(self) -> Locked | None:
        """Remove the lock file when its holder is gone (or ``--break-lock`` says so), with
        a warning; otherwise return the error naming the holder."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None  # released meanwhile: try again
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one breaker at a time
            text = os.read(fd, 4096).decode("utf-8", "replace").split()
            pid = int(text[0]) if text and text[0].isdigit() else None
            if pid is None and time.time() - os.fstat(fd).st_mtime < FRESH:
                # Being written (an older ama, or a filesystem without hard links creates
                # the file, then writes its line): not stale yet.
                return self.error(f"{self.what} is being locked by another process "
                                  f"({self.path})", "retry in a moment")
            host = text[1] if len(text) > 1 else self.host  # older ama wrote the pid only
            here = host == self.host
            stale = pid is None or (here and not self.alive(pid))
            if not (stale or _break_held):
                return self._holder_error(pid, host, here)
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.unlink(self.path)
                who = ("a process that died" if pid is None
                       else f"process {pid}, which is no longer running" if stale
                       else f"process {pid} on {host}")
                log.warning("removed the lock on %s left by %s (%s)", self.what, who, self.path)
            return None
        finally:
            os.close(fd)

    def _holder_error(self, pid: int | None, host: str, here: bool) -> Locked:
        hint = ("if it is stuck, stop it, or retry with 'ama --break-lock …'" if here else
                "if no ama command runs there, retry with 'ama --break-lock …'")
        where = "running process" if here else "process"
        on = "" if here else f" on {host}"
        return self.error(f"{self.what} is locked by {where} {pid}{on} ({self.path})",
                          f"wait for that ama command to finish, then retry; {hint}")


# -- the store lock: objects in flight are safe from gc ---------------------------------------

# Per objects folder: [descriptor, depth, exclusive]; one open file per process, so a
# process that holds it never waits for itself.
_store: dict[str, list[int]] = {}


class StoreBusy(AmaError):
    """gc waited for the commands using the asset store, and they did not finish."""


@contextlib.contextmanager
def store_in_use(objects: str | os.PathLike[str], create: bool = True
                 ) -> Iterator[None]:
    """Hold the store's lock (an ``flock`` on the folder ``objects``) shared: objects this
    process writes, or finds stored and is about to name in an index or ref, are safe from
    gc until it ends. Waits while gc runs. Re-entrant, and a no-op in a process that runs
    gc itself; without ``create``, a no-op where there is no objects folder yet (nothing
    to collect)."""
    path = os.path.realpath(objects)
    held = _store.get(path)
    if held is None:
        try:
            if create:
                os.makedirs(path, exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:  # no objects folder yet: nothing gc could collect
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_SH)
        held = _store[path] = [fd, 0, 0]
    held[1] += 1
    try:
        yield
    finally:
        held[1] -= 1
        if held[1] == 0:
            del _store[path]
            os.close(held[0])  # releases the lock


@contextlib.contextmanager
def store_exclusive(objects: str | os.PathLike[str], wait: float,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> Iterator[None]:
    """Hold the store's lock exclusively (gc): no other command uses the store meanwhile.

    Waits up to ``wait`` seconds for the commands using it to finish, then raises
    :class:`StoreBusy` naming them."""
    path = os.path.realpath(objects)
    assert path not in _store, "the store lock is held by this process already"
    os.makedirs(path, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        deadline = clock() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock() >= deadline:
                    users = _users(fd)
                    who = ", ".join(users) if users else "another ama command"
                    raise StoreBusy(
                        f"the asset store {os.fspath(objects)} is in use by {who}",
                        "let it finish, then run this again (or wait longer with --wait "
                        "SECONDS)") from None
                sleep(min(0.1, max(0.0, deadline - clock())))
        _store[path] = [fd, 1, 1]
        try:
            yield
        finally:
            del _store[path]
    finally:
        os.close(fd)


def _users(fd: int) -> list[str]:
    """The processes holding the lock on ``fd`` (``process PID (COMMAND)``), as Linux's
    /proc/locks tells; empty where it does not."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    found: list[str] = []
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if "FLOCK" not in fields or inode not in fields or "->" in fields:
            continue
        pid = fields[fields.index(inode) - 1]
        if pid == str(os.getpid()) or not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().rstrip(b"\0").split(b"\0")
        except OSError:
            argv = []
        shown = " ".join(a.decode("utf-8", "replace") for a in argv)
        entry = f"process {pid} ({shown})" if shown else f"process {pid}"
        if entry not in found:
            found.append(entry)
    return found
