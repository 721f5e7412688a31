from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ama.cli.main import cli
from ama.porcelain.asset import Head
from ama.porcelain.config import Config
from ama.porcelain.remotes import add, get, local_url, set_default


def test_the_first_remote_added_becomes_the_default(tmp_path: Path) -> None:
    config = Config(tmp_path / "home")
    assert get(config).name == "local"
    team = add(config, "team", "https://ama.example.org")
    assert team.default
    assert get(Config(tmp_path / "home")).name == "team"
    # A second one does not take over: the user has a default now.
    assert not add(config, "other", "https://other.example.org").default
    assert get(Config(tmp_path / "home")).name == "team"


def test_a_chosen_default_is_kept_when_a_remote_is_added(tmp_path: Path) -> None:
    config = Config(tmp_path / "home")
    set_default(config, "local")
    assert not add(config, "team", "https://ama.example.org").default
    assert get(Config(tmp_path / "home")).name == "local"


def test_remote_add_says_that_the_new_remote_is_the_default() -> None:
    result = CliRunner().invoke(cli, ["remote", "add", "origin", "https://ama.example.org"])
    assert result.exit_code == 0, result.output
    assert "origin is now the default remote" in result.output


def test_a_clone_from_a_remote_named_by_its_url_in_ama_remote_gets_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A version on the embedded remote of one store, cloned into another store that reaches
    # it only through AMA_REMOTE=URL: HEAD records the remote as url-<hash>.
    assert CliRunner().invoke(cli, ["class", "init", "ml-models"]).exit_code == 0
    root = tmp_path / "a"
    root.mkdir()
    (root / "f.txt").write_text("bytes\n")
    monkeypatch.chdir(root)
    assert CliRunner().invoke(cli, ["init", "ml-models"]).exit_code == 0
    assert CliRunner().invoke(cli, ["add", "."]).exit_code == 0
    assert CliRunner().invoke(cli, ["upload", "-m", "v"]).exit_code == 0
    monkeypatch.setenv("AMA_REMOTE", local_url(Config.open()))
    monkeypatch.setenv("AMA_HOME", str(tmp_path / "other"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["clone", "ml-models/1", "-d", "c"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c" / "f.txt").read_text() == "bytes\n"
    assert get(Config.open(), Head.read(tmp_path / "c" / ".ama").remote).url == \
        os.environ["AMA_REMOTE"]
