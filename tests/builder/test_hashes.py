"""The build's hashes sidecar (listed in the manifest) and its duplicate report: planted exact
and resized/re-encoded copies are found, distinct pictures are not; --overwrite and --resume
treat both files as the build's own."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from PIL import Image

from tests.helpers import read_records, scene, write_csv
from tfrec_tools import naming
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.manifest import read_manifest
from tfrec_tools.phash import read_hashes


def planted(root: Path, n: int = 24) -> tuple[Path, Path]:
    """n distinct pictures, an exact copy of pic000 and a resized, re-encoded copy of pic001."""
    images = root / "images"
    images.mkdir(parents=True)
    for i in range(n):
        scene(i).save(images / f"pic{i:03d}.jpg", quality=90)
    (images / "exact.jpg").write_bytes((images / "pic000.jpg").read_bytes())
    Image.open(images / "pic001.jpg").resize((40, 40)).save(images / "smaller.jpg", quality=70)
    ids = [f"pic{i:03d}" for i in range(n)] + ["exact", "smaller"]
    rows = [(image_id, ("a", "b")[k % 2]) for k, image_id in enumerate(ids)]
    return images, write_csv(root / "labels.csv", ["image_id", "label"], rows)


def config(images: Path, labels: Path, out: Path, **options) -> BuildConfig:
    defaults = dict(image=ImageConfig(size=(32, 32)), shards=2, folds=2, workers=1)
    return BuildConfig(
        images=str(images), out=str(out), labels_csv=str(labels), **{**defaults, **options}
    )


def test_the_sidecar_lists_every_record_and_the_manifest_lists_the_sidecar(tmp_path):
    images, labels = planted(tmp_path)
    report = build(config(images, labels, tmp_path / "out"))
    manifest = read_manifest(report.manifest_path)
    sidecar = tmp_path / "out" / "train.hashes.csv"
    assert manifest.hashes_file == sidecar.name == naming.hashes_name("train")
    assert manifest.hashes_sha256 == hashlib.sha256(sidecar.read_bytes()).hexdigest()
    rows = read_hashes(str(sidecar))
    in_shards = []
    for entry in manifest.shards:
        records = read_records([str(tmp_path / "out" / entry.file)])
        in_shards += [(r["image_id"].decode(), entry.file, r["image"]) for r in records]
    assert [(r.image_id, r.shard) for r in rows] == [(i, s) for i, s, _ in in_shards]
    assert [r.sha256 for r in rows] == [hashlib.sha256(d).hexdigest() for _, _, d in in_shards]


def test_planted_copies_are_reported_and_listed_distinct_pictures_are_not(tmp_path):
    images, labels = planted(tmp_path)
    report = build(config(images, labels, tmp_path / "out"))
    listed = tmp_path / "out" / "train.duplicates.csv"
    assert report.duplicates.path == str(listed)
    with open(listed) as handle:
        rows = list(csv.DictReader(handle))
    groups: dict[str, set[str]] = {}
    for row in rows:
        groups.setdefault(row["group"], set()).add(row["image_id"])
    kinds = {row["group"]: row["kind"] for row in rows}
    assert sorted(groups.values(), key=sorted) == [{"exact", "pic000"}, {"pic001", "smaller"}]
    assert sorted(kinds.values()) == ["exact", "near"]
    assert report.duplicates.summary.startswith("2 duplicate groups (4 images): 1 exact, 1 near")


def test_no_duplicates_no_list(tmp_path):
    images, labels = planted(tmp_path)
    (images / "exact.jpg").unlink()
    (images / "smaller.jpg").unlink()
    report = build(config(images, labels, tmp_path / "out"))
    assert report.duplicates.summary == "no duplicates" and report.duplicates.path is None
    assert not (tmp_path / "out" / "train.duplicates.csv").exists()


def test_overwrite_removes_the_old_lists(tmp_path):
    images, labels = planted(tmp_path)
    build(config(images, labels, tmp_path / "out"))
    (images / "exact.jpg").unlink()
    (images / "smaller.jpg").unlink()
    build(config(images, labels, tmp_path / "out", existing="overwrite"))
    assert not (tmp_path / "out" / "train.duplicates.csv").exists()
    assert len(read_hashes(str(tmp_path / "out" / "train.hashes.csv"))) == 24


def test_resume_rewrites_a_shard_recorded_without_hashes(tmp_path, monkeypatch):
    images, labels = planted(tmp_path)
    build(config(images, labels, tmp_path / "clean"))
    out = tmp_path / "out"
    calls = {"n": 0}
    from tfrec_tools.builder import run

    real = run._finish

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "_finish", interrupted)
    try:
        build(config(images, labels, out))
    except KeyboardInterrupt:
        calls["n"] += 1
    monkeypatch.setattr(run, "_finish", real)
    state = out / naming.state_dir_name("train")
    for saved in state.glob("shard-*.json"):  # as an older version recorded them
        data = json.loads(saved.read_text())
        del data["hashes"]
        saved.write_text(json.dumps(data))
    report = build(config(images, labels, out, existing="resume"))
    assert calls["n"] == 1 and report.reused_shards == 0
    clean = (tmp_path / "clean" / "train.hashes.csv").read_bytes()
    assert (out / "train.hashes.csv").read_bytes() == clean


def test_the_duplicate_list_is_on_disk_before_the_manifest_finishes_the_build(
    tmp_path, monkeypatch
):
    """Once the manifest is written --resume has nothing to do: a kill between the two must
    not leave a finished build without its duplicate list."""
    import pytest

    images, labels = planted(tmp_path)

    def killed(manifest, path):
        raise KeyboardInterrupt

    monkeypatch.setattr("tfrec_tools.builder.run.write_manifest", killed)
    with pytest.raises(KeyboardInterrupt):
        build(config(images, labels, tmp_path / "out"))
    assert (tmp_path / "out" / "train.duplicates.csv").exists()
    monkeypatch.undo()
    report = build(config(images, labels, tmp_path / "out", existing="resume"))
    assert report.duplicates.path == str(tmp_path / "out" / "train.duplicates.csv")
