from __future__ import annotations

from pathlib import Path

import pytest

from ama.porcelain.config import KEYS, BadValue, Config, UnknownKey


def test_set_get_and_file_format(tmp_path: Path) -> None:
    config = Config(tmp_path / "h", {})
    assert config.get("link.strategy") == "auto"
    config.set("link.strategy", "hardlink")
    config.set("user.name", "Ada Lovelace")
    text = (tmp_path / "h" / "config").read_text()
    assert "[link]\nstrategy = hardlink\n" in text
    again = Config(tmp_path / "h", {})
    assert again.get("link.strategy") == "hardlink"
    assert again.source("link.strategy") == "file"
    assert again.get("user.name") == "Ada Lovelace"
    assert again.unset("link.strategy") is True
    assert Config(tmp_path / "h", {}).get("link.strategy") == "auto"


@pytest.mark.parametrize("name,value", [
    ("link.strategy", "teleport"), ("transfer.parallelism", "0"),
    ("transfer.timeout", "ten"), ("user.email", "nobody"), ("server.ip", "example.org"),
    ("project.active", "Bad Name"),
])
def test_bad_values_are_refused_and_nothing_is_written(tmp_path: Path, name: str,
                                                        value: str) -> None:
    config = Config(tmp_path, {})
    with pytest.raises(BadValue) as e:
        config.set(name, value)
    assert e.value.exit_code == 2 and name in e.value.message
    assert not (tmp_path / "config").exists()


def test_unknown_key_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownKey) as e:
        Config(tmp_path, {}).set("link.stratgy", "copy")
    for name in KEYS:
        assert name in e.value.message


def test_environment_overrides_file_and_author(tmp_path: Path) -> None:
    config = Config(tmp_path, {"AMA_AUTHOR_NAME": "Env Name", "AMA_PROJECT": "vision"})
    config.set("user.name", "File Name")
    config.set("user.email", "ada@example.org")
    assert config.get("user.name") == "Env Name"
    assert config.source("user.name") == "env"
    assert config.get("project.active") == "vision"
    author = config.author()
    assert (author.name, author.email) == ("Env Name", "ada@example.org")
