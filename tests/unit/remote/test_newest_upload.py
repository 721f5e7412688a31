"""Which upload in parts of an object a run goes on with, or a verify follows."""

from __future__ import annotations

from datetime import datetime, timezone

from ama_remote.storage.base import newest_upload

_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _at(second: int) -> datetime:
    return _AT.replace(second=second)


def test_the_upload_with_the_newest_part_is_gone_on_with() -> None:
    parts = [("old/1", _at(1)), ("old/2", _at(2)), ("new/1", _at(9))]
    assert newest_upload(iter(parts)) == "new"
    assert newest_upload(iter([])) is None


def test_of_uploads_whose_newest_parts_are_of_one_second_the_one_with_most_parts() -> None:
    # Listings date parts to the second: a killed client's part that landed late ties
    # with the parts its next run sent in a new upload. Either order of the listing.
    late = [("aaaa/3", _at(7))]
    sent = [("ffff/1", _at(6)), ("ffff/2", _at(7)), ("ffff/3", _at(7))]
    assert newest_upload(iter(late + sent)) == "ffff"
    assert newest_upload(iter(sent + late)) == "ffff"
    assert newest_upload(iter([("ffff/1", _at(7)), ("aaaa/1", _at(7)),
                               ("aaaa/2", _at(5))])) == "aaaa"
