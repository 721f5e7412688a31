"""ama update-ref: move or delete a ref, only if it holds the expected old value."""

from __future__ import annotations

import click

from ama.cli.command import Env, command


@command(
    "update-ref",
    examples=[
        ("Create a ref that must not exist yet ('' or 64 zeros as OLD):",
         "ama update-ref refs/heads/next $NEW ''"),
        ("Move main only if nobody else did:", "ama update-ref refs/heads/main $NEW $OLD"),
        ("Delete main if it still holds $OLD:", "ama update-ref -d refs/heads/main $OLD"),
    ],
    see_also=["ama-show-ref(1)", "ama-rev-parse(1)", "ama-format(5)"],
    exit_codes={0: "success", 1: "the ref held another value, or its lock is taken",
                2: "bad usage, a malformed name or id", 3: "no such object or ref"},
)
@click.option("-d", "--delete", is_flag=True, help="Delete the ref instead of moving it.")
@click.option("--no-deref", is_flag=True, help="Update HEAD itself, not the ref it points to.")
@click.argument("name")
@click.argument("values", nargs=-1, metavar="NEW [OLD]")
def command(delete: bool, no_deref: bool, name: str, values: tuple[str, ...]) -> None:
    """Set the ref NAME (HEAD or refs/…) to NEW, under its lock.

    With OLD, the ref must hold OLD (64 zeros or '' for "must not exist yet"), else nothing
    changes and the exit status is 1: compare-and-swap. Without OLD the ref is set whatever
    it holds. NEW must be an object in the asset store.
    """
    from ama.plumbing.refs import ANY, SYMREF_PREFIX

    if len(values) > (1 if delete else 2) or (not delete and not values):
        raise click.UsageError("expected NAME NEW [OLD], or -d NAME [OLD]")
    env = Env()
    store = env.head_refs() if name == "HEAD" else env.store.refs
    target = name
    if name == "HEAD":
        store.check_movable()
    if name == "HEAD" and not no_deref:
        current = store.read("HEAD")
        if current and current.startswith(SYMREF_PREFIX):
            target = current[len(SYMREF_PREFIX):]
            store = env.store.refs
    if delete:
        old = values[0] if values else ANY
        store.delete(target, _old(env, old))
        return
    new = values[0]
    if new.startswith(SYMREF_PREFIX):
        resolved = new
    else:
        resolved = env.resolve(new)
    old = values[1] if len(values) > 1 else ANY
    store.update(target, resolved, _old(env, old))


def _old(env: Env, old: object) -> object:
    from ama.plumbing.refs import ANY, ZERO_ID

    if old is ANY:
        return ANY
    assert isinstance(old, str)
    if old in ("", ZERO_ID):
        return None
    from ama.plumbing.hashing import check_id

    return check_id(old, "old value")
