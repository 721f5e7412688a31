"""The embedded ``file://`` remote: the service layer over SQLite and a local object directory.

``open_embedded(path)`` needs no server: the database is ``path/ama.db``, objects go to
``path/storage``, and the first use creates both, a local admin user and the project
``default``. Two processes opening the same path at once both succeed: the migration and
the setup each run in one ``BEGIN IMMEDIATE`` transaction, so the second finds them done.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ama_remote.db import Database
from ama_remote.models import Membership, Project, User
from ama_remote.service import Caller, Service, utc_now

LOCAL_USER = "local"
DEFAULT_PROJECT = "default"


def open_embedded(path: str | Path) -> tuple[Service, Caller]:
    """Return the service of the embedded remote at ``path`` and its local admin caller."""
    root = Path(path).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    storage_url = (root / "storage").as_uri()
    db = Database(f"sqlite:///{root / 'ama.db'}")
    if not db.at_head():
        db.migrate()

    def setup(s: Session) -> Caller:
        now = utc_now().replace(tzinfo=None, microsecond=0)
        user = s.scalars(select(User).where(User.username == LOCAL_USER)).first()
        if user is None:
            user = User(username=LOCAL_USER, email=f"{_login()}@localhost", is_admin=True,
                        active=True, created=now)
            s.add(user)
            s.flush()
        project = s.scalars(select(Project).where(Project.name == DEFAULT_PROJECT)).first()
        if project is None:
            project = Project(name=DEFAULT_PROJECT, storage_url=storage_url, created=now)
            s.add(project)
            s.flush()
        if s.get(Membership, (project.id, user.id)) is None:
            s.add(Membership(project_id=project.id, user_id=user.id, role="admin"))
        return Caller(user_id=user.id, username=user.username, is_admin=True)

    caller = db.run(setup)
    return Service(db), caller


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"
