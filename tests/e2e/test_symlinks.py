"""Symbolic links through the installed ``ama``: a tree like the time-zone database goes
add → upload → clone and comes back byte- and link-identical, on the embedded remote and
through ``ama-server`` under gunicorn; a link leaving the asset is refused naming the way
out."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.e2e.test_lifecycle import ama, prepare
from tests.services.server import RunningServer


def zoneinfo(root: Path) -> None:
    """Relative links to files and to a folder, a chain of links and a dangling one."""
    (root / "zoneinfo/Europe").mkdir(parents=True)
    (root / "zoneinfo/Etc").mkdir()
    (root / "zoneinfo/Europe/Paris").write_bytes(b"TZif CET\n")
    (root / "zoneinfo/Etc/UTC").write_bytes(b"TZif UTC\n")
    os.symlink("Paris", root / "zoneinfo/Europe/Monaco")
    os.symlink("../Etc/UTC", root / "zoneinfo/Europe/Zulu")
    os.symlink("Europe/Zulu", root / "zoneinfo/Zulu")
    os.symlink("zoneinfo", root / "posix")
    os.symlink("../gone", root / "zoneinfo/Dangling")


def tree(root: Path) -> dict[str, tuple[str, bytes]]:
    """Every file and link below ``root`` outside ``.ama/``: ("file", bytes) or
    ("link", target), links not followed."""
    found: dict[str, tuple[str, bytes]] = {}
    for folder, dirs, names in os.walk(root):
        rel = Path(folder).relative_to(root)
        if rel.parts[:1] == (".ama",):
            continue
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            full = os.path.join(folder, name)
            key = (rel / name).as_posix()
            if os.path.islink(full):
                found[key] = ("link", os.fsencode(os.readlink(full)))
            else:
                found[key] = ("file", Path(full).read_bytes())
    return found


def round_trip(tmp_path: Path, env: dict[str, str] | None = None) -> None:
    ama("class", "init", "tz", cwd=tmp_path, env=env)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "tz", cwd=m, env=env)
    zoneinfo(m)
    (tmp_path / "outside").write_text("outside\n")
    os.symlink("../outside", m / "escape")
    refused = ama("add", ".", cwd=m, env=env, code=2)
    assert "escape" in refused.stderr and "--follow-symlinks" in refused.stderr
    assert "--skip-symlinks" in refused.stderr
    both = ama("add", "--follow-symlinks", "--skip-symlinks", ".", cwd=m, env=env, code=2)
    assert "cannot be given together" in both.stderr
    os.unlink(m / "escape")
    ama("add", ".", cwd=m, env=env)
    staged = ama("ls-files", "-s", cwd=m, env=env).stdout.splitlines()
    assert [line.split()[0] for line in staged].count("link") == 5
    (m / "new.txt").write_text("new\n")
    assert ama("ls-files", "--others", cwd=m, env=env).stdout == "new.txt\n"
    os.unlink(m / "new.txt")
    assert json.loads(ama("status", "--json", cwd=m, env=env).stdout)["modified"] == []
    ama("upload", "-m", "zones", cwd=m, env=env)
    before = tree(m)
    assert before["posix"] == ("link", b"zoneinfo")
    ama("clone", "tz/1", "-d", "copy", cwd=tmp_path, env=env)
    assert tree(tmp_path / "copy") == before
    # A new target is a new version; switching back restores the old link.
    os.unlink(m / "zoneinfo/Europe/Monaco")
    os.symlink("../Etc/UTC", m / "zoneinfo/Europe/Monaco")
    assert json.loads(ama("status", "--json", cwd=m, env=env).stdout)["modified"] == [
        "zoneinfo/Europe/Monaco"]
    ama("update", ".", cwd=m, env=env)
    ama("upload", "-m", "moved", cwd=m, env=env)
    ama("pull", cwd=tmp_path / "copy", env=env)
    assert os.readlink(tmp_path / "copy/zoneinfo/Europe/Monaco") == "../Etc/UTC"
    ama("switch", "--version", "0.0.0", cwd=tmp_path / "copy", env=env)
    assert tree(tmp_path / "copy") == before


def test_links_round_trip_on_the_embedded_remote(tmp_path: Path) -> None:
    round_trip(tmp_path)


def test_links_round_trip_through_ama_server(
        tmp_path: Path, start_ama_server: Callable[..., RunningServer]) -> None:
    server = start_ama_server()
    prepare("remote", "add", "team", server.url, cwd=tmp_path)
    prepare("remote", "default", "team", cwd=tmp_path)
    prepare("auth", "login", "--token", server.token, "--remote", "team", cwd=tmp_path)
    prepare("project", "activate", server.project, cwd=tmp_path)
    round_trip(tmp_path)
