from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ama.cli.main import cli
from ama.porcelain.config import Config
from ama.porcelain.remotes import add, get, set_default


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
