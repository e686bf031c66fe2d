"""`build()`: plan, guard the output folder, write the shards, then the manifest and the list
of rejected rows. A state folder makes an interrupted build resumable."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tfrec_tools import __version__, fs, naming
from tfrec_tools.builder.config import BuildConfig
from tfrec_tools.builder.plan import NothingToBuild, Plan, make_plan
from tfrec_tools.builder.rows import Rejection
from tfrec_tools.builder.table import read_table
from tfrec_tools.builder.write import (
    Progress,
    ShardJob,
    ShardResult,
    WorkerPool,
    load_results,
    save_result,
)
from tfrec_tools.errors import ConfigError, DataError, ShardError
from tfrec_tools.manifest import (
    Manifest,
    ShardEntry,
    manifest_path,
    read_manifest,
    write_manifest,
)

log = logging.getLogger(__name__)
REJECTED_COLUMNS = ("row", "image_id", "path", "reason", "detail")


@dataclass(frozen=True)
class BuildReport:
    """What a build did; the CLI prints it and decides the exit code from it."""

    manifest_path: str
    rejected_path: str
    unmatched_path: str | None
    rows: int
    records: int
    shards: int
    folds: int
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> rows
    unmatched: int = 0
    reused_shards: int = 0  # shards an earlier, interrupted run had finished (--resume)

    @property
    def num_rejected(self) -> int:
        return sum(self.rejected.values())


def build(
    config: BuildConfig,
    *,
    on_plan: Callable[[Plan], None] | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """Build shards, manifest and rejected list in ``config.out``.

    Args:
        config: what to build, from where, into which folder.
        on_plan: called with the plan before anything is written (``tfrec build`` prints it).
        progress: called with the number of images just written, a few at a time. The calls
            add up to the images of the plan (``sum(len(s.rows) for s in plan.shards)``): a
            resumed build first reports those its interrupted run wrote. Not called by the beam
            runner. Default None: nothing is reported and no bar is drawn (``build`` used to
            draw a tqdm bar itself; ``tfrec build`` still does, and
            ``progress=tqdm(unit="img").update`` brings one back).

    Returns:
        What was written, for the caller to print and to decide on (``num_rejected``).

    Raises:
        ConfigError: options contradict each other, the data, or what ``out`` holds.
        DataError: the image folder or CSV cannot be used.
    """
    with WorkerPool(config.workers if config.runner == "local" else 1) as pool:
        plan = _plan_or_reject(config)
        config = plan.config  # resolved: name, folds and label source decided
        _refuse_existing(config)
        if on_plan is not None:
            on_plan(plan)
        if config.runner == "beam":
            from tfrec_tools.builder.beam import require_beam

            require_beam()  # before the output folder is touched
        fs.makedirs(config.out)
        state = _state_dir(config)
        done = _prepare_output(plan, state)
        if done is None:  # --resume of a build that had already finished
            return _report_from_manifest(plan)
        _write_shards(plan, done, state, pool, progress or (lambda images: None))
    results = load_results(state)
    missing = sorted({s.index for s in plan.shards} - set(results))
    if missing:
        raise ShardError(f"the {config.runner} runner finished without writing shard {missing[0]}")
    report = _finish(plan, [results[i] for i in sorted(results)], reused=len(done))
    fs.rmtree(state)
    return report


def plan_build(config: BuildConfig) -> Plan:
    """The plan of a build, without writing anything or decoding any image (``--dry-run``).

    Raises:
        ConfigError, DataError: as ``build`` does while planning.
    """
    return _make_plan(config)


def _plan_or_reject(config: BuildConfig) -> Plan:
    """The plan; when no row survives, the rejected list (unless it would replace the list
    of a finished build that --overwrite does not replace) and a DataError."""
    try:
        return _make_plan(config)
    except NothingToBuild as err:
        config = err.config
        existing = existing_outputs(config)
        if existing and config.existing != "overwrite":
            raise  # the rejected list of the finished build there must stay as it is
        _remove(existing)  # --overwrite: the old build goes; only the new rejected list stays
        raise DataError(f"{err}; reasons in {_write_rejected(config, err.rejected)}") from err


def _write_shards(
    plan: Plan, done: dict[int, ShardResult], state: str, pool: WorkerPool, progress: Progress
) -> None:
    """Write the shards not ``done`` yet, recording each result in the state folder."""
    config = plan.config
    todo = [s for s in plan.shards if s.index not in done]
    if config.runner == "beam":
        from tfrec_tools.builder.beam import beam_args, write_shards_beam

        write_shards_beam(todo, _job(plan), state, beam_args(config.beam_options, config.workers))
        return
    reused = sum(len(s.rows) for s in plan.shards if s.index in done)
    if reused:
        progress(reused)
    for result in pool.write(todo, _job(plan), progress):
        save_result(state, result)


def _make_plan(config: BuildConfig) -> Plan:
    if not fs.isdir(config.images):
        raise DataError(f"{config.images}: image folder not found")
    table = read_table(config.labels_csv) if config.labels_csv else None
    files = list(fs.walk_files(config.images))
    size = None if fs.is_remote(config.images) else fs.size
    return make_plan(config, files, table, size, _vocabularies(config))


def _vocabularies(config: BuildConfig) -> dict[str, tuple[str, ...]]:
    """The categorical vocabularies, class lists and tag lists of the manifest named by
    --vocab-from."""
    if config.vocab_from is None:
        return {}
    manifest = read_manifest(config.vocab_from)
    labels = {c.name: c.classes for c in manifest.labels if c.kind != "regression"}
    return labels | {c.name: c.vocabulary for c in manifest.features if c.kind == "categorical"}


def _job(plan: Plan) -> ShardJob:
    config = plan.config
    return ShardJob(
        out=config.out,
        name=config.name,
        num_shards=len(plan.shards),
        schema=plan.schema,
        labels=plan.labels,
        value_keys=tuple(s.name for s in plan.labels + plan.columns),
        image=config.image,
    )


# --- the output folder: refuse to mix, overwrite, or resume -------------------------------


def existing_outputs(config: BuildConfig) -> list[str]:
    """The files of a build of this name already in ``out`` (what --overwrite replaces)."""
    return _outputs(config) if fs.isdir(config.out) else []


def _state_dir(config: BuildConfig) -> str:
    return fs.join(config.out, naming.state_dir_name(config.name))


def _outputs(config: BuildConfig) -> list[str]:
    """Every file in ``out`` that belongs to a build named ``config.name``."""
    name = config.name
    own = {naming.rejected_name(name), naming.unmatched_name(name), naming.state_dir_name(name)}
    own.add(naming.base_name(manifest_path(config.out, name)))
    found = []
    for entry in fs.listdir(config.out):
        parsed = naming.parse_shard_name(entry)
        partial = naming.is_partial_of(entry, config.name)
        if entry in own or partial or (parsed and parsed[0] == config.name):
            found.append(fs.join(config.out, entry))
    return found


def _prepare_output(plan: Plan, state: str) -> dict[int, ShardResult] | None:
    """Shards already done (by index), or None when a resumed build had finished."""
    config = plan.config
    existing = _outputs(config)
    _refuse_existing(config)
    if config.existing == "resume" and existing:
        return _resume(plan, state, existing)
    _remove(existing)
    fs.makedirs(state)
    fs.write_bytes_atomic(fs.join(state, "plan.json"), _plan_stamp(plan))
    return {}


def _refuse_existing(config: BuildConfig) -> None:
    """Raises ConfigError when ``out`` holds a build of this name and neither --overwrite nor
    --resume says what to do with it."""
    existing = existing_outputs(config)
    if existing and config.existing == "error":
        raise ConfigError(
            f"{config.out} already holds a build named {config.name!r} "
            f"({naming.base_name(existing[0])}, ...); pass --overwrite to replace it or "
            "--resume to finish an interrupted build"
        )


def _remove(paths: list[str]) -> None:
    for path in paths:
        (fs.rmtree if fs.isdir(path) else fs.remove)(path)


def _plan_stamp(plan: Plan) -> bytes:
    return json.dumps({"fingerprint": plan.fingerprint}).encode("utf-8")


def _resume(plan: Plan, state: str, existing: list[str]) -> dict[int, ShardResult] | None:
    config = plan.config
    if not fs.exists(state):
        path = manifest_path(config.out, config.name)
        if fs.exists(path) and read_manifest(path).plan_fingerprint == plan.fingerprint:
            return None
        raise ConfigError(_changed(config, "finished"))
    if fs.read_bytes(fs.join(state, "plan.json")) != _plan_stamp(plan):
        raise ConfigError(_changed(config, "started"))
    done = load_results(state)
    keep = {fs.join(config.out, r.entry.file) for r in done.values()} | {state}
    for path in existing:
        if path not in keep:
            fs.remove(path)
    log.info("resuming: %d of %d shards already written", len(done), len(plan.shards))
    return done


def _changed(config: BuildConfig, when: str) -> str:
    return (
        f"the build named {config.name!r} in {config.out} was {when} with other inputs or "
        "options, so it cannot be resumed; pass --overwrite to start over"
    )


# --- the end: rejected list, unmatched list, manifest -------------------------------------


def _finish(plan: Plan, results: list[ShardResult], *, reused: int) -> BuildReport:
    config = plan.config
    rejected = sorted(
        plan.rejected + tuple(r for res in results for r in res.rejected),
        key=lambda r: (r.row or 0, r.path, r.image_id),
    )
    rejected_path = _write_rejected(config, rejected)
    unmatched_path = None
    if plan.unmatched:
        unmatched_path = fs.join(config.out, naming.unmatched_name(config.name))
        fs.write_bytes_atomic(unmatched_path, ("\n".join(plan.unmatched) + "\n").encode("utf-8"))
    reasons = dict(sorted(Counter(r.reason for r in rejected).items()))
    entries = tuple(r.entry for r in results)
    manifest = _manifest(plan, entries, reasons)
    path = manifest_path(config.out, config.name)
    write_manifest(manifest, path)
    return BuildReport(
        path,
        rejected_path,
        unmatched_path,
        rows=plan.num_rows,
        records=manifest.totals["records"],
        shards=len(entries),
        folds=config.folds,
        rejected=reasons,
        unmatched=len(plan.unmatched),
        reused_shards=reused,
    )


def _write_rejected(config: BuildConfig, rejected: list[Rejection]) -> str:
    fs.makedirs(config.out)
    path = fs.join(config.out, naming.rejected_name(config.name))
    fs.write_bytes_atomic(path, _rejected_csv(rejected))
    return path


def _rejected_csv(rejected: list[Rejection]) -> bytes:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REJECTED_COLUMNS)
    for r in rejected:
        writer.writerow(["" if r.row is None else r.row, r.image_id, r.path, r.reason, r.detail])
    return buffer.getvalue().encode("utf-8")


def _manifest(plan: Plan, entries: tuple[ShardEntry, ...], reasons: dict[str, int]) -> Manifest:
    config = plan.config
    image = config.image
    totals = {
        "rows": plan.num_rows,
        "records": sum(e.count for e in entries),
        "bytes": sum(e.bytes for e in entries),
        "rejected": sum(reasons.values()),
        "rejected_by_reason": reasons,
        "unmatched_images": len(plan.unmatched),
    }
    return Manifest(
        name=config.name,
        tool_version=__version__,
        options=config.to_json(),
        schema=plan.schema,
        image={
            "size": list(image.size) if image.size else None,
            "fit": image.fit,
            "format": "jpeg",
            "channels": 3,
            "quality": image.quality,
        },
        labels=plan.labels,
        features=plan.columns,
        group_col=config.group_col,
        folds=config.folds,
        shards=entries,
        totals=totals,
        plan_fingerprint=plan.fingerprint,
    )


def _report_from_manifest(plan: Plan) -> BuildReport:
    config = plan.config
    manifest = read_manifest(manifest_path(config.out, config.name))
    unmatched = fs.join(config.out, naming.unmatched_name(config.name))
    return BuildReport(
        manifest_path(config.out, config.name),
        fs.join(config.out, naming.rejected_name(config.name)),
        unmatched if fs.exists(unmatched) else None,
        rows=manifest.totals["rows"],
        records=manifest.totals["records"],
        shards=len(manifest.shards),
        folds=manifest.folds,
        rejected=manifest.totals["rejected_by_reason"],
        unmatched=manifest.totals["unmatched_images"],
        reused_shards=len(manifest.shards),
    )
