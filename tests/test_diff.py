"""`tfrec diff`'s library: two builds compared by their manifests, and with ``deep`` by their
records (ids added, removed, moved between folds; images and values changed)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tests.helpers import make_image
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ShardError
from tfrec_tools.validate.diff import diff_builds, resolve_build


def build_into(images: Path, csv_path: Path, out: Path, **options) -> str:
    defaults = dict(image=ImageConfig(size=(16, 16)), shards=2, folds=2, workers=1)
    defaults.update(feature_cols=("site",), group_col="patient_id")
    config = BuildConfig(
        images=str(images), out=str(out), labels_csv=str(csv_path), **{**defaults, **options}
    )
    return build(config).manifest_path


def edited_copy(dataset, root: Path) -> tuple[Path, Path]:
    """The dataset with img007 gone, img005's picture and img010's label changed, img100 new."""
    images, csv_path = dataset
    shutil.copytree(images, root / "images")
    make_image(root / "images" / "a" / "img005.jpg", seed=99)
    make_image(root / "images" / "a" / "img100.jpg", seed=100)
    rows = list(csv.reader(csv_path.open()))
    rows = [r for r in rows if r[0] != "img007"] + [["img100", "cat", "p00", "30.5", "head"]]
    for row in rows:
        row[1] = "emu" if row[0] == "img010" else row[1]
    with (root / "labels.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return root / "images", root / "labels.csv"


@pytest.fixture
def base(dataset, tmp_path) -> str:
    return build_into(*dataset, tmp_path / "a")


def test_a_build_against_itself_or_its_copy_is_identical(base, tmp_path):
    assert diff_builds(base, base).identical
    shutil.copytree(Path(base).parent, tmp_path / "copy")
    found = diff_builds(str(Path(base).parent), str(tmp_path / "copy"), deep=True)
    assert found.identical, found.to_json()
    assert found.records is not None and found.to_json()["records"]["added"] == []


def test_another_seed_moves_ids_between_folds(base, dataset, tmp_path):
    other = build_into(*dataset, tmp_path / "b", seed=7)
    shallow = diff_builds(base, other)
    assert not shallow.identical
    assert shallow.sections["options"] == {"seed": (42, 7)}
    assert shallow.sections["shards"]  # the sha256 of the shards differ
    assert shallow.records is None
    deep = diff_builds(base, other, deep=True).records
    assert deep.moved and not (deep.added or deep.removed or deep.image_changed)
    assert all(a != b for a, b in deep.moved.values())
    assert not deep.values_changed


def test_ids_added_removed_and_changed_are_named(base, dataset, tmp_path):
    other = build_into(*edited_copy(dataset, tmp_path / "edited"), tmp_path / "b")
    records = diff_builds(base, other, deep=True).records
    assert records.added == ["img100"]
    assert records.removed == ["img007"]
    assert records.image_changed == ["img005"]
    assert records.values_changed == {"img010": {"label": ("dog", "emu")}}


def test_schema_and_classes_differences_are_listed(base, dataset, tmp_path):
    images, csv_path = dataset
    text = csv_path.read_text().replace(",emu,", ",owl,")
    (tmp_path / "owl.csv").write_text(text)
    other = build_into(images, tmp_path / "owl.csv", tmp_path / "b", feature_cols=())
    sections = diff_builds(base, other).sections
    assert sections["schema"] == {"site": ("int64", None)}
    assert sections["labels"] == {"label classes": (["cat", "dog", "emu"], ["cat", "dog", "owl"])}
    assert sections["features"] == {
        "site": ("categorical", None),
        "site vocabulary": (["head", "torso"], None),
    }
    assert sections["folds"]["fold 0 label emu"][1] is None


def test_a_folder_of_several_builds_needs_a_name(base, dataset, tmp_path):
    folder = str(Path(base).parent)
    build_into(*dataset, folder, name="again")
    with pytest.raises(ShardError, match="holds 2 builds .*again.manifest.json, train.manifest"):
        resolve_build(folder)
    assert resolve_build(folder, "again")[0].endswith("again.manifest.json")
    assert resolve_build(base)[1].name == "train"


def test_a_folder_without_a_manifest_is_refused(tmp_path):
    with pytest.raises(ShardError, match=r"no \*\.manifest\.json: `tfrec diff` compares builds"):
        resolve_build(str(tmp_path))
    with pytest.raises(ShardError, match="no such file or folder"):
        resolve_build(str(tmp_path / "nope"))
