"""``ama-server``: set up, run and administer the remote (docs/design.md §4).

Every command reads its configuration from the flags ``--home`` and ``--database-url``,
then the environment (``AMA_SERVER_HOME``, ``AMA_DATABASE_URL``), then
``$AMA_SERVER_HOME/server.toml`` (see :mod:`ama_remote.config`). Commands print results on
stdout, notes on stderr, and exit with the codes of docs/design.md §6.
"""

from __future__ import annotations

import io
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import click

from ama import __version__
from ama.commandline import AmaCommandGroup, command
from ama.plumbing.errors import FAILED, AmaError, NotFound
from ama_remote.config import ServerConfig, load_config

ROLES = ("reader", "writer", "admin")
# Without a query string: the server's own paths never carry secrets, but a proxy's could,
# and the Authorization header is never logged.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)ss'


class AlreadyInitialised(AmaError):
    """``init`` on a server that already has users."""

    exit_code = FAILED


class _Settings:
    """What the group's options say, turned into a configuration and a service on demand."""

    def __init__(self, home: str | None, database_url: str | None) -> None:
        self.home = home
        self.database_url = database_url

    def config(self, **overrides: Any) -> ServerConfig:
        return load_config(home=self.home, database_url=self.database_url, **overrides)

    def service(self, config: ServerConfig | None = None, initialising: bool = False) -> Any:
        from ama_remote.config import open_service

        config = config or self.config()
        if not initialising:
            _check_initialised(config)
        return open_service(config)


def _check_initialised(config: ServerConfig) -> None:
    """Refuse, with the command that fixes it, a server home that ``init`` never set up
    (instead of the database driver's traceback when it cannot open the file)."""
    from sqlalchemy.engine import make_url

    url = make_url(config.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    if not Path(url.database).exists():
        raise NotFound(f"no ama-server is set up at {config.home}: its database "
                       f"{url.database} does not exist",
                       "set one up with 'ama-server init --email EMAIL', or name the "
                       "server's folder with --home or AMA_SERVER_HOME")


class _Group(AmaCommandGroup):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AmaError as e:
            click.echo(f"ama-server: error: {e.message}", err=True)
            if e.hint:
                click.echo(f"hint: {e.hint}", err=True)
            ctx.exit(e.exit_code)




@click.group("ama-server", cls=_Group, see_also=["ama(1)", "gunicorn(1)"],
             examples=[("Set up a server and run it:", "ama-server init --email alice@example.org"),
                       ("Then:", "ama-server serve --bind 127.0.0.1:8080")])
@click.version_option(__version__, prog_name="ama-server")
@click.option("--home", metavar="DIR",
              help="The server's folder (default $AMA_SERVER_HOME, else ~/.ama-server).")
@click.option("--database-url", metavar="URL",
              help="SQLAlchemy URL of the database (default $AMA_DATABASE_URL, else "
                   "sqlite:///HOME/ama.db).")
@click.pass_context
def cli(ctx: click.Context, home: str | None, database_url: str | None) -> None:
    """ama-server: the ama remote, its database and its users.

    Start with 'ama-server init', add a project with 'ama-server project add', then run
    'ama-server serve'. Settings come from the options, the environment
    (AMA_SERVER_HOME, AMA_DATABASE_URL; AMA_MULTIPART_PART_BYTES, the part size of uploads
    in parts; AMA_VERIFY_LEASE_SECONDS, how long a worker's claim on an object it hashes
    holds) and $AMA_SERVER_HOME/server.toml. A setting the server cannot use stops it
    before it starts, with exit status 2.
    """
    ctx.obj = _Settings(home, database_url)


def _settings() -> _Settings:
    settings = click.get_current_context().find_object(_Settings)
    assert settings is not None  # the group's callback made it before any command runs
    return settings


def check_storage(url: str) -> None:
    """Write, read back and delete a probe object in the storage at ``url``; raise the
    backend's error if any step fails."""
    from ama_remote.storage import open_backend

    backend = open_backend(url)
    key = f"ama-server-check/{secrets.token_hex(8)}"
    data = b"ama-server storage check\n"
    try:
        backend.put(key, io.BytesIO(data), len(data))
        with backend.open(key) as f:
            back = f.read()
        if back != data:
            raise AmaError(f"storage {url} returned other bytes than were written",
                           "check the storage service")
    finally:
        backend.delete(key)


@cli.command("init",
             examples=[("Set up a server in ~/.ama-server with SQLite and local storage:",
                        "ama-server init --admin alice --email alice@example.org "
                        "--storage file:///srv/ama/objects"),
                       ("Set up a server on PostgreSQL:",
                        "AMA_DATABASE_URL=postgresql+psycopg://ama@db/ama ama-server init "
                        "--admin alice --email alice@example.org")],
             see_also=["ama-server-serve(1)"],
             exit_codes={0: "the server is ready; the admin's token is on stdout",
                         1: "the server already has users", 2: "bad usage or bad settings",
                         4: "the storage refused access", 5: "the storage is unreachable"})
@click.option("--admin", default="admin", show_default=True, help="The first admin's username.")
@click.option("--email", required=True, help="The first admin's email address.")
@click.option("--storage", metavar="URL",
              help="Check that this storage (file://, s3://, gs://) can be written.")
def init(admin: str, email: str, storage: str | None) -> None:
    """Create the server's folder and database, bring the database up to date, check the
    storage, and add the first admin user. The admin's token is printed once on stdout:
    keep it, it cannot be shown again ('ama-server token issue' makes a new one).

    A server.toml recording the database URL is written to the server's folder if there
    is none.
    """
    settings = _settings()
    config = settings.config()
    # The folder holds the database (users, token hashes) and server.toml (perhaps a
    # database password): its owner's alone, whatever the umask.
    config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not config.config_file.exists():
        _write_config(config)
    if storage:
        check_storage(storage)
        click.echo(f"storage {storage} is writable", err=True)
    _migrate(config)
    service = settings.service(config, initialising=True)
    if service.list_users():
        raise AlreadyInitialised(f"the server at {config.home} already has users",
                                 f"make a token for an existing user with "
                                 f"'ama-server token issue {admin}'")
    service.add_user(admin, email, admin=True, active=True)
    token = service.issue_token(admin)
    click.echo(token)
    click.echo(f"ama-server: created admin {admin}; the token above is shown only once",
               err=True)


def _write_config(config: ServerConfig) -> None:
    import json

    path = config.config_file
    # A PostgreSQL URL may hold a password: the file is readable by its owner only.
    with open(path, "x", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as f:
        f.write("# ama-server settings; see 'ama-server --help'\n")
        f.write(f"database_url = {json.dumps(config.database_url)}\n")


def _migrate(config: ServerConfig) -> None:
    from ama_remote.db import Database

    db = Database(config.database_url)
    try:
        db.migrate()
    finally:
        db.dispose()


@cli.command("migrate",
             examples=[("Upgrade the database after installing a new release:",
                        "ama-server migrate")],
             see_also=["ama-server-init(1)"])
def migrate() -> None:
    """Bring the database's schema up to this release (safe to run twice)."""
    config = _settings().config()
    _migrate(config)
    click.echo("ama-server: the database is up to date", err=True)


@cli.command("serve",
             examples=[("Serve on port 8080 of every interface with 4 workers:",
                        "ama-server serve --bind 0.0.0.0:8080 --workers 4"),
                       ("Serve on a local port, behind a reverse proxy:",
                        "ama-server serve --bind 127.0.0.1:8080")],
             see_also=["ama-server-init(1)", "gunicorn(1)"],
             exit_codes={0: "the server was stopped", 2: "bad usage or bad settings",
                         1: "the server could not start (the port is taken, the database "
                            "cannot be opened)"})
@click.option("--bind", metavar="HOST:PORT", help="Address to listen on (default 127.0.0.1:8080).")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default 2).")
@click.option("--timeout", type=click.IntRange(min=1),
              help="Seconds a worker may spend on one request (default 300).")
@click.option("--access-log", metavar="FILE",
              help="Where to write the access log ('-' for stderr, the default).")
def serve(bind: str | None, workers: int | None, timeout: int | None,
          access_log: str | None) -> None:
    """Run the HTTP API under gunicorn until stopped (SIGTERM or Ctrl-C).

    Run 'ama-server migrate' first after an upgrade. The access log never records query
    strings or the Authorization header.
    """
    config = _settings().config(bind=bind, workers=workers, timeout=timeout,
                                accesslog=access_log)
    # The application's modules are imported here, once, before gunicorn forks its workers:
    # each worker starts with them loaded (half a second of a core each) and opens its own
    # database connections after the fork (see load() below). Importing them opens none.
    import ama_remote.app  # noqa: F401

    _Gunicorn(config).run()


class _Gunicorn:
    """gunicorn's BaseApplication, built lazily so other commands never import gunicorn."""

    def __new__(cls, config: ServerConfig) -> Any:
        from gunicorn.app.base import BaseApplication

        class Application(BaseApplication):  # type: ignore[misc]
            def __init__(self) -> None:
                self.server_config = config
                super().__init__()

            def load_config(self) -> None:
                settings = {
                    "bind": config.bind, "workers": config.workers, "timeout": config.timeout,
                    "accesslog": config.accesslog, "errorlog": config.errorlog,
                    "access_log_format": ACCESS_LOG_FORMAT, "proc_name": "ama-server",
                }
                for key, value in settings.items():
                    if value is not None:
                        self.cfg.set(key, value)

            def load(self) -> Any:
                # In each worker after the fork: database connections are never shared.
                from ama_remote.app import create_app
                from ama_remote.config import open_service

                return create_app(open_service(config), config)

        return Application()


# -- users ----------------------------------------------------------------------------------

@cli.group("user", cls=AmaCommandGroup)
def user() -> None:
    """Add, list, activate and disable users."""


@user.command("add",
              examples=[("Add a user:", "ama-server user add bob --email bob@example.org"),
                        ("Add a server admin:",
                         "ama-server user add carol --email carol@example.org --admin")],
              see_also=["ama-server-token(1)", "ama-server-project(1)"])
@click.argument("username")
@click.option("--email", required=True, help="The user's email address.")
@click.option("--admin", is_flag=True, help="Make the user a server admin (every project).")
@click.option("--inactive", is_flag=True, help="Add the user disabled until activated.")
def user_add(username: str, email: str, admin: bool, inactive: bool) -> None:
    """Add a user. Give them a token with 'ama-server token issue' and a role in a project
    with 'ama-server project grant'."""
    service = _settings().service()
    service.add_user(username, email, admin=admin, active=not inactive)
    service.audit_console("user.add", username,
                          new={"email": email, "admin": admin, "active": not inactive})
    click.echo(f"ama-server: added user {username}", err=True)


@user.command("list",
              examples=[("List every user:", "ama-server user list")],
              see_also=["ama-server-user(1)"])
def user_list() -> None:
    """List users, one per line: username, email, 'active' or 'disabled', and 'admin' or
    'user', separated by tabs."""
    for u in _settings().service().list_users():
        active = "active" if u.get("active", u.get("is_active")) else "disabled"
        role = "admin" if u.get("admin", u.get("is_admin")) else "user"
        click.echo(f"{u['username']}\t{u.get('email', '')}\t{active}\t{role}")


@user.command("activate",
              examples=[("Let a user who signed up in:", "ama-server user activate bob")])
@click.argument("username")
def user_activate(username: str) -> None:
    """Activate a user (one who signed up from a domain not open for signup, or was disabled)."""
    _settings().service().activate_user(username)
    click.echo(f"ama-server: activated user {username}", err=True)


@user.command("disable",
              examples=[("Lock a user out; their tokens stop working at once:",
                         "ama-server user disable bob")])
@click.argument("username")
def user_disable(username: str) -> None:
    """Disable a user: their tokens are refused until they are activated again."""
    _settings().service().disable_user(username)
    click.echo(f"ama-server: disabled user {username}", err=True)


# -- projects -------------------------------------------------------------------------------

@cli.group("project", cls=AmaCommandGroup)
def project() -> None:
    """Add and list projects, and grant roles in them."""


@project.command("add",
                 examples=[("Add a project stored in S3:",
                            "ama-server project add vision --storage s3://ama-data/vision"),
                           ("Add a project stored on this machine:",
                            "ama-server project add scratch --storage file:///srv/ama/scratch")],
                 see_also=["ama-server-project(1)"],
                 exit_codes={0: "success", 1: "the project exists, or its storage is, "
                             "contains or lies inside another project's",
                             2: "bad usage or bad URL",
                             4: "the storage refused access", 5: "the storage is unreachable"})
@click.argument("name")
@click.option("--storage", required=True, metavar="URL",
              help="Where the project's objects live: file:///path, s3://bucket/prefix or "
                   "gs://bucket/prefix.")
@click.option("--no-check", is_flag=True, help="Do not check that the storage can be written.")
def project_add(name: str, storage: str, no_check: bool) -> None:
    """Add a project whose objects live in the storage at URL (checked by writing, reading
    and deleting a probe object first). Each project needs its own storage: a URL that
    is, contains or lies inside another project's is refused.

    S3 is reached with boto3's settings (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    ...). When clients reach the bucket by another address than the server does (the
    server beside it on a private endpoint), AMA_S3_PRESIGN_ENDPOINT_URL names the
    address the URLs it signs for clients point at."""
    if not no_check:
        check_storage(storage)
    service = _settings().service()
    service.create_project(name, storage)
    service.audit_console("project.add", name, project=name, new=storage)
    click.echo(f"ama-server: added project {name} on {storage}", err=True)


@project.command("list",
                 examples=[("List every project on this server:", "ama-server project list"),
                           ("Just the names:", "ama-server project list | cut -f1")],
                 see_also=["ama-server-project(1)", "ama-server-fsck(1)"])
def project_list() -> None:
    """List every project, one per line: name, storage URL and number of members,
    separated by tabs."""
    for p in _settings().service().all_projects():
        click.echo(f"{p['name']}\t{p['storage']}\t{p['members']}")


@project.command("grant",
                 examples=[("Let bob upload to the project vision:",
                            "ama-server project grant vision bob writer")],
                 see_also=["ama-server-user(1)"])
@click.argument("project_name", metavar="PROJECT")
@click.argument("username", metavar="USER")
@click.argument("role", type=click.Choice(ROLES))
def project_grant(project_name: str, username: str, role: str) -> None:
    """Give USER the ROLE in PROJECT: reader (read), writer (also upload, commit, set
    aliases) or admin (also edit classes and grant roles)."""
    _settings().service().grant(project_name, username, role)
    click.echo(f"ama-server: {username} is now {role} of {project_name}", err=True)


# -- tokens ---------------------------------------------------------------------------------

@cli.group("token", cls=AmaCommandGroup)
def token() -> None:
    """Issue tokens."""


@token.command("issue",
               examples=[("Make a token for bob and hand it over safely:",
                          "ama-server token issue bob"),
                         ("Make a token valid for 7 days:",
                          "ama-server token issue bob --days 7")],
               see_also=["ama-server-user(1)"])
@click.argument("username")
@click.option("--days", type=click.IntRange(min=1), help="Days until it expires "
              "(default: the server's token_ttl, 30 days).")
def token_issue(username: str, days: int | None) -> None:
    """Issue a new token for USERNAME and print it on stdout (it is shown only once; the
    user logs in with 'ama auth login --token')."""
    service = _settings().service()
    click.echo(service.issue_token(username, ttl=days * 86400 if days else None))
    service.audit_console("token.issue", username)


# -- checks ---------------------------------------------------------------------------------

@command("fsck", examples=[("Check every project:", "ama-server fsck"),
                           ("Check one project:", "ama-server fsck --project vision"),
                           ("Remove what uploads cut off an hour ago or more left behind:",
                            "ama-server fsck --repair --grace 3600")],
         see_also=["ama-fsck(1)"],
         exit_codes={0: "every version's objects are present and intact, and nothing is "
                        "left to repair",
                     1: "problems were found (listed on stdout)", 2: "bad usage",
                     3: "no such project"})
@click.option("--project", "project_name", metavar="NAME", help="Check only this project.")
@click.option("--repair", is_flag=True,
              help="Remove leftovers of uploads, record unverified objects whose bytes "
                   "are right as held again, and hash pending objects (deleting those whose "
                   "bytes are wrong).")
@click.option("--grace", type=click.IntRange(min=0), metavar="SECONDS",
              help="Leave leftovers younger than this alone: their upload may still run "
                   "(default: a day).")
def fsck(project_name: str | None, repair: bool, grace: int | None) -> None:
    """Check that every object every version names is in its project's storage and hashes to
    its id, that no two projects share a storage, and what uploads cut off (a worker
    killed, a machine stopped) left in storage, such as a pack announced and never
    checked. Every pack is read whole and each of its
    objects hashed. Each problem is one line on stdout, its
    fields separated by tabs: the project; the object's id (or the pack's, the storage URL,
    the leftover's name, or a path no version may hold); the versions that name the object
    or hold the path (or the projects the storage is shared with), separated by commas; the
    problem (missing, corrupt, unverified, pending, storage-full, missing-pack, corrupt-pack,
    unchecked-pack, unsafe-path, shared-storage or leftover); and,
    with --repair, 'repaired' for each one repaired. A pending object is one of an upload in
    parts that the server has not finished hashing (a worker hashing it, or killed
    first): with --repair it is hashed here, unless a worker renewed its claim on it
    within the lease (15 minutes; AMA_VERIFY_LEASE_SECONDS sets another), which is left
    to finish; storage-full, when the storage filled as its parts were joined (kept, for
    its next upload once space is freed); unchecked-pack, a pack checked once and sent
    again by an upload cut off before its check (its objects cannot be read through the
    server meanwhile): with --repair it is checked here.
    """
    from datetime import timedelta

    options = {} if grace is None else {"grace": timedelta(seconds=grace)}
    problems = _settings().service().fsck(project_name, repair=repair, **options)
    for p in problems:
        fields = [p["project"], p["object"], ",".join(p["versions"]), p["problem"]]
        click.echo("\t".join(fields + (["repaired"] if p.get("repaired") else [])))
    left = [p for p in problems if not p.get("repaired")]
    if len(left) < len(problems):
        click.echo(f"ama-server fsck: {len(problems) - len(left)} problem(s) repaired", err=True)
    if left:
        click.echo(f"ama-server fsck: {len(left)} problem(s) found", err=True)
        sys.exit(1)


cli.add_command(fsck)


def _duration(text: str) -> int:
    """Seconds of a duration such as 7d, 12h, 30m, 90s, 2w or 3600."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    value = text.strip().lower()
    number, unit = (value[:-1], value[-1]) if value[-1:] in units else (value, "s")
    if not number.isdigit() or len(number) > 9:
        raise click.BadParameter(f"{text!r} is not a duration such as 7d, 12h, 30m or 3600")
    return int(number) * units[unit]


@command("gc", examples=[("See what a collection would free, changing nothing:",
                          "ama-server gc --dry-run"),
                         ("Free what nothing has referenced for a week:",
                          "ama-server gc --grace 7d")],
         see_also=["ama-server-fsck(1)", "ama-protocol(7)"],
         exit_codes={0: "success (also when there was nothing to free)",
                     1: "a pack to repack is damaged in storage (named on stderr, left as "
                        "it is; everything else was done)",
                     2: "bad usage",
                     4: "a storage refused access", 5: "a storage is unreachable"})
@click.option("--dry-run", is_flag=True, help="Only count what would be freed.")
@click.option("--repack-below", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              metavar="SHARE",
              help="Repack a pack whose referenced objects fill less than this share of "
                   "it (0: never).")
@click.option("--grace", default="7d", show_default=True, metavar="DURATION",
              help="Keep objects uploaded or announced more recently than this (7d, 12h, "
                   "30m, 90s, 2w, or seconds): an upload may still be on its way to its "
                   "commit. Keep it above an hour, how long a download link lasts: a "
                   "retired pack a clone was told to read goes after one grace.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def gc(dry_run: bool, grace: str, repack_below: float, as_json: bool) -> None:
    """Free the stored objects that nothing references.

    An object is referenced while a version of any project on its storage reaches it, or
    while an upload sent it, or negotiated a presigned URL for it, less than the grace
    period ago. Objects of uploads that were never committed, or were abandoned, are
    freed once the grace period has passed. Stored bytes that no project has a record of
    (what an upload cut off may leave) are freed by a run at least the grace period after
    the run that first found them.

    It runs in two phases. The mark, in one database transaction that commits wait for,
    drops the unreferenced objects from their projects and marks them; the sweep then
    deletes an object's bytes only while every project still marks it and none has
    received it again. A commit that names a marked object checks its bytes first: a
    commit never records a version whose objects gc deleted; it fails with the objects
    missing instead, and 'ama upload' sends them again. An upload slower than the grace
    period costs a second upload, never a version. docs/design.md (section 8) gives the
    protocol.

    A pack (small objects uploaded together) is freed whole, like one object: once none of
    the objects in it is referenced and it and they are older than the grace period. The
    mark drops the pack and its objects from their projects and marks each object; the
    sweep deletes the pack only while every project still marks all of them and none has
    received the pack again.

    A pack with referenced objects is kept, unless they fill less than --repack-below of
    it: then its referenced objects are copied, each checked against its id, into a new
    pack, and the old pack is retired, to be freed whole by a run once the grace period
    has passed (a download may have been told to read it). A version committed or an
    upload sent meanwhile that needs one of the other objects leaves the pack as it was.
    A pack damaged in storage is never copied from: it is named on stderr, left for
    'ama-server fsck', and the exit status is 1.

    Prints one line per storage on stdout: its URL, its projects (separated by commas), the
    unreferenced objects and their bytes, the objects and bytes freed, the unreferenced
    packs and their bytes, the packs and bytes freed, the packs to repack and the bytes
    of their unreferenced objects, and the packs repacked and the bytes their retirement
    will free, separated by tabs; and a summary on stderr.
    """
    import json
    from datetime import timedelta

    seconds = _duration(grace)
    report = _settings().service().gc(timedelta(seconds=seconds), dry_run=dry_run,
                                      repack_below=repack_below)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        for row in report["storages"]:
            click.echo("\t".join([row["storage"], ",".join(row["projects"]),
                                   str(row["objects"]), str(row["bytes"]), str(row["freed"]),
                                   str(row["freed_bytes"]), str(row["packs"]),
                                   str(row["pack_bytes"]), str(row["freed_packs"]),
                                   str(row["freed_pack_bytes"]), str(row["repacks"]),
                                   str(row["repack_bytes"]), str(row["repacked"]),
                                   str(row["repacked_bytes"])]))

    def total(name: str) -> int:
        return sum(r[name] for r in report["storages"])

    found, found_bytes = total("objects"), total("bytes")
    packs, pack_bytes = total("packs"), total("pack_bytes")
    repacks, repack_bytes = total("repacks"), total("repack_bytes")
    if dry_run:
        click.echo(f"ama-server gc: would free {found} object(s), {found_bytes} bytes, and "
                   f"{packs} pack(s), {pack_bytes} bytes, and repack {repacks} pack(s) "
                   f"holding {repack_bytes} unreferenced bytes", err=True)
    else:
        click.echo(f"ama-server gc: freed {total('freed')} object(s), {total('freed_bytes')} "
                   f"bytes, and {total('freed_packs')} pack(s), {total('freed_pack_bytes')} "
                   f"bytes ({found} object(s) found unreferenced, {found_bytes} bytes; "
                   f"{packs} pack(s), {pack_bytes} bytes); repacked {total('repacked')} of "
                   f"{repacks} pack(s), whose old packs free {total('repacked_bytes')} bytes "
                   "once the grace period has passed", err=True)
    refused = [problem for row in report["storages"] for problem in row["refused"]]
    for problem in refused:
        click.echo(f"ama-server: error: {problem}", err=True)
    if refused:
        click.echo(f"hint: run 'ama-server fsck' on the projects of "
                   f"{', '.join(r['storage'] for r in report['storages'] if r['refused'])}",
                   err=True)
        raise SystemExit(1)


cli.add_command(gc)


def commands() -> list[tuple[str, click.Command]]:
    """Return every leaf command with its full name ('ama-server user add', …): what the
    man page generator documents."""
    found: list[tuple[str, click.Command]] = []

    def walk(parent: click.Group, prefix: str) -> None:
        for name in sorted(parent.commands):
            sub = parent.commands[name]
            if isinstance(sub, click.Group):
                walk(sub, f"{prefix} {name}")
            else:
                found.append((f"{prefix} {name}", sub))

    walk(cli, "ama-server")
    return found


def main(argv: list[str] | None = None) -> Any:
    """Run ``ama-server``: the console script."""
    missing = [name for name in SERVER_MODULES if not _importable(name)]
    if missing:
        # `pip install amapy` is the client; the server's packages are an extra.
        click.echo(f"ama-server: error: the server's packages are not installed "
                   f"(missing: {', '.join(missing)})", err=True)
        click.echo("hint: pip install 'amapy[server]'", err=True)
        sys.exit(2)
    return cli.main(args=argv, prog_name="ama-server")


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package (google for google.cloud…)
        return False


# What `amapy[server]` adds to the client's install (setup.cfg).
SERVER_MODULES = ("falcon", "gunicorn", "psycopg", "boto3", "google.cloud.storage")


if __name__ == "__main__":
    main()
