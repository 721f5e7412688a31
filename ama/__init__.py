"""ama: a version-controlled, immutable store for datasets, models and configurations.

The Python API (``ama.version``, ``ama.create``, ``ama.find``, ``ama.assets``,
``ama.Client``, the errors) lives in :mod:`ama.api` and is re-exported here lazily: ``import
ama`` loads nothing else, so the CLI and the git hooks, which import this package, start
fast. tests/unit/test_boundaries.py checks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ama.api import (  # noqa: F401
        Client,
        Entry,
        File,
        IsADirectory,
        LocalAsset,
        Version,
        assets,
        client,
        create,
        create_class,
        find,
        open_dir,
        version,
    )
    from ama.plumbing.errors import (  # noqa: F401
        AmaError,
        BadInput,
        Conflict,
        Forbidden,
        NotFound,
        Unauthenticated,
        ValidationFailed,
    )
    from ama.plumbing.transport import Unreachable  # noqa: F401

_API = ("Client", "Entry", "File", "IsADirectory", "LocalAsset", "Version", "assets",
        "client", "create", "create_class", "find", "open_dir", "version")
_ERRORS = ("AmaError", "BadInput", "Conflict", "Forbidden", "NotFound", "Unauthenticated",
           "ValidationFailed")

__all__ = [*_API, *_ERRORS, "Unreachable", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from ama import api

        return getattr(api, name)
    if name in _ERRORS:
        from ama.plumbing import errors

        return getattr(errors, name)
    if name == "Unreachable":
        from ama.plumbing.transport import Unreachable

        return Unreachable
    raise AttributeError(f"module 'ama' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
