"""Writing shards on Apache Beam: the plan is made once on the driver, each shard spec is one
Beam element, and a worker writes it with the same ``write_shard`` as the local pool, straight
to the output (``gs://`` through ``tf.io.gfile``). Results land in the build's state folder,
where the driver (and ``--resume``) read them back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from tfrec_tools import fs
from tfrec_tools.builder.plan import ShardSpec
from tfrec_tools.builder.rows import RowSpec
from tfrec_tools.builder.write import ShardJob, save_result, write_shard
from tfrec_tools.errors import ConfigError

INSTALL_HINT = "pip install 'tfrec-tools[beam]'"


def beam_args(options: Sequence[str], workers: int) -> list[str]:
    """Beam pipeline arguments from ``KEY=VALUE`` (or ``--key=value``) options; without a
    runner, Beam's local DirectRunner on ``workers`` processes."""
    args = [o if o.startswith("--") else f"--{o}" for o in options]
    if not any(a.startswith("--runner") for a in args):
        args += [
            "--runner=DirectRunner",
            "--direct_running_mode=multi_processing",
            f"--direct_num_workers={workers}",
        ]
    return args


def require_beam() -> None:
    """Raises:
    ConfigError: Apache Beam is not installed."""
    try:
        import apache_beam  # noqa: F401
    except ImportError as err:
        raise ConfigError(f"--runner beam needs Apache Beam: {INSTALL_HINT}") from err


def write_shards_beam(
    specs: Sequence[ShardSpec], job: ShardJob, state: str, args: Sequence[str]
) -> None:
    """Write ``specs`` in a Beam pipeline run with ``args``; each result goes to ``state``.

    Raises:
        ConfigError: Apache Beam is not installed.
    """
    require_beam()
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    paths = [_save_spec(state, spec) for spec in specs]
    with beam.Pipeline(options=PipelineOptions(list(args))) as pipeline:
        _ = (
            pipeline
            | "shard specs" >> beam.Create(paths)
            | "write shards" >> beam.Map(_write_one, job=job, state=state)
        )


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


def _write_one(path: str, job: ShardJob, state: str) -> int:
    result = write_shard(_load_spec(path), job)
    save_result(state, result)
    return result.entry.index
