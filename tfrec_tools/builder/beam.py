"""Writing shards on Apache Beam: the plan is made once on the driver, each shard spec is one
Beam element, and a worker writes it (at every size of a pass) with the same ``write_sizes`` as
the local pool, straight to the output (``gs://`` through ``tf.io.gfile``). Results land in each
size's state folder, where the driver (and ``--resume``) read them back."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, replace

from tfrec_tools import fs, naming
from tfrec_tools.builder.plan import ShardSpec
from tfrec_tools.builder.rows import RowSpec
from tfrec_tools.builder.write import ShardJob, ShardResult, save_result, write_sizes
from tfrec_tools.errors import ConfigError

INSTALL_HINT = "pip install 'tfrec-tools[beam]'"
DASK_INSTALL_HINT = "pip install 'tfrec-tools[dask]'"
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
# The runners `--beam-option runner=` accepts by name (any case, "Runner" optional, as Beam
# does), with what Beam is handed: Beam 2.77 knows all but the DaskRunner by its name.
RUNNERS = {
    "dask": DASK_RUNNER,
    "dataflow": "DataflowRunner",
    "direct": "DirectRunner",
    "flink": "FlinkRunner",
    "portable": "PortableRunner",
    "prism": "PrismRunner",
    "spark": "SparkRunner",
}
# Beam's DaskRunner puts up to 128 elements in one Dask partition, run by one worker, and its
# Reshuffle does nothing: one shard per partition lets every worker write shards at once.
_DASK_PARTITIONS = ("--dask_npartitions", "--dask_partition_size")
_ONE_SHARD_PER_PARTITION = "--dask_partition_size=1"


def beam_args(options: Sequence[str], workers: int) -> list[str]:
    """Beam pipeline arguments from ``KEY=VALUE`` (or ``--key=value``) options; without a
    runner, Beam's local DirectRunner on ``workers`` processes.

    Raises:
        ConfigError: the runner is not one of ``RUNNERS`` nor a class path.
    """
    args = [_runner_arg(o) for o in (o if o.startswith("--") else f"--{o}" for o in options)]
    if not any(a.startswith("--runner=") for a in args):
        args += [
            "--runner=DirectRunner",
            "--direct_running_mode=multi_processing",
            f"--direct_num_workers={workers}",
        ]
    elif _on_dask(args) and not any(a.startswith(_DASK_PARTITIONS) for a in args):
        args.append(_ONE_SHARD_PER_PARTITION)
    return args


def require_beam(options: Sequence[str] = ()) -> None:
    """Check that the pipeline of ``options`` (``--beam-option``s) can run here.

    Raises:
        ConfigError: Apache Beam is not installed; the runner is unknown; the DaskRunner is
            asked for without dask and distributed installed.
    """
    try:
        import apache_beam  # noqa: F401
    except ImportError as err:
        raise ConfigError(f"--runner beam needs Apache Beam: {INSTALL_HINT}") from err
    if _on_dask(beam_args(options, 1)):
        try:
            import dask  # noqa: F401
            import distributed  # noqa: F401
        except ImportError as err:
            raise ConfigError(
                f"--beam-option runner=DaskRunner needs dask and distributed: {DASK_INSTALL_HINT}"
            ) from err


def _on_dask(args: Sequence[str]) -> bool:
    return f"--runner={DASK_RUNNER}" in args


def _runner_arg(arg: str) -> str:
    """``--runner=NAME`` with NAME as Beam takes it; other arguments as they are."""
    if not arg.startswith("--runner="):
        return arg
    name = arg.removeprefix("--runner=")
    if "." in name:
        return arg
    short = name.lower().removesuffix("runner")
    if short not in RUNNERS:
        known = ", ".join(sorted(f"{n.capitalize()}Runner" for n in RUNNERS))
        raise ConfigError(
            f"`--beam-option runner` must be one of {known}, or a runner's class path "
            f"(e.g. {DASK_RUNNER}). Received: runner={name}"
        )
    return f"--runner={RUNNERS[short]}"


def write_shards_beam(
    specs: Sequence[ShardSpec],
    jobs: Sequence[ShardJob],
    states: Sequence[str],
    args: Sequence[str],
) -> None:
    """Write ``specs`` in a Beam pipeline run with ``args``, at each job's size; each result
    goes to the state folder of its job (``states``, in the same order).

    Raises:
        ConfigError: Apache Beam is not installed; the DaskRunner cannot reach its scheduler.
    """
    require_beam()
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    # Workers do not share this process's working folder: they get absolute paths.
    cwd = os.getcwd()
    states = tuple(_absolute(state, cwd) for state in states)
    paths = [_save_spec(states[0], spec) for spec in specs]
    pipeline = beam.Pipeline(options=PipelineOptions(list(args)))
    worker_jobs = tuple(replace(job, out=_absolute(job.out, cwd)) for job in jobs)
    _ = (
        pipeline
        | "shard specs" >> beam.Create(paths)  # reshuffled: spread over the workers
        | "write shards" >> beam.Map(_write_one, jobs=worker_jobs, states=states, cwd=cwd)
    )
    result = _run(pipeline, args)
    try:
        result.wait_until_finish()
    finally:
        _close_client(result)
    for job in jobs:
        _remove_partials(job)


def _run(pipeline, args: Sequence[str]):
    """Start ``pipeline``; the DaskRunner connects to its scheduler here.

    Raises:
        ConfigError: the DaskRunner cannot reach its scheduler.
    """
    try:
        return pipeline.run()
    except OSError as err:
        address = [a.split("=", 1)[1] for a in args if a.startswith("--dask_client_address=")]
        if not _on_dask(args) or not address:
            raise
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address[-1]} (--beam-option "
            f"dask_client_address): {err}; start it (`dask scheduler`) or fix the address, "
            "then run the same command with --resume (in place of --overwrite, if given)"
        ) from err


def _close_client(result) -> None:
    """The DaskRunner leaves its client connected to the scheduler; a build is done with it."""
    client = getattr(result, "client", None)
    if client is not None:
        client.close()


def _remove_partials(job: ShardJob) -> None:
    """A runner writes a shard again when the worker writing it dies (measured: a Dask worker
    killed mid-build); the dead attempt's partial file and index temporary, named after its
    process, go."""
    from tfrec_tools.builder.output import indexed_shard

    for entry in fs.listdir(job.out):
        shard = indexed_shard(entry)
        index_temp = shard and entry != naming.index_name(shard)
        ours = shard and (naming.parse_shard_name(shard) or ("",))[0] == job.name
        if naming.is_partial_of(entry, job.name) or (index_temp and ours):
            fs.remove(fs.join(job.out, entry))


def _save_spec(state: str, spec: ShardSpec) -> str:
    """Specs travel as files, not inside the pipeline graph (Dataflow caps its size)."""
    path = fs.join(state, f"spec-{spec.index:06d}.json")
    fs.write_bytes_atomic(path, json.dumps(asdict(spec)).encode("utf-8"))
    return path


def _load_spec(path: str) -> ShardSpec:
    data = json.loads(fs.read_bytes(path))
    rows = tuple(
        RowSpec(r["row"], r["image_id"], r["path"], tuple(r["values"])) for r in data["rows"]
    )
    return ShardSpec(data["index"], data["fold"], rows)


def _write_one(path: str, jobs: tuple[ShardJob, ...], states: tuple[str, ...], cwd: str) -> int:
    planned = _load_spec(path)
    rows = tuple(replace(r, path=_absolute(r.path, cwd)) for r in planned.rows)
    results = write_sizes(replace(planned, rows=rows), jobs)
    for state, result in zip(states, results):
        save_result(state, _as_planned(result, planned, cwd))
    return planned.index


def _absolute(path: str, cwd: str) -> str:
    return path if fs.is_remote(path) else os.path.join(cwd, path)


def _as_planned(result: ShardResult, planned: ShardSpec, cwd: str) -> ShardResult:
    """Rejections name their file as the plan does (a relative path stays relative), so the
    rejected list is the local build's."""
    names = {_absolute(r.path, cwd): r.path for r in planned.rows}
    rejected = tuple(
        replace(r, path=names[r.path], detail=r.detail.replace(r.path, names[r.path]))
        for r in result.rejected
    )
    return replace(result, rejected=rejected)
