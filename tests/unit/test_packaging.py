"""Packaging: every package folder is installed, under the name docs/design.md §5 gives it."""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "setup.cfg", encoding="utf-8")
    return parser


def listed(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def package_dir() -> dict[str, str]:
    """Import name -> folder, from setup.cfg's ``package_dir``."""
    pairs = (line.split("=") for line in listed(setup_cfg()["options"]["package_dir"]))
    return {name.strip(): folder.strip() for name, folder in pairs}


def folder_packages() -> set[str]:
    """The import name of every folder holding an ``__init__.py`` under ama/ and remote/."""
    found = set()
    for name, folder in package_dir().items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(root)
            found.add(".".join([name, *rel.parts]))
    return found


def test_remote_installs_as_ama_remote() -> None:
    assert package_dir() == {"ama": "ama", "ama_remote": "remote"}


def test_every_package_folder_is_listed_in_setup_cfg() -> None:
    packages = set(listed(setup_cfg()["options"]["packages"]))
    found = folder_packages()
    assert {"ama", "ama.plumbing", "ama.cli", "ama_remote"} <= found  # the walk works
    assert sorted(found - packages) == [], "add these to [options] packages in setup.cfg"


def test_every_listed_package_exists() -> None:
    packages = set(listed(setup_cfg()["options"]["packages"]))
    assert sorted(packages - folder_packages()) == []


def test_console_scripts_point_at_functions_that_exist() -> None:
    dirs = package_dir()
    scripts = dict(
        (part.strip() for part in line.split("=", 1))
        for line in listed(setup_cfg()["options.entry_points"]["console_scripts"])
    )
    assert set(scripts) == {"ama", "git-ama", "ama-server"}
    for script, target in scripts.items():
        module, _, function = target.partition(":")
        top, _, rest = module.partition(".")
        path = REPO / dirs[top] / (rest.replace(".", "/") + ".py")
        assert path.exists(), f"{script}: {path.relative_to(REPO)} does not exist"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert function in defined, f"{script}: {module} defines no {function}()"
