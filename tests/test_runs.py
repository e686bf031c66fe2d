from __future__ import annotations

import os

import pytest

from tfrec_tools.errors import ConfigError
from tfrec_tools.runs import latest_run_dir, new_run_dir


def test_new_run_dirs_never_reuse_a_folder(tmp_path):
    root = str(tmp_path / "runs")
    first = new_run_dir(root, today="2026-11-30")
    second = new_run_dir(root, today="2026-11-30")
    assert (os.path.basename(first), os.path.basename(second)) == ("2026-11-30-1", "2026-11-30-2")
    assert os.path.isdir(first) and os.path.isdir(second)


def test_a_name_only_run_dir_is_not_created(tmp_path):
    path = new_run_dir(str(tmp_path), create=False, today="2026-11-30")
    assert path.endswith("2026-11-30-1") and not os.path.exists(path)


def test_latest_run_is_the_newest_finished_one(tmp_path):
    for name in ("2026-11-29-7", "2026-11-30-2", "2026-11-30-10", "2026-11-30-11", "other"):
        (tmp_path / name).mkdir()
    for name in ("2026-11-29-7", "2026-11-30-2", "2026-11-30-10"):
        (tmp_path / name / "model.json").write_text("{}")
    assert latest_run_dir(str(tmp_path)) == str(tmp_path / "2026-11-30-10")


def test_no_finished_run_says_to_pass_run(tmp_path):
    with pytest.raises(ConfigError, match="no finished run under .*; pass --run RUN_DIR"):
        latest_run_dir(str(tmp_path))
