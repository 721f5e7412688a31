"""User settings of the asset store: ``$AMA_HOME/config`` (``ama config get|set|list``).

The file is INI text, as git's config is: a section per first part of a key, one
``name = value`` line per setting, so ``link.strategy`` is::

    [link]
    strategy = hardlink

Only the keys in :data:`KEYS` are accepted (anything else is refused, listing the valid
ones), each with a check of its value and a default. A few environment variables override
the file for one command: ``AMA_REMOTE`` (remote.default), ``AMA_PROJECT`` (project.active),
``AMA_AUTHOR_NAME`` and ``AMA_AUTHOR_EMAIL`` (user.name, user.email).
"""

from __future__ import annotations

import configparser
import getpass
import io
import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ama.plumbing.errors import BadInput
from ama.plumbing.link import DEFAULT as DEFAULT_LINK
from ama.plumbing.link import STRATEGIES
from ama.plumbing.objects import Author
from ama.plumbing.store import home_dir

CONFIG_FILE = "config"
LOCAL_REMOTE = "local"
DEFAULT_PROJECT = "default"


class UnknownKey(BadInput):
    """A setting name that ama does not know."""


class BadValue(BadInput):
    """A value a setting cannot take."""


def _choice(*allowed: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"use one of {', '.join(allowed)}")
        return value
    return check


def _int_between(low: int, high: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value.isdigit() or not low <= int(value) <= high:
            raise ValueError(f"use a whole number from {low} to {high}")
        return str(int(value))
    return check


def _name(value: str) -> str:
    from ama.plumbing.objects import CLASS_NAME_RE

    if not CLASS_NAME_RE.match(value):
        raise ValueError("use 1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
    return value


def _text(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("it must be one line")
    return value.strip()


def _email(value: str) -> str:
    value = _text(value)
    if value and "@" not in value:
        raise ValueError("an email address needs an '@'")
    return value


def _ip(value: str) -> str:
    if value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("use an IPv4 or IPv6 address, such as 203.0.113.7") from None
    return value


@dataclass(frozen=True)
class Key:
    """One setting: its name, default, the check of its value and what it means."""

    name: str
    default: str
    check: Callable[[str], str]
    help: str
    env: str | None = None


KEYS: dict[str, Key] = {k.name: k for k in [
    Key("link.strategy", DEFAULT_LINK, _choice(DEFAULT_LINK, *STRATEGIES),
        "how files reach asset directories from the store: auto (reflink, else copy), "
        "reflink, hardlink, symlink or copy"),
    Key("remote.default", LOCAL_REMOTE, _name,
        "the remote used when none is named ('local' is the embedded file:// remote under "
        "$AMA_HOME)", env="AMA_REMOTE"),
    Key("project.active", DEFAULT_PROJECT, _name, "the project commands work in",
        env="AMA_PROJECT"),
    Key("transfer.timeout", "60", _int_between(1, 86400),
        "seconds to wait for a remote before giving up"),
    Key("transfer.parallelism", "8", _int_between(1, 64),
        "how many objects are transferred at once"),
    Key("transfer.multipart_threshold", str(64 << 20), _int_between(1, 1 << 50),
        "objects of this many bytes or more are uploaded in parts and downloaded in "
        "ranges, in parallel, and an interrupted transfer goes on from the parts or "
        "ranges already stored",
        env="AMA_MULTIPART_THRESHOLD"),
    Key("transfer.pack_bytes", str(64 << 20), _int_between(1 << 10, 1 << 40),
        "objects smaller than 256 KiB are uploaded in packs of about this many bytes, one "
        "request each; an interrupted upload sends again only the packs not yet stored",
        env="AMA_PACK_BYTES"),
    Key("user.name", "", _text, "the author name recorded in manifests",
        env="AMA_AUTHOR_NAME"),
    Key("user.email", "", _email, "the author email recorded in manifests",
        env="AMA_AUTHOR_EMAIL"),
    Key("server.ip", "", _ip,
        "the server's IP address, used instead of DNS when ASSET_SERVER_SKIP_DNS=true"),
]}


def check_key(name: str) -> Key:
    """Return the setting ``name``; raise :class:`UnknownKey` listing the valid ones."""
    key = KEYS.get(name)
    if key is None:
        raise UnknownKey(f"unknown setting {name!r}; valid settings: {', '.join(sorted(KEYS))}",
                         "list them with their values: ama config list")
    return key


class Config:
    """The settings in ``$AMA_HOME/config`` plus the environment's overrides."""

    def __init__(self, home: str | os.PathLike[str],
                 environ: Mapping[str, str] | None = None) -> None:
        self.home = Path(home)
        self.path = self.home / CONFIG_FILE
        self.environ = os.environ if environ is None else environ
        self._parser = configparser.ConfigParser(interpolation=None)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        try:
            self._parser.read_string(text, source=str(self.path))
        except configparser.Error as e:
            raise BadInput(f"the settings file {self.path} cannot be read: {e}",
                           f"fix or remove {self.path}") from None

    @classmethod
    def open(cls, environ: Mapping[str, str] | None = None) -> Config:
        return cls(home_dir(environ), environ)

    def stored(self, name: str) -> str | None:
        """Return the value of ``name`` in the file, or None when it is not set there."""
        check_key(name)
        section, _, option = name.partition(".")
        return self._parser.get(section, option, fallback=None)

    def get(self, name: str) -> str:
        """Return the value in effect for ``name``: environment, else file, else default."""
        key = check_key(name)
        if key.env and self.environ.get(key.env):
            return self.environ[key.env]
        value = self.stored(name)
        return key.default if value is None else value

    def source(self, name: str) -> str:
        """Where the value in effect comes from: ``env``, ``file`` or ``default``."""
        key = check_key(name)
        if key.env and self.environ.get(key.env):
            return "env"
        return "file" if self.stored(name) is not None else "default"

    def items(self) -> list[tuple[str, str, str]]:
        """Return ``(name, value in effect, source)`` for every setting, sorted by name."""
        return [(name, self.get(name), self.source(name)) for name in sorted(KEYS)]

    def set(self, name: str, value: str) -> str:
        """Store ``value`` for ``name`` (after checking it) and return the value stored.

        Raises :class:`UnknownKey` or :class:`BadValue`; the file is left as it was then.
        """
        key = check_key(name)
        try:
            value = key.check(value)
        except ValueError as e:
            raise BadValue(f"invalid value {value!r} for {name}: {e}") from None
        section, _, option = name.partition(".")
        if not self._parser.has_section(section):
            self._parser.add_section(section)
        self._parser.set(section, option, value)
        self._save()
        return value

    def unset(self, name: str) -> bool:
        """Remove ``name`` from the file; return whether it was set."""
        check_key(name)
        section, _, option = name.partition(".")
        if not self._parser.has_option(section, option):
            return False
        self._parser.remove_option(section, option)
        if not self._parser.options(section):
            self._parser.remove_section(section)
        self._save()
        return True

    def _save(self) -> None:
        out = io.StringIO()
        self._parser.write(out)
        self.home.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f"{CONFIG_FILE}.{os.getpid()}.tmp")
        temp.write_text(out.getvalue(), encoding="utf-8")
        os.replace(temp, self.path)

    def author(self) -> Author:
        """The author for manifests: user.name and user.email, else the login at this host."""
        name = self.get("user.name") or _login()
        email = self.get("user.email") or f"{_login()}@{socket.gethostname()}"
        return Author(name, email)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
