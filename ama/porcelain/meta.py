"""An asset's title, description and tags (``ama asset set``): the mutable description of
an asset as a whole, kept by the remote and audited there (a version's own metadata is in
its manifest and never changes)."""

from __future__ import annotations

from collections.abc import Iterable

from ama.plumbing import wire
from ama.plumbing.errors import BadInput
from ama.porcelain.info import AssetRef, Remote

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_TAG = 64


def _line(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if "\n" in value or "\r" in value:
        raise BadInput(f"invalid {what} {value[:40]!r}: it must be one line")
    if len(value) > limit:
        raise BadInput(f"the {what} is {len(value)} characters; at most {limit} are allowed")
    return value


def check_tag(tag: str) -> str:
    tag = _line(tag, "tag", MAX_TAG)
    if not tag or "," in tag:
        raise BadInput(f"invalid tag {tag!r}: a tag is a non-empty word or phrase without commas",
                       "pass each tag on its own: --tag vision --tag resnet")
    return tag


def set_meta(remote: Remote, asset: AssetRef, title: str | None = None,
             description: str | None = None, tags: Iterable[str] | None = None,
             add_tags: Iterable[str] = (), remove_tags: Iterable[str] = ()
             ) -> wire.AssetRecord:
    """Change what is given of ``asset``'s title, description and tags; return the asset's
    record after the change.

    ``tags`` replaces the tags (an empty list clears them); ``add_tags`` and
    ``remove_tags`` change the current tags instead. Every value is checked before the
    remote is asked. Raises :class:`BadInput`, NotFound, Forbidden (a reader's role).
    """
    if title is not None:
        title = _line(title, "title", MAX_TITLE)
    if description is not None:
        if len(description) > MAX_DESCRIPTION:
            raise BadInput(f"the description is {len(description)} characters; at most "
                           f"{MAX_DESCRIPTION} are allowed")
        description = description.strip()
    new_tags = None if tags is None else [check_tag(t) for t in tags]
    adding = [check_tag(t) for t in add_tags]
    removing = [check_tag(t) for t in remove_tags]
    if new_tags is not None and (adding or removing):
        raise BadInput("--tag replaces the tags; it cannot be combined with --add-tag or "
                       "--remove-tag")
    if title is None and description is None and new_tags is None and not adding \
            and not removing:
        raise BadInput("nothing to change",
                       "pass --title, --description, --tag, --add-tag, --remove-tag or "
                       "--clear-tags")
    if adding or removing:
        current = remote.transport.asset(remote.project, asset.cls, asset.asset)["tags"]
        new_tags = [t for t in [*current, *adding] if t not in removing]
    if new_tags is not None:
        new_tags = sorted(set(new_tags))
    return remote.transport.update_asset(remote.project, asset.cls, asset.asset, title=title,
                                         description=description, tags=new_tags)


STATUSES = ("active", "deprecated", "obsolete")


def set_status(remote: Remote, asset: AssetRef, status: str) -> wire.AssetRecord:
    """Set ``asset``'s status (active, deprecated or obsolete; writers) and return its record.
    Raises :class:`BadInput` for another status, NotFound, Forbidden."""
    if status not in STATUSES:
        raise BadInput(f"invalid status {status!r}: use one of {', '.join(STATUSES)}",
                       "for example 'ama asset status deprecated'")
    return remote.transport.update_asset(remote.project, asset.cls, asset.asset, status=status)


def delete_asset(remote: Remote, asset: AssetRef, restore: bool = False) -> wire.AssetRecord:
    """Delete ``asset`` softly (its versions are no longer listed nor cloneable, its objects
    stay), or with ``restore`` bring it back; project admins only. Returns its record.
    Raises NotFound, Forbidden."""
    return remote.transport.delete_asset(remote.project, asset.cls, asset.asset,
                                         restore=restore)
