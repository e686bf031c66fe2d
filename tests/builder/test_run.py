from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import make_image, read_records
from tfrec_tools import naming
from tfrec_tools.builder import images as images_module
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ConfigError
from tfrec_tools.index import index_problem
from tfrec_tools.manifest import read_manifest


def config_for(dataset, out: Path | str, **options) -> BuildConfig:
    images, csv_path = dataset
    defaults = dict(
        image=ImageConfig(size=(16, 16)),
        shards=4,
        folds=2,
        group_col="patient_id",
        feature_cols=("age", "site"),
        workers=1,
    )
    return BuildConfig(
        images=str(images), out=str(out), labels_csv=str(csv_path), **{**defaults, **options}
    )


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def shard_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("*.tfrec"))


def test_round_trip_ids_labels_folds_images(dataset, tmp_path):
    report = build(config_for(dataset, tmp_path / "out"))
    manifest = read_manifest(report.manifest_path)
    records = read_records(shard_files(tmp_path / "out"))
    assert len(records) == report.records == 48 == manifest.totals["records"]
    by_id = {r["image_id"].decode(): r for r in records}
    with open(dataset[1]) as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        record = by_id[row["image_id"]]
        assert manifest.labels[0].classes[record["label"]] == row["label"]
        assert manifest.features[1].vocabulary[record["site"]] == row["site"]
        assert (
            record["age"] == pytest.approx(float(row["age"]))
            if row["age"]
            else np.isnan(record["age"])
        )
        source = Image.open(
            dataset[0] / ("a" if int(row["image_id"][3:]) % 2 else "b") / f"{row['image_id']}.jpg"
        ).resize((16, 16), Image.Resampling.LANCZOS)
        decoded = Image.open(io.BytesIO(record["image"]))
        assert decoded.size == (16, 16) and (record["height"], record["width"]) == (16, 16)
        diff = np.abs(np.asarray(decoded, float) - np.asarray(source, float)).mean()
        assert diff < 20  # noise images: JPEG loses detail, but not the picture
    folds_in_file = {}
    for record_file in shard_files(tmp_path / "out"):
        folds_in_file[record_file] = {r["fold"] for r in read_records([record_file])}
    assert all(len(folds) == 1 for folds in folds_in_file.values())
    assert [s.fold for s in manifest.shards] == [0, 1, 0, 1]


def test_count_in_names_equals_records(dataset, tmp_path):
    build(config_for(dataset, tmp_path / "out", shards=6, folds=3))
    files = shard_files(tmp_path / "out")
    assert len(files) == 6
    for path in files:
        assert naming.parse_count(path) == len(read_records([path]))
    assert naming.count_data_items(files) == 48


def test_manifest_matches_files(dataset, tmp_path):
    report = build(config_for(dataset, tmp_path / "out"))
    manifest = read_manifest(report.manifest_path)
    for entry in manifest.shards:
        data = (tmp_path / "out" / entry.file).read_bytes()
        assert entry.bytes == len(data)
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        assert sum(entry.label_histogram["label"].values()) == entry.count
        index = (tmp_path / "out" / entry.file).with_name(naming.index_name(entry.file))
        assert entry.index_file == index.name
        assert entry.index_sha256 == hashlib.sha256(index.read_bytes()).hexdigest()
        assert index_problem(str(tmp_path / "out" / entry.file)) is None
    assert manifest.schema.names == (
        "image",
        "image_id",
        "height",
        "width",
        "label",
        "fold",
        "age",
        "site",
    )


def test_bad_images_are_rejected_not_fatal(dataset, tmp_path):
    images, _ = dataset
    (images / "a" / "img001.jpg").write_bytes(b"")
    (images / "a" / "img003.jpg").write_text("hello")
    data = (images / "a" / "img005.jpg").read_bytes()
    (images / "a" / "img005.jpg").write_bytes(data[: len(data) // 2])
    report = build(config_for(dataset, tmp_path / "out"))
    assert report.records == 45
    assert report.rejected == {"empty file": 1, "not an image": 1, "unreadable image": 1}
    with open(report.rejected_path) as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["row"], r["image_id"], r["reason"]) for r in rejected] == [
        ("3", "img001", "empty file"),
        ("5", "img003", "not an image"),
        ("7", "img005", "unreadable image"),
    ]
    assert naming.count_data_items(shard_files(tmp_path / "out")) == 45


def test_workers_do_not_change_a_byte(dataset, tmp_path):
    build(config_for(dataset, tmp_path / "one", workers=1))
    build(config_for(dataset, tmp_path / "two", workers=2))
    assert digests(tmp_path / "one") == digests(tmp_path / "two")


def test_existing_output_is_never_mixed(dataset, tmp_path):
    build(config_for(dataset, tmp_path / "out"))
    with pytest.raises(ConfigError, match="already holds a build named 'train'.*--overwrite"):
        build(config_for(dataset, tmp_path / "out", shards=2))
    build(config_for(dataset, tmp_path / "out", shards=2, existing="overwrite"))
    assert len(shard_files(tmp_path / "out")) == 2


def test_crash_mid_build_then_resume_is_identical(dataset, tmp_path, monkeypatch):
    build(config_for(dataset, tmp_path / "clean"))
    real, calls = images_module.prepare_image, {"n": 0}

    def crash_on_30th(data, config):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt  # like a kill: no cleanup code of ours runs after it
        return real(data, config)

    monkeypatch.setattr("tfrec_tools.builder.write.prepare_image", crash_on_30th)
    with pytest.raises(KeyboardInterrupt):
        build(config_for(dataset, tmp_path / "out"))
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert any(name.endswith(naming.PARTIAL_SUFFIX) for name in left)
    for path in shard_files(tmp_path / "out"):  # finished shards state the true count
        assert naming.parse_count(path) == len(read_records([path]))
    monkeypatch.setattr("tfrec_tools.builder.write.prepare_image", real)
    written = naming.count_data_items(shard_files(tmp_path / "out"))
    seen: list[int] = []
    report = build(config_for(dataset, tmp_path / "out", existing="resume"), progress=seen.append)
    assert report.reused_shards >= 1
    assert digests(tmp_path / "out") == digests(tmp_path / "clean")
    assert seen[0] == written and sum(seen) == 48  # the bar starts where the crash left it


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_adds_up_to_the_images_of_the_plan(dataset, tmp_path, workers):
    images, _ = dataset
    (images / "a" / "img001.jpg").write_bytes(b"")  # a rejected image counts as done too
    seen: list[int] = []
    report = build(config_for(dataset, tmp_path / "out", workers=workers), progress=seen.append)
    assert report.records == 47 and sum(seen) == 48


def test_resume_of_finished_build_reports_no_progress(dataset, tmp_path):
    build(config_for(dataset, tmp_path / "out"))
    seen: list[int] = []
    build(config_for(dataset, tmp_path / "out", existing="resume"), progress=seen.append)
    assert seen == []


def test_resume_with_other_options_is_refused(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr("tfrec_tools.builder.write.prepare_image", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        build(config_for(dataset, tmp_path / "out"))
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="was started with other inputs or options"):
        build(config_for(dataset, tmp_path / "out", seed=7, existing="resume"))


def test_resume_of_finished_build_changes_nothing(dataset, tmp_path):
    build(config_for(dataset, tmp_path / "out"))
    before = digests(tmp_path / "out")
    report = build(config_for(dataset, tmp_path / "out", existing="resume"))
    assert report.records == 48 and digests(tmp_path / "out") == before


def test_unlabeled_build(tmp_path):
    for i in range(5):
        make_image(tmp_path / "test" / f"t{i}.png", fmt="PNG", seed=i)
    config = BuildConfig(
        images=str(tmp_path / "test"),
        out=str(tmp_path / "out"),
        name="test",
        image=ImageConfig(size=(8, 8)),
        shards=2,
        workers=1,
    )
    report = build(config)
    records = read_records(shard_files(tmp_path / "out"))
    assert sorted(r["image_id"].decode() for r in records) == [f"t{i}" for i in range(5)]
    assert set(records[0]) == {"image", "image_id", "height", "width"}
    assert report.rows == report.records == 5


def _interrupt(data, config):
    raise KeyboardInterrupt


def test_remote_output_goes_through_gfile(dataset, tmp_path):
    """ram:// is TensorFlow's in-memory file system: the same code path as gs://."""
    from tfrec_tools.validate import inspect_shards

    out = f"ram://{tmp_path.name}/shards"
    report = build(config_for(dataset, out))
    assert report.manifest_path == f"{out}/train.manifest.json"
    inspected = inspect_shards(out)
    assert inspected.ok and inspected.records == 48


def test_overwrite_where_folders_are_listed_with_a_slash_as_on_cloud_storage(
    dataset, tmp_path, monkeypatch
):
    """Cloud Storage lists sub-folders as ``name/`` (tensorflow#39167): the state folder of an
    interrupted build must still be known as the build's, and its stale results never listed."""
    from tfrec_tools import fs
    from tfrec_tools.validate import inspect_shards

    out = f"ram://{tmp_path.name}/gcs"
    gfile = fs._gfile()

    class SlashedListing:
        def __getattr__(self, name):
            return getattr(gfile, name)

        def listdir(self, path):
            return [n + "/" if gfile.isdir(f"{path}/{n}") else n for n in gfile.listdir(path)]

    monkeypatch.setattr(fs, "_gfile", SlashedListing)
    from tfrec_tools.builder.write import prepare_image as real

    calls = {"n": 0}

    def crash_late(data, config):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return real(data, config)

    monkeypatch.setattr("tfrec_tools.builder.write.prepare_image", crash_late)
    with pytest.raises(KeyboardInterrupt):
        build(config_for(dataset, out, shards=6, folds=2))
    monkeypatch.setattr("tfrec_tools.builder.write.prepare_image", real)
    from tfrec_tools.builder.output import existing_outputs

    owned = existing_outputs(config_for(dataset, out, name="train"))
    assert f"{out}/.train.build" in owned  # not hidden behind its listed name ".train.build/"
    report = build(config_for(dataset, out, shards=2, folds=2, existing="overwrite"))
    assert report.shards == 2 and report.records == 48
    assert [s.file for s in read_manifest(report.manifest_path).shards] == [
        "train00-24.tfrec",
        "train01-24.tfrec",
    ]
    assert inspect_shards(out).ok


def tagged(tmp_path: Path, cells: list[str], name: str = "tags.csv") -> tuple[Path, Path]:
    """Images t00.. (one per cell) and a CSV whose ``tags`` column holds the cells."""
    images = tmp_path / "tagged"
    for i in range(len(cells)):
        make_image(images / f"t{i:02d}.jpg", (8, 8), seed=i)
    rows = "".join(f"t{i:02d},{cell}\n" for i, cell in enumerate(cells))
    (tmp_path / name).write_text("image_id,tags\n" + rows)
    return images, tmp_path / name


def test_multi_label_build_stores_multi_hot_and_counts_tags(tmp_path):
    cells = ["cloud haze", "water", "", "haze water cloud"] * 5
    images, csv_path = tagged(tmp_path, cells)
    config = BuildConfig(
        images=str(images),
        out=str(tmp_path / "out"),
        labels_csv=str(csv_path),
        image=ImageConfig(size=(8, 8)),
        multi_label=True,
        shards=2,
        folds=2,
        workers=1,
    )
    manifest = read_manifest(build(config).manifest_path)
    assert [(s.name, s.kind, s.classes) for s in manifest.labels] == [
        ("tags", "multilabel", ("cloud", "haze", "water"))
    ]
    assert [(s.name, s.shape) for s in manifest.schema.features if s.name == "tags"] == [
        ("tags", (3,))
    ]
    assert manifest.options["multi_label"] and manifest.options["label_sep"] == " "
    histogram = Counter()
    for entry in manifest.shards:
        histogram.update(entry.label_histogram["tags"])
    assert histogram == {"cloud": 10, "haze": 10, "water": 10}
    import tensorflow as tf

    spec = {
        "tags": tf.io.FixedLenFeature([3], tf.int64),
        "image_id": tf.io.FixedLenFeature([], tf.string),
    }
    files = shard_files(tmp_path / "out")
    parsed = next(
        iter(
            tf.data.TFRecordDataset(files)
            .batch(20)
            .map(lambda batch: tf.io.parse_example(batch, spec))
        )
    )
    stored = {
        i.decode(): tuple(t)
        for i, t in zip(parsed["image_id"].numpy(), parsed["tags"].numpy().tolist())
    }
    assert stored["t00"] == (1, 1, 0) and stored["t02"] == (0, 0, 0) and stored["t03"] == (1, 1, 1)


def test_multi_label_vocab_from_rejects_rows_with_unknown_tags(tmp_path):
    images, csv_path = tagged(tmp_path, ["a b", "b", "a", "b a"] * 3)
    train = BuildConfig(
        images=str(images),
        out=str(tmp_path / "out"),
        labels_csv=str(csv_path),
        image=ImageConfig(size=(8, 8)),
        multi_label=True,
        shards=1,
        folds=0,
        workers=1,
    )
    manifest_path = build(train).manifest_path
    images, csv_path = tagged(tmp_path / "held", ["b", "a c", "d"], "holdout.csv")
    holdout = BuildConfig(
        images=str(images),
        out=str(tmp_path / "out"),
        labels_csv=str(csv_path),
        name="holdout",
        image=ImageConfig(size=(8, 8)),
        multi_label=True,
        vocab_from=manifest_path,
        shards=1,
        folds=0,
        workers=1,
    )
    report = build(holdout)
    assert report.records == 1 and report.rejected == {"unknown tag": 2}
    with open(report.rejected_path) as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["row"], r["reason"]) for r in rejected] == [
        ("3", "unknown tag"),
        ("4", "unknown tag"),
    ]
    assert rejected[0]["detail"] == f"'c' not among the 2 tags of --vocab-from {manifest_path}"
    assert read_manifest(report.manifest_path).labels[0].classes == ("a", "b")


# --- one build at a time, resume that verifies, outputs that are inputs (issue 11) --------


def test_a_build_while_another_holds_the_lock_fails_naming_its_pid(dataset, tmp_path):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".train.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        with pytest.raises(ConfigError, match=r"another build.*\(pid 4242\)"):
            build(config_for(dataset, out))
    assert not list(out.glob("*.tfrec"))
    build(config_for(dataset, out))  # the lock was released: the build goes ahead
    assert not (out / ".train.lock").exists()  # and the build leaves no lock behind


def crash_after(monkeypatch, images: int, patched: str = "prepare_image") -> None:
    """The next build stops (as if killed) while preparing image number ``images`` (with
    ``patched="prepare_sizes"``: a build of several sizes)."""
    real, calls = getattr(images_module, patched), {"n": 0}

    def crash(data, config):
        calls["n"] += 1
        if calls["n"] == images:
            raise KeyboardInterrupt
        return real(data, config)

    monkeypatch.setattr(f"tfrec_tools.builder.write.{patched}", crash)


def test_resume_rewrites_finished_shards_that_were_deleted_or_damaged(
    dataset, tmp_path, monkeypatch, caplog
):
    build(config_for(dataset, tmp_path / "clean", shards=6))
    crash_after(monkeypatch, 30)  # 8 images a shard: shards 0, 1 and 2 are finished
    with pytest.raises(KeyboardInterrupt):
        build(config_for(dataset, tmp_path / "out", shards=6))
    monkeypatch.undo()
    done = shard_files(tmp_path / "out")
    assert len(done) == 3
    Path(done[0]).unlink()
    Path(done[1]).write_bytes(Path(done[1]).read_bytes()[:-10])  # truncated
    data = bytearray(Path(done[2]).read_bytes())
    data[-1] ^= 1  # the same size, another byte
    Path(done[2]).write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        report = build(config_for(dataset, tmp_path / "out", shards=6, existing="resume"))
    assert report.reused_shards == 0
    assert digests(tmp_path / "out") == digests(tmp_path / "clean")
    damaged = [r.getMessage() for r in caplog.records if "writing it again" in r.getMessage()]
    assert len(damaged) == 3
    assert "missing" in damaged[0] and "bytes" in damaged[1] and "sha256" in damaged[2]


def test_resume_of_a_finished_build_with_a_damaged_shard_is_refused(dataset, tmp_path):
    build(config_for(dataset, tmp_path / "out"))
    victim = Path(shard_files(tmp_path / "out")[1])
    victim.write_bytes(victim.read_bytes()[:-1])
    with pytest.raises(ConfigError, match=rf"{victim.name}: .*--overwrite"):
        build(config_for(dataset, tmp_path / "out", existing="resume"))


def test_resume_takes_back_a_shard_whose_result_was_not_saved(dataset, tmp_path, monkeypatch):
    build(config_for(dataset, tmp_path / "clean"))
    crash_after(monkeypatch, 30)
    with pytest.raises(KeyboardInterrupt):
        build(config_for(dataset, tmp_path / "out"))
    monkeypatch.undo()
    state = tmp_path / "out" / ".train.build"
    sorted(state.glob("shard-*.json"))[-1].unlink()  # killed between the rename and the save
    build(config_for(dataset, tmp_path / "out", existing="resume"))
    assert digests(tmp_path / "out") == digests(tmp_path / "clean")


@pytest.mark.parametrize("alias", [False, True])
def test_out_that_is_the_image_folder_is_refused(dataset, tmp_path, alias):
    images, _ = dataset
    out = images
    if alias:
        out = tmp_path / "link"
        out.symlink_to(images)
    with pytest.raises(ConfigError, match="are the same folder"):
        build(config_for(dataset, out))
    assert not list(images.glob("*.tfrec"))


def test_out_that_is_the_image_folder_is_refused_for_a_pass_of_sizes(dataset, tmp_path):
    images, _ = dataset
    config = config_for(dataset, images, image=ImageConfig(size=(16, 16)), sizes=((16, 16), (8, 8)))
    with pytest.raises(ConfigError, match=f"--out {images} and IMAGES {images} are the same"):
        build(config)
    assert not (images / "16").exists() and not (images / "8").exists()


def test_labels_csv_that_is_an_output_is_refused(dataset, tmp_path):
    images, csv_path = dataset
    out = tmp_path / "out"
    out.mkdir()
    labels = out / "train.rejected.csv"
    labels.write_bytes(csv_path.read_bytes())
    with pytest.raises(ConfigError, match="train.rejected.csv.* are the same file"):
        build(config_for((images, labels), out))
    assert labels.read_bytes() == csv_path.read_bytes()


def test_vocab_from_that_is_the_manifest_to_write_is_refused(dataset, tmp_path):
    report = build(config_for(dataset, tmp_path / "out"))
    before = Path(report.manifest_path).read_bytes()
    again = config_for(
        dataset,
        tmp_path / "out",
        name="train",
        vocab_from=report.manifest_path,
        existing="overwrite",
    )
    with pytest.raises(ConfigError, match="--vocab-from .* are the same file"):
        build(again)
    assert Path(report.manifest_path).read_bytes() == before


def test_overwrite_deletes_only_what_the_build_wrote(dataset, tmp_path):
    out = tmp_path / "out"
    build(config_for(dataset, out))
    foreign = out / "train2020-10.tfrec"  # named like a shard of 'train', listed by no manifest
    foreign.write_bytes(b"someone else's")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="train2020-10.tfrec.*move it away"):
        build(config_for(dataset, out, shards=2, existing="overwrite"))
    assert foreign.read_bytes() == b"someone else's"
    foreign.rename(tmp_path / foreign.name)
    build(config_for(dataset, out, shards=2, existing="overwrite"))
    assert len(shard_files(out)) == 2 and (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("stray", ["train00-12.tfrec", "train00-12.tfrec.idx"])
def test_a_stray_file_named_like_the_builds_is_refused_before_a_first_build(
    dataset, tmp_path, stray
):
    out = tmp_path / "out"
    out.mkdir()
    (out / stray).write_bytes(b"from a Kaggle dataset")
    with pytest.raises(ConfigError, match=f"{stray}: named like .*move it away"):
        build(config_for(dataset, out))
    assert (out / stray).read_bytes() == b"from a Kaggle dataset"


def test_every_image_undecodable_is_an_error_and_leaves_no_build(dataset, tmp_path):
    from tfrec_tools.errors import DataError

    images, _ = dataset
    for path in images.rglob("*.jpg"):
        path.write_bytes(b"not a picture")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"no image could be stored.*reasons in .*train.rejected"):
        build(config_for(dataset, out))
    assert sorted(p.name for p in out.iterdir()) == ["train.rejected.csv"]


def test_rejected_cells_that_look_like_formulas_are_escaped(tmp_path):
    images = tmp_path / "images"
    make_image(images / "ok.png", fmt="PNG")
    (images / "=HYPERLINK(1).png").write_bytes(b"")
    config = BuildConfig(
        images=str(images), out=str(tmp_path / "out"), image=ImageConfig(size=(8, 8)), workers=1
    )
    report = build(config)
    with open(report.rejected_path) as handle:
        rejected = list(csv.DictReader(handle))
    assert rejected[0]["image_id"] == "'=HYPERLINK(1)"


def test_overwrite_removes_what_dead_processes_left(dataset, tmp_path):
    out = tmp_path / "out"
    build(config_for(dataset, out))
    (out / "train01.99999.tfrec.partial").write_bytes(b"half a shard")
    (out / "train.manifest.json.99999.partial").write_bytes(b"{")
    (out / ".train.lock").write_text("99999\n")  # a killed build's lock: the kernel freed it
    build(config_for(dataset, out, existing="overwrite"))
    assert not list(out.glob("*.partial")) and not (out / ".train.lock").exists()


# --- record index files ------------------------------------------------------------------


def index_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.idx"))


def test_two_builds_write_the_same_index_bytes(dataset, tmp_path):
    build(config_for(dataset, tmp_path / "one"))
    build(config_for(dataset, tmp_path / "two"))
    one = {n: (tmp_path / "one" / n).read_bytes() for n in index_files(tmp_path / "one")}
    assert len(one) == 4 and all(one.values())
    assert one == {n: (tmp_path / "two" / n).read_bytes() for n in index_files(tmp_path / "two")}


def test_resume_rewrites_the_pair_when_an_index_was_damaged_or_deleted(
    dataset, tmp_path, monkeypatch, caplog
):
    build(config_for(dataset, tmp_path / "clean", shards=6))
    crash_after(monkeypatch, 30)  # shards 0, 1 and 2 are finished
    with pytest.raises(KeyboardInterrupt):
        build(config_for(dataset, tmp_path / "out", shards=6))
    monkeypatch.undo()
    done = shard_files(tmp_path / "out")
    Path(naming.index_name(done[0])).unlink()
    damaged = Path(naming.index_name(done[1]))
    damaged.write_bytes(damaged.read_bytes().replace(b" ", b"  ", 1))
    with caplog.at_level("WARNING"):
        report = build(config_for(dataset, tmp_path / "out", shards=6, existing="resume"))
    assert report.reused_shards == 1
    assert digests(tmp_path / "out") == digests(tmp_path / "clean")
    redone = [r.getMessage() for r in caplog.records if "writing it again" in r.getMessage()]
    assert redone == [
        f"{done[0]}: its index {Path(done[0]).name}.idx is missing; writing it again",
        f"{done[1]}: its index {damaged.name} differs from the one recorded when it was "
        "written; writing it again",
    ]


def test_resume_of_a_finished_build_with_a_damaged_index_is_refused(dataset, tmp_path):
    build(config_for(dataset, tmp_path / "out"))
    shard = shard_files(tmp_path / "out")[1]
    Path(naming.index_name(shard)).write_bytes(b"0 1\n")
    with pytest.raises(ConfigError, match=rf"{Path(shard).name}: its index .*--overwrite"):
        build(config_for(dataset, tmp_path / "out", existing="resume"))


def test_an_index_renamed_before_a_kill_took_its_shard_is_removed_on_resume(
    dataset, tmp_path, monkeypatch
):
    build(config_for(dataset, tmp_path / "clean"))
    crash_after(monkeypatch, 30)
    with pytest.raises(KeyboardInterrupt):
        build(config_for(dataset, tmp_path / "out"))
    monkeypatch.undo()
    (tmp_path / "out" / "train03-12.tfrec.idx").write_bytes(b"0 5\n")  # killed before the rename
    (tmp_path / "out" / "train03-12.tfrec.idx.99999.partial").write_bytes(b"0")
    build(config_for(dataset, tmp_path / "out", existing="resume"))
    assert digests(tmp_path / "out") == digests(tmp_path / "clean")


def test_overwrite_removes_the_indexes_of_the_old_build(dataset, tmp_path):
    build(config_for(dataset, tmp_path / "out"))
    build(config_for(dataset, tmp_path / "out", shards=2, existing="overwrite"))
    assert index_files(tmp_path / "out") == [
        naming.index_name(Path(p).name) for p in shard_files(tmp_path / "out")
    ]
    assert len(index_files(tmp_path / "out")) == 2


def test_a_manifest_from_before_index_files_still_loads_and_resumes(dataset, tmp_path):
    report = build(config_for(dataset, tmp_path / "out"))
    path = Path(report.manifest_path)
    data = json.loads(path.read_text())
    for shard in data["shards"]:
        del shard["index_file"], shard["index_sha256"]
    path.write_text(json.dumps(data))
    for index in (tmp_path / "out").glob("*.idx"):
        index.unlink()
    assert read_manifest(str(path)).shards[0].index_file is None
    build(config_for(dataset, tmp_path / "out", existing="resume"))  # nothing to redo


def test_resume_after_a_kill_while_the_state_folder_was_being_removed(dataset, tmp_path):
    """The manifest is written, then the state folder removed: a kill in between can leave a
    state folder without its plan. The build had finished: --resume says so and tidies up."""
    from tfrec_tools import fs

    def killed_mid_rmtree(path):
        (Path(path) / "plan.json").unlink()  # the first file rmtree removed
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fs, "rmtree", killed_mid_rmtree)
        with pytest.raises(KeyboardInterrupt):
            build(config_for(dataset, tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "out" / ".train.build").iterdir())[0].startswith(
        "shard-"
    )
    before = digests(tmp_path / "out")
    report = build(config_for(dataset, tmp_path / "out", existing="resume"))
    assert report.records == 48 and report.reused_shards == 4
    assert digests(tmp_path / "out") == before
    assert not (tmp_path / "out" / ".train.build").exists()


def test_resume_after_a_kill_before_the_plan_was_recorded_builds_everything(dataset, tmp_path):
    from tfrec_tools.builder import run as run_module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_module, "save_plan_stamp", lambda *a, **k: _interrupt(None, None))
        with pytest.raises(KeyboardInterrupt):
            build(config_for(dataset, tmp_path / "out"))
    assert (tmp_path / "out" / ".train.build").is_dir()
    build(config_for(dataset, tmp_path / "clean"))
    report = build(config_for(dataset, tmp_path / "out", existing="resume"))
    assert report.records == 48 and report.reused_shards == 0
    assert digests(tmp_path / "out") == digests(tmp_path / "clean")
