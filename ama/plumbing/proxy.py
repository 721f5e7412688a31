"""Proxy descriptors: what a ``proxy`` tree entry points at instead of a file's bytes.

A proxy file's bytes stay at their source (a bucket or a web server); the version holds a
small object, its *descriptor*, naming the source and what the bytes must be::

    {"etag":"…","format":"ama-proxy/1","id":"<BLAKE3 of the bytes>","size":N,
     "url":"s3://bucket/key","version":""}

in canonical JSON (sorted keys, no spaces, UTF-8), so the same source gives the same
descriptor and the same id. ``etag`` is the source's ETag (a bucket's generation for
``gs://``; empty when the source announced none), ``version`` the source's version id when
it has one. The layout and the rules are in ama-format(5), PROXY FILES.

Every reader checks a descriptor with :func:`parse_descriptor` before it trusts one: a
hostile tree could name ``file:///etc/shadow`` or a size no server stores, and only the
schemes ``ama add`` reads are ever fetched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ama.plumbing.errors import BadInput
from ama.plumbing.objects import InvalidObject, canonical_json, is_id

DESCRIPTOR_FORMAT = "ama-proxy/1"
# The schemes a proxy may name: the ones ``ama add`` reads (see ama.porcelain.sources).
PROXY_SCHEMES = ("s3", "gs", "http", "https")
# A descriptor is a few hundred bytes; the bound keeps a hostile one from being large.
MAX_DESCRIPTOR_BYTES = 8192
MAX_URL_CHARS = 4096
_FIELDS = {"etag", "format", "id", "size", "url", "version"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ProxyNotPlaceable(BadInput):
    """A version holding proxy files, which this ama records but does not fetch yet: its
    descriptor is never written where the file's bytes belong."""

    def __init__(self, what: str = "this version") -> None:
        super().__init__(f"{what} holds proxy files (their bytes stay at their source), "
                         "which this ama cannot fetch; nothing was written",
                         "upgrade ama, or use a version without proxy files")


@dataclass(frozen=True)
class ProxyDescriptor:
    """Where a proxy file's bytes live and what they must be."""

    url: str
    size: int
    id: str
    etag: str = ""
    version: str = ""

    def __post_init__(self) -> None:
        problem = url_problem(self.url)
        if problem is not None:
            raise InvalidObject(f"proxy descriptor: {problem}")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise InvalidObject("proxy descriptor: size must be a non-negative integer")
        if not isinstance(self.id, str) or not is_id(self.id):
            raise InvalidObject(f"proxy descriptor: {self.id!r} is not an object id")
        for name in ("etag", "version"):
            value = getattr(self, name)
            # No control character: both are shown in messages, where a carriage return
            # or an escape sequence would rewrite what the terminal shows.
            if not isinstance(value, str) or len(value) > 1024 or _CONTROL.search(value):
                raise InvalidObject(f"proxy descriptor: {name} must be a one-line string of "
                                    "at most 1024 characters, without control characters")

    def to_json(self) -> dict[str, Any]:
        return {"etag": self.etag, "format": DESCRIPTOR_FORMAT, "id": self.id,
                "size": self.size, "url": self.url, "version": self.version}

    def serialize(self) -> bytes:
        return canonical_json(self.to_json())


def url_problem(url: object) -> str | None:
    """Why ``url`` may not be a proxy's source, or None: only ``s3://``, ``gs://``,
    ``http://`` and ``https://`` URLs naming a host (or bucket), without credentials in
    them, are ever fetched."""
    if not isinstance(url, str):
        return "its url must be a string"
    if len(url) > MAX_URL_CHARS:
        return f"its url is longer than {MAX_URL_CHARS} characters"
    if any(ord(c) < 0x21 or 0x7f <= ord(c) <= 0x9f for c in url):
        return "its url holds a space or a control character"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as e:
        return f"its url {url!r} does not parse: {e}"
    if parts.scheme not in PROXY_SCHEMES:
        return (f"its url {url!r} has the scheme {parts.scheme or '(none)'!r}; a proxy may "
                f"only name {', '.join(s + '://' for s in PROXY_SCHEMES)}")
    if not host:
        return f"its url {url!r} names no host or bucket"
    if "@" in parts.netloc:
        return f"its url {url!r} holds credentials"
    if parts.scheme in ("s3", "gs") and (parts.query or parts.fragment
                                         or not parts.path.strip("/")):
        return f"its url {url!r} is not {parts.scheme}://BUCKET/KEY"
    return None


def parse_descriptor(data: bytes, max_size: int | None = None) -> ProxyDescriptor:
    """Parse a descriptor's bytes; raise :class:`InvalidObject` naming the first broken rule
    (not canonical JSON, a field missing or unknown, a scheme no proxy may name, a size
    over ``max_size``)."""
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise InvalidObject(f"proxy descriptor is longer than {MAX_DESCRIPTOR_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InvalidObject(f"not a proxy descriptor: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != DESCRIPTOR_FORMAT:
        raise InvalidObject(f"not a proxy descriptor: its format is not {DESCRIPTOR_FORMAT!r}")
    if set(doc) != _FIELDS:
        missing, extra = _FIELDS - set(doc), set(doc) - _FIELDS
        raise InvalidObject("proxy descriptor fields are wrong: " + ", ".join(
            [f"missing {k!r}" for k in sorted(missing)]
            + [f"unknown {k!r}" for k in sorted(extra)]))
    descriptor = ProxyDescriptor(url=doc["url"], size=doc["size"], id=doc["id"],
                                 etag=doc["etag"], version=doc["version"])
    if descriptor.serialize() != data:
        raise InvalidObject("proxy descriptor is not in canonical form (sorted keys, no spaces)")
    if max_size is not None and descriptor.size > max_size:
        raise InvalidObject(f"proxy descriptor: its size {descriptor.size:,} is over the "
                            f"{max_size:,} bytes an object may have")
    return descriptor


def file_descriptor(data: bytes, path: str, size: int) -> ProxyDescriptor:
    """The descriptor ``data`` of the proxy file ``path`` whose tree entry says ``size``
    bytes; raises :class:`InvalidObject` naming the file for a descriptor no client may
    follow or one that describes another size (a remote that lets such a version through
    would otherwise hand out bytes of a size no listing showed)."""
    try:
        descriptor = parse_descriptor(data)
    except InvalidObject as e:
        raise InvalidObject(f"{path}: {e.message}") from None
    if descriptor.size != size:
        raise InvalidObject(f"{path}: its descriptor says {descriptor.size} bytes, its tree "
                            f"{size}")
    return descriptor
