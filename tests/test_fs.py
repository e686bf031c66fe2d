from __future__ import annotations

import os

import pytest

from tfrec_tools import fs


def test_write_bytes_atomic_syncs_a_temp_of_this_process_then_renames(tmp_path, monkeypatch):
    synced, renamed = [], []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append(a), real_replace(a, b)))
    path = tmp_path / "sub" / "x.json"
    fs.write_bytes_atomic(str(path), b"{}")
    assert path.read_bytes() == b"{}"
    assert renamed == [f"{path}.{os.getpid()}.partial"]
    assert len(synced) == 2  # the file before the rename, its folder after it
    assert os.listdir(tmp_path / "sub") == ["x.json"]


def test_sync_takes_files_and_folders(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    fs.sync(str(tmp_path / "f"))
    fs.sync(str(tmp_path))


def test_a_failed_atomic_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def full_disk(src, dst):
        raise OSError(28, "No space left on device", dst)

    monkeypatch.setattr(fs, "rename", full_disk)
    with pytest.raises(OSError, match="No space"):
        fs.write_bytes_atomic(str(tmp_path / "manifest.json"), b"{}")
    assert list(tmp_path.iterdir()) == []
