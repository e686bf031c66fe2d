"""`build()`: plan, lock and guard the output folder, write the shards, then the manifest and
the list of rejected rows. A state folder makes an interrupted build resumable; ``--resume``
reuses only the shards whose size and sha256 are those recorded when they were written."""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from tfrec_tools import __version__, fs, naming
from tfrec_tools.builder.config import BuildConfig, sized_configs
from tfrec_tools.builder.hashes import DuplicateReport, report_duplicates, write_hashes
from tfrec_tools.builder.lock import build_lock
from tfrec_tools.builder.output import (
    existing_outputs,
    load_plan_stamp,
    refuse_existing,
    refuse_inputs_as_outputs,
    remove,
    save_plan_stamp,
    shard_problem,
    state_dir,
    verified,
)
from tfrec_tools.builder.plan import NothingToBuild, Plan, make_plan
from tfrec_tools.builder.rows import Rejection
from tfrec_tools.builder.table import read_table
from tfrec_tools.builder.walk import walk_images
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
from tfrec_tools.spreadsheet import text_cell

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
    duplicates: DuplicateReport | None = None  # None: a finished build resumed (not checked)
    # a pass of several sizes: each size's report, in the order of ``sizes`` (the fields
    # above are the first size's); () for a build of one size
    sizes: tuple[BuildReport, ...] = ()

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
        config: what to build, from where, into which folder; with ``sizes``, one build per
            size in ``out/<size>``, the same records in each (``sized_configs``).
        on_plan: called with the plan before anything is written (``tfrec build`` prints it).
        progress: called with the number of images just written, a few at a time. The calls
            add up to the images of the plan (``sum(len(s.rows) for s in plan.shards)``): a
            resumed build first reports those its interrupted run wrote. Not called by the beam
            runner. Default None: nothing is reported and no bar is drawn (``build`` used to
            draw a tqdm bar itself; ``tfrec build`` still does, and
            ``progress=tqdm(unit="img").update`` brings one back).

    Returns:
        What was written, for the caller to print and to decide on (``num_rejected``); each
        size's report in ``sizes`` for a pass of several sizes.

    Raises:
        ConfigError: options contradict each other, the data, or what ``out`` holds; an
            output would replace an input; another build of this name is writing to ``out``.
        DataError: the image folder or CSV cannot be used, or not one image could be stored.
        ResourceError: out of memory or disk space (``--resume`` then finishes the build).
    """
    with WorkerPool(config.workers if config.runner == "local" else 1) as pool:
        plan = _plan_or_reject(config)
        plans = tuple(replace(plan, config=c) for c in sized_configs(plan.config))
        for sized in plans:
            refuse_inputs_as_outputs(sized.config)
        if config.runner == "beam":
            from tfrec_tools.builder.beam import require_beam

            require_beam(config.beam_options)  # before the output folder is touched
        with _locked([p.config for p in plans]):
            for sized in plans:
                refuse_existing(sized.config)
            if on_plan is not None:
                on_plan(plan)
            states = [state_dir(p.config) for p in plans]
            dones = [_prepare_output(p, state) for p, state in zip(plans, states)]
            todo = [i for i, done in enumerate(dones) if done is not None]  # None: finished
            if todo:
                picked = [[plans[i] for i in todo], [dones[i] for i in todo]]
                _write_shards(*picked, [states[i] for i in todo], pool, progress)
            reports = _finish_all(plans, states, dones)
    return replace(reports[0], sizes=reports) if len(reports) > 1 else reports[0]


@contextlib.contextmanager
def _locked(configs: list[BuildConfig]):
    """The lock of every build of a pass (one per size folder), in the order given."""
    with contextlib.ExitStack() as locks:
        for config in configs:
            locks.enter_context(build_lock(config.out, config.name))
        yield


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
        configs = list(sized_configs(err.config))
        for config in configs:
            refuse_inputs_as_outputs(config)
        with _locked(configs):
            existing = [path for config in configs for path in existing_outputs(config)]
            if existing and err.config.existing != "overwrite":
                raise  # the rejected list of the finished build there must stay as it is
            remove(existing)  # --overwrite: the old build goes; only the new rejected list stays
            lists = ", ".join(_write_rejected(config, err.rejected) for config in configs)
            raise DataError(f"{err}; reasons in {lists}") from err


def _write_shards(
    plans: list[Plan],
    dones: list[dict[int, ShardResult]],
    states: list[str],
    pool: WorkerPool,
    progress: Progress | None,
) -> None:
    """Write the shards not done at every size yet (a shard is written at all sizes at once),
    recording each size's result in its state folder."""
    config, shards = plans[0].config, plans[0].shards
    todo = [s for s in shards if any(s.index not in done for done in dones)]
    jobs = tuple(_job(plan) for plan in plans)
    if config.runner == "beam":
        from tfrec_tools.builder.beam import beam_args, write_shards_beam

        write_shards_beam(todo, jobs, states, beam_args(config.beam_options, config.workers))
        return
    progress = progress or (lambda images: None)
    reused = sum(len(s.rows) for s in shards if all(s.index in done for done in dones))
    if reused:
        progress(reused)
    for results in pool.write(todo, jobs, progress):
        for state, result in zip(states, results):
            save_result(state, result)


def _make_plan(config: BuildConfig) -> Plan:
    if not fs.isdir(config.images):
        raise DataError(f"{config.images}: image folder not found")
    table = read_table(config.labels_csv) if config.labels_csv else None
    walk = walk_images(config.images)
    size = None if fs.is_remote(config.images) else fs.size
    return make_plan(config, walk.files, table, size, _vocabularies(config), walk.skipped)


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


# --- the output folder: start afresh, or resume ----------------------------------------------


def _prepare_output(plan: Plan, state: str) -> dict[int, ShardResult] | None:
    """Shards already done (by index), or None when a resumed build had finished."""
    config = plan.config
    existing = existing_outputs(config)
    if config.existing == "resume" and existing:
        return _resume(plan, state, existing)
    return _start(plan, state, existing)


def _start(plan: Plan, state: str, existing: list[str]) -> dict[int, ShardResult]:
    """Remove the build's old files and record the plan in a fresh state folder."""
    remove(existing)
    fs.makedirs(state)
    save_plan_stamp(state, fingerprint=plan.fingerprint, shards=len(plan.shards))
    return {}


def _resume(plan: Plan, state: str, existing: list[str]) -> dict[int, ShardResult] | None:
    """The shards of the interrupted run that are exactly as it recorded them; every other
    file of the build (partials of dead processes, damaged shards) is removed."""
    config = plan.config
    stamp = load_plan_stamp(state) if fs.exists(state) else {}
    if not fs.exists(state) or (not stamp and _finished_here(plan)):
        _check_finished(plan)  # a state folder left half-removed by a kill goes with it
        if fs.exists(state):
            fs.rmtree(state)
        return None
    if not stamp:  # killed before its plan was recorded: none of its shards can be trusted
        log.warning("%s records no plan: writing every shard again", state)
        return _start(plan, state, existing)
    if stamp.get("fingerprint") != plan.fingerprint:
        raise ConfigError(_changed(config, "started"))
    done = verified(config.out, load_results(state))
    keep = {fs.join(config.out, r.entry.file) for r in done.values()} | {state}
    remove([path for path in existing if path not in keep])
    remove([fs.join(state, e) for e in fs.listdir(state) if e.endswith(naming.TEMP_SUFFIX)])
    log.info("resuming: %d of %d shards already written", len(done), len(plan.shards))
    return done


def _finished_here(plan: Plan) -> bool:
    """Whether ``out`` holds this plan's manifest (the build got as far as writing it)."""
    path = manifest_path(plan.config.out, plan.config.name)
    return fs.exists(path) and read_manifest(path).plan_fingerprint == plan.fingerprint


def _check_finished(plan: Plan) -> None:
    """Raises ConfigError unless ``out`` holds this plan's finished build, every shard as its
    manifest lists it."""
    config = plan.config
    path = manifest_path(config.out, config.name)
    if not fs.exists(path) or read_manifest(path).plan_fingerprint != plan.fingerprint:
        raise ConfigError(_changed(config, "finished"))
    for entry in read_manifest(path).shards:
        problem = shard_problem(config.out, entry)
        if problem:
            raise ConfigError(
                f"{fs.join(config.out, entry.file)}: {problem}; the build had finished, so "
                "nothing records what to write again: rebuild it with --overwrite"
            )


def _changed(config: BuildConfig, when: str) -> str:
    return (
        f"the build named {config.name!r} in {config.out} was {when} with other inputs or "
        "options, so it cannot be resumed; pass --overwrite to start over"
    )


# --- the end: rejected list, unmatched list, manifest -------------------------------------


def _finish_all(
    plans: tuple[Plan, ...], states: list[str], dones: list[dict[int, ShardResult] | None]
) -> tuple[BuildReport, ...]:
    """Each size's ``_finish`` (or the report of its manifest, when it had finished); when no
    image could be stored (then at no size), the first size's DataError after all are done."""
    reports, failed = [], None
    for plan, state, done in zip(plans, states, dones):
        try:
            reports.append(
                _report_from_manifest(plan)
                if done is None
                else _finish(plan, state, reused=len(done))
            )
        except DataError as err:
            failed = failed or err
    if failed:
        raise failed
    return tuple(reports)


def _finish(plan: Plan, state: str, *, reused: int) -> BuildReport:
    """The rejected list, the unmatched list and the manifest; then the state folder goes.

    Raises:
        DataError: not one image could be stored (the build leaves its rejected list alone).
    """
    config = plan.config
    results = _results(plan, state)
    rejected = sorted(
        plan.rejected + tuple(r for res in results for r in res.rejected),
        key=lambda r: (r.row or 0, r.path, r.image_id),
    )
    rejected_path = _write_rejected(config, rejected)
    if not any(r.entry.count for r in results):  # empty shards must not pass for a build
        remove([fs.join(config.out, r.entry.file) for r in results] + [state])
        raise DataError(
            f"{config.images}: no image could be stored (all {len(rejected)} rows rejected); "
            f"reasons in {rejected_path}"
        )
    unmatched_path = None
    if plan.unmatched:
        unmatched_path = fs.join(config.out, naming.unmatched_name(config.name))
        fs.write_bytes_atomic(unmatched_path, ("\n".join(plan.unmatched) + "\n").encode("utf-8"))
    reasons = dict(sorted(Counter(r.reason for r in rejected).items()))
    entries = tuple(r.entry for r in results)
    hashes = write_hashes(config.out, config.name, results)
    duplicates = report_duplicates(config.out, config.name, results)  # before the manifest:
    manifest = replace(  # once it is written, the build is finished and --resume does nothing
        _manifest(plan, entries, reasons), hashes_file=hashes[0], hashes_sha256=hashes[1]
    )
    path = manifest_path(config.out, config.name)
    write_manifest(manifest, path)
    fs.rmtree(state)
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
        duplicates=duplicates,
    )


def _results(plan: Plan, state: str) -> list[ShardResult]:
    """The result of every shard of the plan, in index order."""
    results = load_results(state)
    missing = sorted({s.index for s in plan.shards} - set(results))
    if missing:
        runner = plan.config.runner
        raise ShardError(f"the {runner} runner finished without writing shard {missing[0]}")
    return [results[s.index] for s in plan.shards]  # not a stale result of another plan


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
        cells = [text_cell(text) for text in (r.image_id, r.path, r.reason, r.detail)]
        writer.writerow(["" if r.row is None else r.row, *cells])
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
