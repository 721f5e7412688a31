"""Storage backends for object bytes: file://, s3:// and gs://, behind one interface.

:func:`open_backend` turns a project's storage URL into a :class:`~.base.Backend`. The S3 and
GCS modules import their cloud libraries only when such a URL is opened.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from ama.plumbing.errors import BadInput
from ama_remote.storage.base import Backend, ObjectMissing, object_key

__all__ = ["Backend", "ObjectMissing", "object_key", "open_backend", "storage_location",
           "storages_overlap"]


def open_backend(url: str, **options: Any) -> Backend:
    """Return the backend for ``url``.

    - ``file:///abs/path``: a local directory (created on the first write);
    - ``s3://bucket/prefix``: options ``endpoint_url``, ``presign_endpoint_url``,
      ``region``, ``access_key_id``, ``secret_access_key`` (else the environment:
      ``AMA_S3_PRESIGN_ENDPOINT_URL`` and boto3's own ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
      ``AWS_ACCESS_KEY_ID``, …);
    - ``gs://bucket/prefix``: options ``credentials_file`` (a service-account JSON key, else
      ``GOOGLE_APPLICATION_CREDENTIALS``) and ``project``; ``STORAGE_EMULATOR_HOST`` selects
      an emulator.

    Raises BadInput for a URL no backend serves. Opening contacts no server.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BadInput(
                f"storage URL {url!r} is not file:///absolute/path",
                "write a local storage as file:// followed by an absolute path",
            )
        _no_options(url, options)
        from ama_remote.storage.local import LocalBackend

        return LocalBackend(unquote(parts.path), url)
    if scheme in ("s3", "gs"):
        bucket = parts.netloc
        if not bucket or parts.query or parts.fragment:
            raise BadInput(
                f"storage URL {url!r} is not {scheme}://bucket/prefix",
                f"write it as {scheme}://BUCKET or {scheme}://BUCKET/PREFIX",
            )
        prefix = parts.path.strip("/")
        if scheme == "s3":
            from ama_remote.storage.s3 import S3Backend

            return S3Backend(bucket, prefix, **options)
        from ama_remote.storage.gcs import GCSBackend

        return GCSBackend(bucket, prefix, **options)
    raise BadInput(
        f"storage URL {url!r} has no backend",
        "use file:///absolute/path, s3://bucket/prefix or gs://bucket/prefix",
    )


def storage_location(url: str) -> tuple[str, ...]:
    """Return where ``url`` keeps its objects as comparable parts: the scheme, the bucket
    ("" for ``file://``) and each folder of the path or prefix, so that two spellings of one
    place are equal and a place inside another begins with the other's parts.

    A local path is made absolute with its symbolic links resolved; empty parts of a
    prefix are dropped (``s3://b//p/`` is ``s3://b/p``). A URL no backend serves is only
    equal to itself.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
        path = os.path.realpath(unquote(parts.path))
        return ("file", "", *(p for p in path.split("/") if p))
    if scheme in ("s3", "gs") and parts.netloc:
        return (scheme, parts.netloc.lower(), *(p for p in parts.path.split("/") if p))
    return ("?", url)


def storages_overlap(a: str, b: str) -> bool:
    """Whether the storages at URLs ``a`` and ``b`` are one place, or one lies inside the
    other (so one's listing or keys may show the other's objects)."""
    x, y = storage_location(a), storage_location(b)
    n = min(len(x), len(y))
    return x[:n] == y[:n]


def _no_options(url: str, options: dict[str, Any]) -> None:
    if options:
        raise BadInput(f"storage {url} takes no options (got {', '.join(sorted(options))})")
