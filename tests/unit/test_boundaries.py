"""The module boundaries of docs/design.md §5, checked by walking every import of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# folder -> the import name it is installed under (setup.cfg's package_dir)
PACKAGES = {"ama": "ama", "remote": "ama_remote"}


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    parts[0] = PACKAGES[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (lazy imports inside functions too),
    with relative imports made absolute. ``from a import b`` yields ``a`` and ``a.b``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return found


def modules_under(folder: str) -> dict[Path, set[str]]:
    return {p: imports_of(p) for p in sorted((REPO / folder).rglob("*.py"))
            if "__pycache__" not in p.parts}


def names(imported: set[str], top: str) -> set[str]:
    return {m for m in imported if m == top or m.startswith(top + ".")}


def violations(folder: str, forbidden: list[str]) -> list[str]:
    found = []
    for path, imported in modules_under(folder).items():
        for top in forbidden:
            for name in sorted(names(imported, top)):
                found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


def test_the_import_walker_sees_imports() -> None:
    # Guard against a walker that finds nothing and so passes every rule.
    main = imports_of(REPO / "ama" / "cli" / "main.py")
    assert "click" in main and "ama.plumbing.errors" in main
    odb = imports_of(REPO / "ama" / "plumbing" / "odb.py")
    assert "ama.plumbing.hashing" in odb
    assert len(modules_under("ama/plumbing")) >= 10


PLUMBING_FORBIDDEN = ["ama.porcelain", "ama.cli", "ama_remote", "remote", "click", "falcon",
                      "boto3", "botocore", "google"]


def test_plumbing_imports_neither_porcelain_cli_remote_nor_frameworks() -> None:
    assert violations("ama/plumbing", PLUMBING_FORBIDDEN) == []


def test_porcelain_never_imports_the_command_line() -> None:
    assert violations("ama/porcelain", ["ama.cli", "click"]) == []


def test_the_command_line_reaches_the_remote_only_through_the_porcelain() -> None:
    assert violations("ama/cli", ["ama_remote", "remote", "boto3", "botocore", "google",
                                  "falcon"]) == []


def test_remote_never_imports_porcelain_or_cli() -> None:
    assert violations("remote", ["ama.porcelain", "ama.cli"]) == []


def test_remote_imports_itself_by_its_installed_name() -> None:
    # remote/ installs as ama_remote: 'import remote' would work only from a checkout.
    assert violations("remote", ["remote"]) == []
    assert violations("ama", ["remote"]) == []


def _importers(top: list[str]) -> list[Path]:
    found = []
    for folder in PACKAGES:
        for path, imported in modules_under(folder).items():
            if any(names(imported, t) for t in top):
                found.append(path)
    return found


@pytest.mark.parametrize("sdk", [["boto3", "botocore"], ["google"]])
def test_cloud_sdks_are_imported_only_by_their_one_storage_backend(sdk: list[str]) -> None:
    importers = _importers(sdk)
    storage = REPO / "remote" / "storage"
    assert [p for p in importers if p.parent != storage] == []
    assert len(importers) <= 1, f"{sdk[0]} is imported by {importers}"


def test_cloud_sdks_do_not_share_a_module() -> None:
    assert set(_importers(["boto3", "botocore"])).isdisjoint(_importers(["google"]))


def test_git_libraries_are_imported_by_one_module_only() -> None:
    importers = _importers(["dulwich", "pygit2"])
    assert len(importers) <= 1, f"dulwich/pygit2 imported by {importers}"


def test_every_client_package_has_rules_here() -> None:
    # A new package under ama/ would escape the rules above.
    found = {p.name for p in (REPO / "ama").iterdir()
             if p.is_dir() and (p / "__init__.py").exists()}
    assert found == {"plumbing", "porcelain", "cli"}, "add the new package's rules here"
