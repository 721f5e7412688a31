"""The remote's tables: users, tokens, projects, classes, assets, versions, objects and audit.

One schema for SQLite and PostgreSQL: only portable column types, naive UTC datetimes, JSON
columns for free-form documents, and named constraints so Alembic can alter them later. The
migrations (migrations/versions/) create exactly these tables: 0001 all of them, 0002 the
unique index on users' lowercased email addresses, 0003 assets' status and deletion time,
0004 the audit of admin actions (entries without a project, class or user) and the marks of
the server's garbage collection,
0005 the packs and where packed objects lie.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("reader", "writer", "admin")
ASSET_STATUSES = ("active", "deprecated", "obsolete")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(DateTime)


# One user per email address, whatever its case: an email names its user at OpenID login.
Index("uq_users_email_lower", func.lower(User.email), unique=True)


class Token(Base):
    """A bearer token, kept only as the SHA-256 of its text (tokens carry 256 random bits)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime)
    expires: Mapped[datetime] = mapped_column(DateTime)
    revoked: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    storage_url: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime)


class Membership(Base):
    __tablename__ = "memberships"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))


class AssetClass(Base):
    """A class: its rules, and the next ordinal its next new asset gets (1, 2, 3 …)."""

    __tablename__ = "classes"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    schema: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    rules: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    visualisation: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    next_ordinal: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[datetime] = mapped_column(DateTime)


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("class_id", "ordinal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[Any] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(DateTime)
    # One of ASSET_STATUSES; writers change it. ``deleted`` is set by a soft delete (project
    # admins): the asset and its versions are hidden, its objects stay, and a restore
    # clears it.
    status: Mapped[str] = mapped_column(String(16), default="active",
                                        server_default="active")
    deleted: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Alias(Base):
    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("class_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    asset_id: Mapped[int] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), index=True
    )


class Version(Base):
    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("asset_id", "major", "minor", "patch"),
        UniqueConstraint("asset_id", "manifest_id"),
        Index(None, "manifest_id"),
        Index(None, "tree_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    patch: Mapped[int] = mapped_column(Integer)
    manifest_id: Mapped[str] = mapped_column(String(64))
    tree_id: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("versions.id", ondelete="SET NULL"), nullable=True
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created: Mapped[datetime] = mapped_column(DateTime)


class VersionInput(Base):
    """A lineage edge: ``version`` was made from the version whose manifest is ``manifest_id``."""

    __tablename__ = "inputs"
    __table_args__ = (
        UniqueConstraint("version_id", "manifest_id"),
        Index(None, "manifest_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    manifest_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(Text, default="")


class StoredObject(Base):
    """An object a project holds: its size, whether its bytes were verified, and (for trees
    and manifests) those bytes, so a commit walks reachability without reading storage."""

    __tablename__ = "objects"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    oid: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime)


class Verification(Base):
    """An object whose bytes were stored whole by an upload in parts and are hashed after
    the upload's last request (the object is not verified until they hashed right):
    ``claimed`` is when a worker last began hashing them, ``failure`` why they were
    refused (they were deleted; the next upload of the object starts again) or why the job
    could not be done (the storage filled while it joined the parts, which are kept),
    ``failure_code`` the status that says which (422, 507; None, from before it was kept,
    is 422), ``upload_id``
    the storage's upload whose parts hold them, as its completing request named it (None
    before): a worker that takes the job up later follows or joins that upload, not a
    guess at the newest, and one following another upload of the object gives it up."""

    __tablename__ = "verifications"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    oid: Mapped[str] = mapped_column(String(64), primary_key=True)
    claimed: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)
    upload_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_code: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Pack(Base):
    """A pack (ama-format(5) PACKS) a project holds, or was announced and not yet checked:
    ``verified`` once every member hashed to its id and the members were recorded."""

    __tablename__ = "packs"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    pid: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer, default=0)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(DateTime)


class PackedObject(Base):
    """Where an object a project holds lies in one of its verified packs: downloads fetch
    it as that byte range (an object packed twice keeps its first place)."""

    __tablename__ = "packed_objects"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    oid: Mapped[str] = mapped_column(String(64), primary_key=True)
    pid: Mapped[str] = mapped_column(String(64))
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)


Index("ix_packed_objects_project_id_pid", PackedObject.project_id, PackedObject.pid)


class IdempotencyKey(Base):
    """A commit already made under this key, and the result it answered."""

    __tablename__ = "idempotency_keys"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    request: Mapped[Any] = mapped_column(JSON)
    result: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime)


class AuditEntry(Base):
    """One audited change: an alias, title, description or tags (``field`` names it), or an
    admin action (``user.disable``, ``role.grant`` …): who, when, old and new values.

    An admin action on a user has no project; one on a member no class; one made on the
    server's own console (``ama-server user disable``) no user.
    """

    __tablename__ = "audit"
    __table_args__ = (Index(None, "project_id", "class_id", "ordinal"), Index(None, "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True)
    class_id: Mapped[int | None] = mapped_column(
        ForeignKey("classes.id", ondelete="CASCADE"), nullable=True)
    ordinal: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    field: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200))
    old: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    new: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)


class GcMark(Base):
    """An object the server's garbage collection condemned in a project (``swept`` is None)
    or deleted from the project's storage (``swept`` is when). A commit naming a marked
    object checks its bytes in storage first (docs/design.md §8)."""

    __tablename__ = "gc_marks"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    oid: Mapped[str] = mapped_column(String(64), primary_key=True)
    marked: Mapped[datetime] = mapped_column(DateTime)
    swept: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
