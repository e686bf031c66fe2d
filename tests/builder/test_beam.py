from __future__ import annotations

import sys

import pytest

from tests.builder.test_run import config_for, digests
from tfrec_tools.builder.beam import beam_args
from tfrec_tools.builder.run import build
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
