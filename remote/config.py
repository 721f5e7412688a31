"""The server's settings (flags over environment over ``$AMA_SERVER_HOME/server.toml`` over
defaults, resolved once into a frozen :class:`ServerConfig`) and the service they open.

``server.toml`` holds top-level keys named like the fields below, for example::

    database_url = "postgresql+psycopg://ama@db.internal/ama"
    max_object_bytes = 10_000_000_000
    open_signup_domains = ["example.org"]
    oidc_client_id = "1234-abc.apps.googleusercontent.com"   # browser login (ama_remote.oidc)

With an OpenID Connect client, the dashboard signs in with it too: register
``https://SERVER/login/oidc/callback`` as a redirect URI of the client at the provider
(docs/dashboard.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ama.plumbing.errors import BadInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILE = "server.toml"
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40
# The largest object S3 stores (in a multipart upload; one PUT stops at 5 GiB): a server
# refusing less refuses what its storage would hold, and more could never be stored there.
MAX_OBJECT_BYTES = 5 * TiB


class BadConfig(BadInput):
    """A configuration file or value the server cannot use."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything the app, ``ama-server`` and gunicorn need to know about this server."""

    home: Path
    database_url: str
    # JSON request bodies (a batch of many ids, a class with its schema) are small; object
    # bytes go through PUT objects/{id}, limited separately.
    max_request_bytes: int = 16 * MiB
    max_object_bytes: int = MAX_OBJECT_BYTES
    # The parts a client sends a large object in (raised to the storage's minimum, and so
    # that no object needs more than 10,000): fewer requests than 8 MiB, and a part cut off
    # re-sends little.
    multipart_part_bytes: int = 64 * MiB
    per_page: int = 100
    max_per_page: int = 1000
    open_signup_domains: tuple[str, ...] = ()
    token_ttl: int = 30 * 86400
    # Browser login with OpenID Connect (ama_remote.oidc): off until a client id is set.
    oidc_issuer: str = "https://accounts.google.com"
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scopes: str = "openid email profile"
    bind: str = "127.0.0.1:8080"
    workers: int = 2
    timeout: int = 300
    accesslog: str | None = "-"
    errorlog: str = "-"

    @property
    def config_file(self) -> Path:
        return self.home / CONFIG_FILE


_INT_FIELDS = {"max_request_bytes", "max_object_bytes", "multipart_part_bytes", "per_page",
               "max_per_page", "token_ttl", "workers", "timeout"}
_KNOWN = {f.name for f in fields(ServerConfig)} - {"home"}


def default_home(environ: Mapping[str, str]) -> Path:
    """Return ``$AMA_SERVER_HOME``, else ``~/.ama-server``."""
    home = environ.get("AMA_SERVER_HOME")
    if home:
        return Path(home).absolute()
    return Path(environ.get("HOME") or Path.home()) / ".ama-server"


def load_config(environ: Mapping[str, str] | None = None,
                home: str | os.PathLike[str] | None = None, **overrides: Any) -> ServerConfig:
    """Return the server's configuration.

    ``overrides`` (from command-line flags; ``None`` values are ignored) win over the
    environment (``AMA_DATABASE_URL``), which wins over ``server.toml`` in the home folder.
    Raises :class:`BadConfig` for an unreadable file, an unknown key or a value of the wrong type.
    """
    environ = os.environ if environ is None else environ
    root = Path(home).absolute() if home else default_home(environ)
    values: dict[str, Any] = _read_file(root / CONFIG_FILE)
    if environ.get("AMA_DATABASE_URL"):
        values["database_url"] = environ["AMA_DATABASE_URL"]
    if environ.get("AMA_MULTIPART_PART_BYTES"):
        part = environ["AMA_MULTIPART_PART_BYTES"]
        if not part.isdigit():
            raise BadConfig(f"AMA_MULTIPART_PART_BYTES={part!r} is not a number of bytes",
                            "set it to a whole number of bytes (or unset it)")
        values["multipart_part_bytes"] = int(part)
    lease_seconds(environ)  # refused at start, not at the first upload in parts
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - _KNOWN)
    if unknown:
        raise BadConfig(f"unknown setting(s) {', '.join(unknown)} in {root / CONFIG_FILE}",
                        f"known settings: {', '.join(sorted(_KNOWN))}")
    for name in _INT_FIELDS & set(values):
        if isinstance(values[name], bool) or not isinstance(values[name], int) or values[name] < 1:
            raise BadConfig(f"setting {name} must be a positive integer, not {values[name]!r}")
    if "open_signup_domains" in values:
        domains = values["open_signup_domains"]
        if isinstance(domains, str):
            domains = [d for d in domains.split(",") if d]
        if not all(isinstance(d, str) for d in domains):
            raise BadConfig("setting open_signup_domains must be a list of domain names")
        values["open_signup_domains"] = tuple(d.strip().lower() for d in domains)
    for name in ("oidc_issuer", "oidc_client_id", "oidc_client_secret", "oidc_scopes"):
        if name in values and not isinstance(values[name], str):
            raise BadConfig(f"setting {name} must be a string, not {values[name]!r}")
    values.setdefault("database_url", f"sqlite:///{root / 'ama.db'}")
    return ServerConfig(home=root, **values)


# A job that hashes an object renews its claim this often, or three times a lease shorter
# than three of these, so that only a dead worker's claim outlives the lease.
HEARTBEAT = 15.0


def lease_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """``AMA_VERIFY_LEASE_SECONDS``, the lease of a worker's claim on an object it hashes
    (None when unset: the default). Raises :class:`BadConfig` for a value that is not a
    number of seconds."""
    environ = os.environ if environ is None else environ
    seconds = environ.get("AMA_VERIFY_LEASE_SECONDS", "")
    if not seconds:
        return None
    try:
        lease = float(seconds)
    except ValueError:
        lease = -1.0
    if not 0 <= lease < 10**9:  # also refuses nan and inf
        raise BadConfig(f"AMA_VERIFY_LEASE_SECONDS={seconds!r} is not a number of seconds",
                        "set it to a number of seconds (or unset it: 15 minutes)")
    return lease


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return dict(tomllib.load(f))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BadConfig(f"cannot read {path}: {e}", "fix or remove the file") from None


def open_service(config: ServerConfig):  # type: ignore[no-untyped-def]
    """Return the :class:`~ama_remote.service.Service` over this configuration's database."""
    from ama_remote.db import Database
    from ama_remote.service import Service

    service = Service(Database(config.database_url),
                      open_signup_domains=config.open_signup_domains, token_ttl=config.token_ttl)
    service.max_object_bytes = config.max_object_bytes
    return service


__all__ = ["BadConfig", "ServerConfig", "default_home", "load_config", "open_service"]
