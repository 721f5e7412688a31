"""``ama hooks install|uninstall``: ama's git hooks in a repository's hooks folder.

The hook scripts live in ``hooks/`` of the source tree (installed under
``<prefix>/share/ama/hooks``). Installing copies each one into the folder git runs hooks
from (``core.hooksPath`` when set), with the path of this ``ama`` written in. A hook that
was already there is kept as ``NAME.ama-chained`` and run by ama's hook first, its exit
code kept; one that cannot be chained (not executable, not a file) is refused unless
``force``, which sets it aside as ``NAME.ama-replaced``. Uninstalling removes ama's hooks
and puts back whatever was there before.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from ama.plumbing.durable import write_atomic
from ama.plumbing.errors import AmaError, NotFound
from ama.plumbing.gitrepo import GitRepo

HOOKS = ("pre-commit", "pre-push", "post-checkout", "post-merge")
MARKER = b"# ama-hook "
CHAINED = ".ama-chained"
REPLACED = ".ama-replaced"
PLACEHOLDER = "@AMA@"


class ForeignHook(AmaError):
    """A hook ama would have to overwrite without being able to chain it."""


@dataclass(frozen=True)
class HookChange:
    """What (un)installing did to one hook: ``installed``, ``updated``, ``chained`` (an
    existing hook is kept and run first), ``replaced`` (set aside with --force);
    ``removed``, ``restored`` (the previous hook is back), ``absent`` or ``foreign``
    (not ama's: left alone)."""

    name: str
    action: str
    path: Path

    def to_json(self) -> dict[str, str]:
        return {"hook": self.name, "action": self.action, "path": str(self.path)}


def scripts_dir() -> Path:
    """The folder holding the hook scripts: ``hooks/`` beside the package in a source
    tree, else ``<prefix>/share/ama/hooks``. Raises :class:`NotFound`."""
    candidates = [Path(__file__).resolve().parents[2] / "hooks",
                  Path(sys.prefix) / "share" / "ama" / "hooks"]
    for folder in candidates:
        if all((folder / name).is_file() for name in HOOKS):
            return folder
    raise NotFound("ama's git hook scripts are not installed (looked in "
                   + ", ".join(str(c) for c in candidates) + ")",
                   "reinstall ama")


def ama_command() -> str:
    """The ``ama`` the hooks should run: the console script beside this Python, else the
    one on PATH."""
    beside = Path(sys.executable).with_name("ama")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ama") or "ama"


def is_ama_hook(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return MARKER in head


def _why_unchainable(path: Path) -> str | None:
    """Why the existing hook at ``path`` cannot be chained, or None if it can."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "it is a symbolic link to nothing"
    if not stat.S_ISREG(st.st_mode):
        return "it is not a file"
    if not os.access(path, os.X_OK):
        return ("it is not executable, so git does not run it now (make it executable "
                "with chmod +x to have ama run it first)")
    if path.with_name(path.name + CHAINED).exists() or path.with_name(
            path.name + CHAINED).is_symlink():
        return f"{path.name + CHAINED} is already taken"
    return None


def _write_hook(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"), 0o755)


def install(repo: GitRepo, force: bool = False, ama: str | None = None) -> list[HookChange]:
    """Install ama's hooks into ``repo``'s hooks folder; return what happened to each.

    Raises :class:`ForeignHook` (before changing anything) when an existing hook cannot
    be chained and ``force`` is false.
    """
    folder = repo.hooks_dir()
    source = scripts_dir()
    command = shlex.quote(ama or ama_command())
    plan: list[tuple[str, Path, str]] = []
    refused: list[str] = []
    for name in HOOKS:
        path = folder / name
        if not path.exists() and not path.is_symlink():
            plan.append((name, path, "installed"))
        elif is_ama_hook(path):
            plan.append((name, path, "updated"))
        else:
            why = _why_unchainable(path)
            if why is None:
                plan.append((name, path, "chained"))
            elif force:
                plan.append((name, path, "replaced"))
            else:
                refused.append(f"{path}: {why}")
    if refused:
        raise ForeignHook("cannot chain the existing hooks " + "; ".join(refused),
                          "fix them as said, or set them aside with 'ama hooks install "
                          "--force' ('ama hooks uninstall' puts them back)")
    folder.mkdir(parents=True, exist_ok=True)
    changes = []
    for name, path, action in plan:
        if action == "chained":
            os.replace(path, path.with_name(name + CHAINED))
        elif action == "replaced":
            target = path.with_name(name + REPLACED)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            if path.is_dir() and not path.is_symlink():
                if target.exists() or target.is_symlink():
                    target.unlink()
            os.replace(path, target)
        text = (source / name).read_text(encoding="utf-8").replace(PLACEHOLDER, command)
        _write_hook(path, text)
        changes.append(HookChange(name, action, path))
    return changes


def uninstall(repo: GitRepo) -> list[HookChange]:
    """Remove ama's hooks from ``repo`` and restore the hooks they chained or replaced."""
    folder = repo.hooks_dir()
    changes = []
    for name in HOOKS:
        path = folder / name
        if not (path.exists() or path.is_symlink()):
            changes.append(HookChange(name, "absent", path))
            continue
        if not is_ama_hook(path):
            changes.append(HookChange(name, "foreign", path))
            continue
        path.unlink()
        action = "removed"
        for suffix in (CHAINED, REPLACED):
            previous = path.with_name(name + suffix)
            if previous.exists() or previous.is_symlink():
                os.replace(previous, path)
                action = "restored"
                break
        changes.append(HookChange(name, action, path))
    return changes


def installed(repo: GitRepo) -> dict[str, bool]:
    """Whether each of ama's hooks is installed in ``repo``."""
    folder = repo.hooks_dir()
    return {name: is_ama_hook(folder / name) for name in HOOKS}
