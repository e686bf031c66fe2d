"""The Beam build on Beam's DaskRunner against a real dask.distributed cluster on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

from tests.builder.test_run import config_for, digests
from tests.dask_cluster import dask_cluster
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ConfigError

pytest.importorskip("apache_beam", reason="needs Apache Beam: pip install 'tfrec-tools[beam]'")
pytest.importorskip("distributed", reason="needs dask.distributed: pip install 'tfrec-tools[dask]'")


@pytest.mark.slow
def test_dask_runner_writes_the_local_bytes_on_both_workers(dataset, tmp_path, monkeypatch):
    """Relative paths, as typed on the command line, though the workers run elsewhere (in the
    repository root); a broken image is rejected by a worker, listed as the planner named it."""
    (dataset[0] / "a" / "img001.jpg").write_bytes(b"not a jpeg")
    monkeypatch.chdir(tmp_path)
    relative = (dataset[0].relative_to(tmp_path), dataset[1].relative_to(tmp_path))
    build(config_for(relative, "local", workers=1))
    with dask_cluster(tmp_path / "cluster", workers=2) as cluster:
        options = ("runner=DaskRunner", f"dask_client_address={cluster.address}")
        report = build(config_for(relative, "dask", runner="beam", beam_options=options))
        tasks = cluster.tasks_per_worker()
    assert report.records == 47 and report.shards == 4 and report.rejected == {"not an image": 1}
    assert digests(tmp_path / "dask") == digests(tmp_path / "local")
    assert len(tasks) == 2 and min(tasks.values()) >= 1, f"tasks per worker: {tasks}"


def test_unreachable_scheduler_is_a_config_error(dataset, tmp_path):
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    options = ("runner=DaskRunner", f"dask_client_address={address}", "dask_connection_timeout=1")
    with pytest.raises(ConfigError) as err:
        build(config_for(dataset, tmp_path / "out", runner="beam", beam_options=options))
    assert str(err.value).startswith(
        f"cannot reach the Dask scheduler at {address} (--beam-option dask_client_address): "
    )
    assert str(err.value).endswith(
        "; start it (`dask scheduler`) or fix the address, then run the same command with --resume"
        " (in place of --overwrite, if given)"
    )
