"""The one service layer of the remote: the :class:`Service` front over its parts.

The HTTP app and the embedded ``file://`` remote both call :class:`Service`, so ordinals,
the compare-and-swap on a version's parent, object checks and class rules are one piece of
code (docs/design.md §4). Every method returns JSON-ready dicts and lists (outside the
object transfer, the documents typed in :mod:`ama.plumbing.wire`) and raises the errors of
``ama_remote.errors``. Every call on a project checks the caller's role; a
project the caller is not a member of answers exactly like a project that does not exist.

One noun per module:

- ``common``: the state every part shares (database, storages, clock, randomness), the
  project, class and asset lookups with their role checks, the version queries, and the one
  upsert of object rows;
- ``accounts``: users and tokens;
- ``browse``: the web dashboard's filtered and paged reads;
- ``catalog``: projects and members, classes, assets, aliases, find and lineage;
- ``commit``: committing a version;
- ``objects``: negotiating transfers, uploads, downloads, verification and fsck;
- ``admin``: users, members and roles, one's own tokens and the audit log, through the API;
- ``gc``: the server's garbage collection of stored objects, and a commit's re-check of it;
- ``multipart``: large objects uploaded in parts;
- ``packs``: packs of small objects, where packed objects lie, and their fsck.

The parts are mixins over one ``ServiceBase`` rather than objects the front delegates to:
every method keeps its name and signature on ``Service``, so the app, the embedded remote
and the tests call ``service.commit(...)`` exactly as before, and a part reaches the shared
lookups as ``self._project(...)`` with their types, without a forwarding method per call.
"""

from __future__ import annotations

from ama_remote.service.accounts import Accounts
from ama_remote.service.admin import Admin
from ama_remote.service.browse import Browsing
from ama_remote.service.catalog import Catalog
from ama_remote.service.commit import Committing
from ama_remote.service.common import Caller, ServiceBase, utc_now
from ama_remote.service.gc import Collecting
from ama_remote.service.multipart import Multipart
from ama_remote.service.objects import Objects
from ama_remote.service.packs import Packs

__all__ = ["Caller", "Service", "utc_now"]


class Service(Accounts, Admin, Browsing, Catalog, Collecting, Committing, Multipart, Objects,
              Packs, ServiceBase):
    """Every operation of the remote, over a :class:`Database` and per-project storage."""
