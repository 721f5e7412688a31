"""ama ls-files: list staged, modified, deleted or untracked files."""

from __future__ import annotations

import click

from ama.cli.command import Env, command, write_records


@command(
    "ls-files",
    examples=[
        ("List what is staged, with ids and sizes:", "ama ls-files -s"),
        ("List files changed since they were staged:", "ama ls-files -m"),
        ("List new files, NUL-terminated:", "ama ls-files -o -z"),
    ],
    see_also=["ama-update-index(1)", "ama-ls-tree(1)"],
)
@click.option("-s", "--stage", "staged", is_flag=True,
              help="Print '<type> <id> <size><TAB><path>' for staged files.")
@click.option("-m", "--modified", is_flag=True,
              help="List staged files whose content changed or that were deleted.")
@click.option("-d", "--deleted", is_flag=True, help="List staged files that were deleted.")
@click.option("-o", "--others", is_flag=True,
              help="List files that are not staged (honouring .amaignore).")
@click.option("-z", "nul", is_flag=True, help="End records with NUL instead of newline.")
def command(staged: bool, modified: bool, deleted: bool, others: bool, nul: bool) -> None:
    """List files of the asset directory, relative to its root, sorted by path.

    With no option, the staged files. -m, -d and -o select other sets and can be combined.
    Checking for modifications re-hashes only files whose stat changed since staging.
    """
    from ama.plumbing.index import Index, changes, path_key

    env = Env()
    asset_dir = env.asset_dir
    index = Index.read(asset_dir.index_path)
    if staged or not (modified or deleted or others):
        entries = sorted(index.entries.values(), key=lambda e: path_key(e.path))
        if staged:
            write_records((f"{e.type} {e.id} {e.size}\t{e.path}" for e in entries), nul)
        else:
            write_records((e.path for e in entries), nul)
        if not (modified or deleted or others):
            return
    chosen: set[str] = set()
    if modified or deleted:
        for change in changes(index, asset_dir.root):
            if change.state == "deleted" or (modified and change.state == "modified"):
                chosen.add(change.entry.path)
    if others:
        link_root = env.store.objects.root
        chosen.update(p for p, _st in asset_dir.walk(link_root=link_root) if p not in index)
    write_records(sorted(chosen, key=path_key), nul)
