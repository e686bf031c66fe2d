"""`tfrec index`: the record index (``FILE.idx``) of shards that have none, e.g. foreign ones."""

from __future__ import annotations

from collections import Counter

import click


@click.command("index")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--overwrite", is_flag=True, help="Write every index again (default: check existing ones)."
)
def index_command(paths, overwrite) -> None:
    """Write the record index of each shard (files, folders or globs; local or gs://) that
    has none: FILE.idx beside FILE, one 'offset length' line per record, the file DALI's
    fn.readers.tfrecord(index_path=...) and the tfrecord package read. An index already there
    is checked against its shard (exit 1 when it does not match) or, with --overwrite,
    written again.

    Example: tfrec index shards/
    """
    from tqdm import tqdm

    from tfrec_tools.index import ensure_index

    files = _shard_files(paths)
    done: Counter = Counter()
    for shard in tqdm(files, unit="file", disable=None if len(files) > 1 else True):
        done[ensure_index(shard, overwrite=overwrite)] += 1
    counts = [f"{_indexes(done[k])} {k}" for k in ("written", "rewritten", "checked") if done[k]]
    click.echo(f"{len(files)} shard{'s' if len(files) > 1 else ''}: {', '.join(counts)}")


def _indexes(count: int) -> str:
    return f"{count} index{'es' if count > 1 else ''}"


def _shard_files(paths: tuple[str, ...]) -> list[str]:
    """The shards named: a folder gives every shard set it holds (train and test alike)."""
    from tfrec_tools.shard_files import is_folder, resolve_files, shard_sets
    from tfrec_tools.urls import check_url

    files = []
    for path in paths:
        check_url(path, "PATHS")
        sets = shard_sets(path) if is_folder(path) else []
        files += [f for s in sets for f in s.files] or resolve_files(path, check=False)
    return sorted(set(files))
