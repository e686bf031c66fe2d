"""Several sizes in one pass (``BuildConfig.sizes``): one complete build per size folder, every
image decoded once, the same records, folds and rejections at every size."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builder.test_run import config_for, crash_after, digests, shard_files
from tests.helpers import make_image, read_records
from tfrec_tools.builder import images as images_module
from tfrec_tools.builder.config import ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ConfigError
from tfrec_tools.manifest import read_manifest

SIZES = ((16, 16), (24, 12))
FOLDERS = ("16", "24x12")


def sizes_config(dataset, out: Path, **options):
    return config_for(dataset, out, image=ImageConfig(size=SIZES[0]), sizes=SIZES, **options)


def by_id(folder: Path) -> dict[str, dict]:
    return {r["image_id"]: r for r in read_records(shard_files(folder))}


def test_each_size_is_a_build_of_its_own_with_the_same_records(dataset, tmp_path):
    report = build(sizes_config(dataset, tmp_path / "out"))
    assert [Path(r.manifest_path).parent.name for r in report.sizes] == list(FOLDERS)
    first, second = (by_id(tmp_path / "out" / folder) for folder in FOLDERS)
    assert set(first) == set(second) and len(first) == 48
    for image_id, record in first.items():
        assert record["fold"] == second[image_id]["fold"]
        assert (record["height"], record["width"]) == (16, 16)
        assert (second[image_id]["height"], second[image_id]["width"]) == (24, 12)
    shards = [[Path(f).name for f in shard_files(tmp_path / "out" / d)] for d in FOLDERS]
    assert shards[0] == shards[1]  # the same shard names: the same counts per shard


def test_each_manifest_says_its_size_and_the_sizes_of_the_pass(dataset, tmp_path):
    build(sizes_config(dataset, tmp_path / "out"))
    for folder, size in zip(FOLDERS, SIZES):
        manifest = read_manifest(str(tmp_path / "out" / folder / "train.manifest.json"))
        assert manifest.image["size"] == list(size)
        assert manifest.options["image"]["size"] == list(size)
        assert manifest.options["sizes"] == [list(s) for s in SIZES]
    prints = {
        read_manifest(str(tmp_path / "out" / f / "train.manifest.json")).plan_fingerprint
        for f in FOLDERS
    }
    assert len(prints) == 1  # one plan, one fingerprint for every size


def test_a_single_size_manifest_has_no_sizes(dataset, tmp_path):
    build(config_for(dataset, tmp_path / "out"))
    assert "sizes" not in read_manifest(str(tmp_path / "out" / "train.manifest.json")).options


def test_each_image_is_decoded_once(dataset, tmp_path, monkeypatch):
    opened = []
    real = images_module._open

    def counting(data, config):
        opened.append(1)
        return real(data, config)

    monkeypatch.setattr(images_module, "_open", counting)
    build(sizes_config(dataset, tmp_path / "out"))
    assert len(opened) == 48


def test_a_row_that_cannot_be_stored_at_one_size_is_rejected_from_all(dataset, tmp_path):
    images, _ = dataset
    # 100x1 padded into 16x16 is 0 pixels high; into 64x64 it is 1 pixel high
    make_image(images / "a" / "img001.jpg", (100, 1))
    sizes = ((16, 16), (64, 64))
    image = ImageConfig(size=(16, 16), fit="pad")
    report = build(config_for(dataset, tmp_path / "out", image=image, sizes=sizes))
    assert all(r.records == 47 and r.num_rejected == 1 for r in report.sizes)
    for folder in ("16", "64"):
        assert "img001" not in by_id(tmp_path / "out" / folder)
        assert "img001" in (tmp_path / "out" / folder / "train.rejected.csv").read_text()


def test_crash_then_resume_is_identical_to_an_uninterrupted_pass(dataset, tmp_path, monkeypatch):
    build(sizes_config(dataset, tmp_path / "clean"))
    crash_after(monkeypatch, 30, patched="prepare_sizes")
    with pytest.raises(KeyboardInterrupt):
        build(sizes_config(dataset, tmp_path / "out"))
    monkeypatch.undo()
    report = build(sizes_config(dataset, tmp_path / "out", existing="resume"))
    assert all(r.reused_shards >= 1 for r in report.sizes)
    for folder in FOLDERS:
        assert digests(tmp_path / "out" / folder) == digests(tmp_path / "clean" / folder)


def test_resume_after_a_kill_between_the_manifests_of_two_sizes(dataset, tmp_path, monkeypatch):
    from tfrec_tools.builder import run as run_module

    build(sizes_config(dataset, tmp_path / "clean"))
    real, written = run_module.write_manifest, []

    def killed_after_the_first(manifest, path):
        if written:
            raise KeyboardInterrupt
        written.append(path)
        real(manifest, path)

    monkeypatch.setattr(run_module, "write_manifest", killed_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        build(sizes_config(dataset, tmp_path / "out"))
    monkeypatch.undo()
    report = build(sizes_config(dataset, tmp_path / "out", existing="resume"))
    assert [r.records for r in report.sizes] == [48, 48]
    for folder in FOLDERS:
        assert digests(tmp_path / "out" / folder) == digests(tmp_path / "clean" / folder)


def test_an_existing_pass_needs_overwrite_and_overwrite_replaces_every_size(dataset, tmp_path):
    build(sizes_config(dataset, tmp_path / "out"))
    with pytest.raises(ConfigError, match="already holds a build named 'train'"):
        build(sizes_config(dataset, tmp_path / "out"))
    build(sizes_config(dataset, tmp_path / "out", shards=2, existing="overwrite"))
    assert all(len(shard_files(tmp_path / "out" / f)) == 2 for f in FOLDERS)


def test_workers_do_not_change_a_byte_of_a_pass(dataset, tmp_path):
    build(sizes_config(dataset, tmp_path / "one"))
    build(sizes_config(dataset, tmp_path / "two", workers=2))
    for folder in FOLDERS:
        assert digests(tmp_path / "one" / folder) == digests(tmp_path / "two" / folder)


def test_beam_writes_the_bytes_of_the_local_pass(dataset, tmp_path):
    pytest.importorskip("apache_beam")
    build(sizes_config(dataset, tmp_path / "local"))
    options = ("runner=DirectRunner",)
    build(sizes_config(dataset, tmp_path / "beam", runner="beam", beam_options=options))
    for folder in FOLDERS:
        assert digests(tmp_path / "beam" / folder) == digests(tmp_path / "local" / folder)
