from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.builder.test_run import config_for, digests
from tfrec_tools import naming
from tfrec_tools.builder import beam as beam_module
from tfrec_tools.builder.beam import beam_args, require_beam
from tfrec_tools.builder.run import build
from tfrec_tools.builder.write import write_sizes
from tfrec_tools.errors import ConfigError


def test_beam_args_default_to_the_local_direct_runner():
    assert beam_args((), 3) == [
        "--runner=DirectRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=3",
    ]
    assert beam_args(("runner=DataflowRunner", "--region=europe-west4"), 2) == [
        "--runner=DataflowRunner",
        "--region=europe-west4",
    ]


DASK = "apache_beam.runners.dask.dask_runner.DaskRunner"


def test_beam_args_name_the_runner_by_its_short_name():
    assert beam_args(("runner=DaskRunner", "dask_client_address=127.0.0.1:8786"), 2) == [
        f"--runner={DASK}",  # Beam 2.77 knows the DaskRunner only by its class path
        "--dask_client_address=127.0.0.1:8786",
        "--dask_partition_size=1",  # one shard per Dask partition: every worker gets shards
    ]
    assert beam_args(("runner=flink",), 2) == ["--runner=FlinkRunner"]
    assert beam_args((f"--runner={DASK}", "dask_npartitions=3"), 2) == [
        f"--runner={DASK}",
        "--dask_npartitions=3",
    ]


def test_unknown_runner_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        beam_args(("runner=Foo",), 2)
    assert str(err.value) == (
        "`--beam-option runner` must be one of DaskRunner, DataflowRunner, DirectRunner, "
        "FlinkRunner, PortableRunner, PrismRunner, SparkRunner, or a runner's class path "
        f"(e.g. {DASK}). Received: runner=Foo"
    )


def test_unknown_runner_stops_the_build_with_a_config_error(dataset, tmp_path):
    pytest.importorskip("apache_beam")
    with pytest.raises(ConfigError, match=r"`--beam-option runner` must be one of"):
        build(config_for(dataset, tmp_path / "out", runner="beam", beam_options=("runner=Foo",)))
    assert not (tmp_path / "out").exists()  # stopped before anything was written


def test_a_dead_attempt_leaves_no_partial_shard(dataset, tmp_path, monkeypatch):
    """A runner writes a shard again when the worker writing it dies: the dead attempt's
    partial file and index temporary, named after its process, must not outlive the build."""
    pytest.importorskip("apache_beam")
    build(config_for(dataset, tmp_path / "local", workers=1))

    def write_after_a_dead_attempt(spec, jobs):
        (job,) = jobs
        dead = naming.partial_name(job.name, spec.index, job.num_shards, pid=999999)
        (Path(job.out) / dead).write_bytes(b"half a shard")
        results = write_sizes(spec, jobs)  # the dead attempt died between index and shard:
        index = naming.index_name(str(Path(job.out) / results[0].entry.file))
        Path(naming.temp_name(index, 999999)).write_bytes(b"0 12\n")
        return results

    monkeypatch.setattr(beam_module, "write_sizes", write_after_a_dead_attempt)
    options = ("runner=DirectRunner",)  # in this process, so the patch holds
    build(config_for(dataset, tmp_path / "beam", runner="beam", beam_options=options))
    assert digests(tmp_path / "beam") == digests(tmp_path / "local")


def test_dask_runner_without_dask_says_how_to_install(monkeypatch):
    pytest.importorskip("apache_beam")
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ConfigError) as err:
        require_beam(("runner=DaskRunner",))
    assert str(err.value) == (
        "--beam-option runner=DaskRunner needs dask and distributed: "
        "pip install 'tfrec-tools[dask]'"
    )


def test_missing_beam_says_how_to_install(dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam -> ImportError
    with pytest.raises(
        ConfigError,
        match=r"--runner beam needs Apache Beam: pip install "
        r"'tfrec-tools\[beam\]'",
    ):
        build(config_for(dataset, tmp_path / "out", runner="beam"))


def test_beam_option_needs_the_beam_runner(dataset, tmp_path):
    with pytest.raises(ConfigError, match="--beam-option needs --runner beam"):
        config_for(dataset, tmp_path / "out", beam_options=("runner=DirectRunner",))


@pytest.mark.slow
def test_beam_and_local_pool_write_the_same_bytes(dataset, tmp_path):
    pytest.importorskip("apache_beam")
    build(config_for(dataset, tmp_path / "local", workers=1))
    report = build(config_for(dataset, tmp_path / "beam", runner="beam", workers=2))
    assert report.records == 48 and report.shards == 4
    assert digests(tmp_path / "beam") == digests(tmp_path / "local")
