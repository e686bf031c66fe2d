"""The output folder of a build: which files are its own, what must stop it (files named like
its shards that it never wrote, outputs that are its inputs), and whether the shards an
interrupted run left are still the ones it recorded.

A build of name N owns: the shards its manifest lists, the shards its state folder records
or plans, and each such shard's record index (``.idx``) and its temporaries; its partial
shards, its side files (manifest, rejected list, unmatched list, hashes sidecar, duplicate
list, state folder) and their temporaries. ``--overwrite`` deletes those and nothing else. A
shard's index goes with it.
"""

from __future__ import annotations

import contextlib
import json
import logging

from tfrec_tools import fs, naming
from tfrec_tools.builder.config import BuildConfig
from tfrec_tools.builder.write import ShardResult, load_results
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.manifest import ShardEntry, manifest_path, read_manifest

log = logging.getLogger(__name__)
PLAN_FILE = "plan.json"  # in the state folder: the plan's fingerprint and shard count


def state_dir(config: BuildConfig) -> str:
    return fs.join(config.out, naming.state_dir_name(config.name))


def save_plan_stamp(state: str, *, fingerprint: str, shards: int) -> None:
    data = {"fingerprint": fingerprint, "shards": shards}
    fs.write_bytes_atomic(fs.join(state, PLAN_FILE), json.dumps(data).encode("utf-8"))


def load_plan_stamp(state: str) -> dict:
    """What the state folder says of its plan; {} when it says nothing readable."""
    try:
        data = json.loads(fs.read_bytes(fs.join(state, PLAN_FILE)))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def existing_outputs(config: BuildConfig) -> list[str]:
    """The files of a build of this name already in ``out`` (what --overwrite replaces)."""
    return _survey(config)[0] if fs.isdir(config.out) else []


def refuse_existing(config: BuildConfig) -> None:
    """Raises ConfigError when ``out`` holds files named like this build's shards that no
    record of it lists (always), or a build of this name that neither --overwrite nor
    --resume says what to do with."""
    ours, unknown = _survey(config) if fs.isdir(config.out) else ([], [])
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: named like a shard of the build {config.name!r}, but no manifest "
            f"or state of that build lists it; move it away (or pass another --name), so that "
            f"{naming.set_glob(config.name)} holds this build's shards alone"
        )
    if ours and config.existing == "error":
        manifest = manifest_path(config.out, config.name)
        shown = manifest if manifest in ours else ours[0]  # the file that says it is a build
        raise ConfigError(
            f"{config.out} already holds a build named {config.name!r} "
            f"({naming.base_name(shown)}, ...); pass --overwrite to replace it or "
            "--resume to finish an interrupted build"
        )


def remove(paths: list[str]) -> None:
    """Remove files and folders; a shard's record index with the shard."""
    for path in paths:
        (fs.rmtree if fs.isdir(path) else fs.remove)(path)
        index = naming.index_name(path)
        if path.endswith(naming.SHARD_SUFFIX) and fs.exists(index):
            fs.remove(index)


def _survey(config: BuildConfig) -> tuple[list[str], list[str]]:
    """(the files of this build in ``out``, the shard-like files of its name nothing lists).
    The index of a shard that is there is left out: it goes with its shard (``remove``)."""
    name = config.name
    side = {naming.rejected_name(name), naming.unmatched_name(name), naming.state_dir_name(name)}
    side |= {naming.hashes_name(name), naming.duplicates_name(name)}
    side.add(naming.base_name(manifest_path(config.out, name)))
    listed = _listed_shards(config)
    entries = fs.listdir(config.out)
    present, ours, unknown = set(entries), [], []
    for entry in entries:
        shard = indexed_shard(entry)
        if shard in present and entry == naming.index_name(shard):
            continue
        parsed = naming.parse_shard_name(shard or entry)
        shard_like = parsed is not None and parsed[0] == name
        own_side = entry in side or any(naming.is_temp_of(entry, s) for s in side)
        if own_side or naming.is_partial_of(entry, name) or (shard_like and listed(shard or entry)):
            ours.append(fs.join(config.out, entry))
        elif shard_like:
            unknown.append(fs.join(config.out, entry))
    return ours, unknown


def indexed_shard(entry: str) -> str | None:
    """The shard name whose record index (or a temporary of it) ``entry`` is, else None."""
    suffix = naming.SHARD_SUFFIX + naming.INDEX_SUFFIX
    head, found, _ = entry.partition(suffix)
    index = head + suffix
    if found and (entry == index or naming.is_temp_of(entry, index)):
        return head + naming.SHARD_SUFFIX
    return None


def _listed_shards(config: BuildConfig):
    """Whether a shard file name is one this build's manifest lists, or its state folder
    records or plans (a shard renamed just before a kill has no record yet)."""
    files: set[str] = set()
    path = manifest_path(config.out, config.name)
    # a damaged manifest lists nothing: its shards then stop --overwrite, named
    with contextlib.suppress(ShardError):
        files |= {s.file for s in read_manifest(path).shards} if fs.exists(path) else set()
    state, stems = state_dir(config), set()
    if fs.isdir(state):
        files |= {r.entry.file for r in load_results(state).values()}
        count = load_plan_stamp(state).get("shards", 0)
        stems = {naming.shard_stem(config.name, i, count) for i in range(count)}
    return lambda entry: entry in files or entry.rsplit("-", 1)[0] in stems


# --- outputs that are inputs (local paths; like cp's "are the same file") -----------------


def refuse_inputs_as_outputs(config: BuildConfig) -> None:
    """Raises ConfigError when ``out`` is the image folder, or an output file of the build is
    its labels CSV or its --vocab-from manifest."""
    # a size of a pass is built in out/<size>: its --out is the folder above
    out = naming.folder_name(config.out) if config.sizes else config.out
    if fs.same_file(out, config.images) or fs.same_file(config.out, config.images):
        raise ConfigError(
            f"--out {out} and IMAGES {config.images} are the same folder; the shards "
            "go beside the images, not among them: pass another --out"
        )
    name = config.name
    outputs = [manifest_path(config.out, name)]
    sides = (naming.rejected_name, naming.unmatched_name, naming.hashes_name)
    outputs += [fs.join(config.out, side(name)) for side in (*sides, naming.duplicates_name)]
    for option, source in (("LABELS_CSV", config.labels_csv), ("--vocab-from", config.vocab_from)):
        for output in outputs:
            if source is not None and fs.same_file(output, source):
                raise ConfigError(
                    f"{output} (written by the build {name!r}) and {option} {source} are the "
                    "same file; pass another --out or --name"
                )


# --- what --resume reuses --------------------------------------------------------------------


def verified(out: str, done: dict[int, ShardResult]) -> dict[int, ShardResult]:
    """The results whose shard file is exactly as recorded; each other one is logged (and
    left out, so that it is written again), as is one recorded before builds hashed images."""
    kept = {}
    for index in sorted(done):
        problem = shard_problem(out, done[index].entry)
        if done[index].hashes is None:
            problem = "recorded without image hashes"
        if problem:
            log.warning("%s: %s; writing it again", fs.join(out, done[index].entry.file), problem)
        else:
            kept[index] = done[index]
    return kept


def shard_problem(out: str, entry: ShardEntry) -> str | None:
    """How the shard file of ``entry`` differs from its record (size, then sha256), or its
    record index does (an entry from before indexes records none), or None."""
    path = fs.join(out, entry.file)
    if not fs.exists(path):
        return "missing"
    size = fs.size(path)
    if size != entry.bytes:
        return f"{size} bytes where {entry.bytes} were written"
    if fs.sha256(path) != entry.sha256:
        return "its sha256 differs from the one recorded when it was written"
    index = fs.join(out, entry.index_file) if entry.index_file else None
    if index and not fs.exists(index):
        return f"its index {entry.index_file} is missing"
    if index and fs.sha256(index) != entry.index_sha256:
        return f"its index {entry.index_file} differs from the one recorded when it was written"
    return None
