from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import write_foreign_shard
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.cli import main
from tfrec_tools.errors import ShardError
from tfrec_tools.records import frame
from tfrec_tools.validate import InspectConfig, inspect_shards


@pytest.fixture
def shards(dataset, tmp_path) -> Path:
    images, csv_path = dataset
    config = BuildConfig(
        images=str(images),
        out=str(tmp_path / "shards"),
        labels_csv=str(csv_path),
        image=ImageConfig(size=(16, 16)),
        shards=4,
        folds=2,
        group_col="patient_id",
        feature_cols=("patient_id",),
        workers=1,
    )
    build(config)
    return tmp_path / "shards"


def inspect(*args):
    return CliRunner().invoke(main, ["inspect", *map(str, args)])


def test_clean_build_passes(shards):
    report = inspect_shards(str(shards), InspectConfig(deep=True))
    assert report.ok, report.problems
    assert report.records == report.name_total == 48
    assert report.keys["label"] == "label" and report.keys["group"] == "patient_id"
    assert report.fold_table() == {
        "0": {"cat": 8, "dog": 8, "emu": 8},
        "1": {"cat": 8, "dog": 8, "emu": 8},
    }
    assert {shape for f in report.files for shape in f.image_shapes} == {"16x16x3"}


def test_cli_text_report_and_exit_0(shards, tmp_path):
    result = inspect(shards, "--grid", tmp_path / "sheet.png")
    assert result.exit_code == 0, result.output
    assert "4 files, 48 records (names say 48)" in result.output
    assert result.output.rstrip().endswith(f"contact sheet: {tmp_path / 'sheet.png'}")
    assert (tmp_path / "sheet.png").stat().st_size > 1000


def test_json_report(shards):
    import json

    result = inspect(shards, "--json")
    data = json.loads(result.output)
    assert data["ok"] is True and data["records"] == 48 and len(data["files"]) == 4


def first_shard(shards: Path) -> Path:
    return sorted(shards.glob("*.tfrec"))[0]


def test_corrupted_byte_is_reported_by_file_and_record(shards):
    path = first_shard(shards)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = inspect(shards)
    assert result.exit_code == 1
    assert f"{path}: record " in result.output and "cannot be read" in result.output
    assert "Traceback" not in result.output


def test_truncated_file_is_reported(shards):
    path = first_shard(shards)
    path.write_bytes(path.read_bytes()[:-100])
    result = inspect(shards)
    assert result.exit_code == 1
    assert f"{path}: record " in result.output and "cut short" in result.output


def test_wrong_count_in_name_is_reported(shards):
    path = first_shard(shards)
    wrong = path.with_name(path.name.replace("-12.", "-13."))
    shutil.move(path, wrong)
    result = inspect(wrong)
    assert result.exit_code == 1
    assert f"{wrong}: the name says 13 records, the file holds 12" in result.output


def test_manifest_differences_are_problems(shards):
    path = first_shard(shards)
    shutil.copy(sorted(shards.glob("*.tfrec"))[1], path)  # same name, other content
    report = inspect_shards(str(shards))
    assert any("size or sha256 differs" in p for p in report.problems)


def test_leftover_partial_file_is_reported(shards):
    (shards / "train02.tfrec.partial").write_bytes(b"")
    report = inspect_shards(str(shards))
    assert any(
        "train02.tfrec.partial: left over from an interrupted build" in p for p in report.problems
    )


def test_foreign_shards_without_manifest(tmp_path):
    rows = [
        {"image_name": f"ISIC_{i}", "target": i % 2, "patient_id": f"p{i % 3}", "fold": i % 2}
        for i in range(6)
    ]
    write_foreign_shard(tmp_path / "train00-6.tfrec", rows)
    report = inspect_shards(str(tmp_path))
    assert report.keys == {
        "image": "image",
        "id": "image_name",
        "label": "target",
        "group": "patient_id",
        "fold": "fold",
    }
    # p0 holds ISIC_0 (fold 0) and ISIC_3 (fold 1): leakage
    assert any("groups (patient_id) cross folds" in p for p in report.problems)


def test_duplicate_ids_and_copied_images_across_folds(tmp_path):
    rows = [{"id": "a", "class": 1, "fold": 0}, {"id": "a", "class": 1, "fold": 0}]
    write_foreign_shard(tmp_path / "x0-2.tfrec", rows, seed=1)
    write_foreign_shard(tmp_path / "x1-1.tfrec", [{"id": "b", "class": 0, "fold": 1}], seed=1)
    report = inspect_shards(str(tmp_path))
    assert any(
        p.startswith("1 ids appear more than once, e.g. a (x0-2.tfrec, x0-2.tfrec)")
        for p in report.problems
    )
    assert any(
        "images appear under different ids in different folds, e.g. a (fold 0) = b (fold 1)" in p
        for p in report.problems
    )


def test_name_without_count_is_a_problem(tmp_path):
    write_foreign_shard(tmp_path / "train.tfrecord", [{"id": "a", "class": 0}])
    report = inspect_shards(str(tmp_path))
    assert report.problems == [
        f"{tmp_path / 'train.tfrecord'}: the name states no record count (expected "
        "'<name>-<count>.tfrec'), so count_data_items cannot use it; it holds 1 records"
    ]


def test_no_shards_is_a_one_line_error(tmp_path):
    with pytest.raises(ShardError, match="no shard files"):
        inspect_shards(str(tmp_path))
    result = inspect(tmp_path / "missing")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'missing'}: no such file or folder"


def test_deleted_shard_is_reported(shards):
    victim = first_shard(shards)
    victim.unlink()
    report = inspect_shards(str(shards))
    assert f"{victim}: listed in {shards / 'train.manifest.json'} but missing" in report.problems


def test_explicit_key_the_records_lack_is_a_problem(shards):
    report = inspect_shards(str(shards), InspectConfig(group_key="site"))
    assert report.problems[0].startswith("--group-key 'site': the records have no such key")


def test_foreign_shards_without_ids_are_not_duplicates(tmp_path):
    write_foreign_shard(tmp_path / "a-2.tfrec", [{"class": 0}, {"class": 1}], seed=1)
    write_foreign_shard(tmp_path / "b-2.tfrec", [{"class": 0}, {"class": 1}], seed=2)
    report = inspect_shards(str(tmp_path))
    assert not any("ids appear more than once" in p for p in report.problems)


def test_grid_into_a_new_folder(shards, tmp_path):
    result = inspect(shards, "--grid", tmp_path / "new" / "sheet.png")
    assert result.exit_code == 0 and (tmp_path / "new" / "sheet.png").exists()


def test_a_grid_onto_an_inspected_shard_is_refused(shards):
    victim = sorted(shards.glob("train*.tfrec"))[0]
    before = victim.read_bytes()
    result = inspect(f"{shards}/train*.tfrec", "--grid", victim)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: --grid {victim} and the input {victim} are the same file: choose another --grid"
    )
    assert victim.read_bytes() == before


def test_a_multi_hot_label_counts_each_tag_per_fold(tmp_path):
    from tests.helpers import make_image

    cells = ["haze primary", "water", "", "primary water haze"] * 4
    for i in range(len(cells)):
        make_image(tmp_path / "images" / f"t{i:02d}.jpg", (8, 8), seed=i)
    rows = "".join(f"t{i:02d},{cell}\n" for i, cell in enumerate(cells))
    (tmp_path / "tags.csv").write_text("image_id,tags\n" + rows)
    config = BuildConfig(
        images=str(tmp_path / "images"),
        out=str(tmp_path / "shards"),
        labels_csv=str(tmp_path / "tags.csv"),
        image=ImageConfig(size=(8, 8)),
        multi_label=True,
        shards=2,
        folds=2,
        workers=1,
    )
    build(config)
    report = inspect_shards(str(tmp_path / "shards"), InspectConfig(deep=True))
    assert report.ok, report.problems
    assert report.multi_label and report.schema["tags"]["length"] == 3
    assert report.fold_table() == {
        "0": {"haze": 4, "primary": 4, "water": 4},
        "1": {"haze": 4, "primary": 4, "water": 4},
    }
    assert report.fold_records() == {"0": 8, "1": 8}
    result = inspect(tmp_path / "shards")
    assert result.exit_code == 0, result.output
    assert "tags (tags, multi-label) per fold, records holding each:" in result.output
    table = "  fold         haze    primary      water  records\n  0               4"
    assert table in result.output


def test_inspect_and_the_reader_and_trainer_pick_the_same_label_key(tmp_path):
    from tfrec_tools.read.parse import resolve_format
    from tfrec_tools.train.data import training_data

    for f in range(2):  # both candidate label keys, with different values
        rows = [{"image_name": f"x{f}{i}", "label": i % 3, "target": i % 2} for i in range(4)]
        write_foreign_shard(tmp_path / f"train{f:02d}-4.tfrec", rows, seed=f)
    files = sorted(str(p) for p in tmp_path.glob("*.tfrec"))
    inspected = inspect_shards(files).keys["label"]
    read = resolve_format(files).keys.labels
    trained = training_data(files, image_size=None, num_folds=2, seed=0).heads[0].name
    assert (inspected, read, trained) == ("target", ("target",), "target")


def test_broken_files_are_problems_and_the_other_files_are_still_checked(tmp_path):
    from tests.malformed import JPEG_BYTES, compress, write_huge_frame

    write_foreign_shard(
        tmp_path / "a00-2.tfrec", [{"id": "a", "class": 0}, {"id": "b", "class": 1}]
    )
    huge = write_huge_frame(tmp_path / "a01-1.tfrec")  # TensorFlow would segfault on it
    zipped = write_foreign_shard(tmp_path / "a02-1.tfrec", [{"id": "c", "class": 0}])
    compress(zipped, "gzip")
    mixed = write_foreign_shard(tmp_path / "a03-3.tfrec", [{"id": "d", "class": 0}] * 2)
    mixed.write_bytes(mixed.read_bytes() + frame(JPEG_BYTES))
    report = inspect_shards(str(tmp_path))
    assert report.problems[:2] == [
        f"{huge}: record 0 (byte 0) claims 1152921504606846976 bytes, more than the whole file "
        "(112 bytes): the file is corrupted or not a TFRecord file; rebuild it",
        f"{zipped}: compressed with gzip: tfrec-tools reads uncompressed TFRecord files; "
        "decompress it with `gzip -dc < IN > OUT` (TFRecordDataset reads it only with "
        "compression_type='GZIP')",
    ]
    assert (
        f"{mixed}: record 2: not a tf.train.Example (Error parsing message with type "
        "'tensorflow.Example')" in report.problems
    )
    assert [f.records for f in report.files] == [2, 0, 0, 2]
    assert not any("the name says" in p for p in report.problems)  # counts of damaged files
    assert report.schema and report.keys["label"] == "class"


def test_a_file_tensorflow_would_segfault_on_is_exit_1_with_a_problem_line(tmp_path):
    """In a subprocess: the crash this guards against would take pytest down with it."""
    import subprocess
    import sys

    from tests.malformed import write_huge_frame

    path = write_huge_frame(tmp_path / "bad-1.tfrec")
    code = "import sys\nfrom tfrec_tools.cli import main\nmain(sys.argv[1:])\n"
    result = subprocess.run(
        [sys.executable, "-c", code, "inspect", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"  - {path}: record 0 (byte 0) claims 1152921504606846976 bytes" in result.stdout


# --- record index files ------------------------------------------------------------------


def test_a_wrong_index_is_a_problem_naming_it_and_its_first_wrong_line(shards):
    path = first_shard(shards)
    index = Path(f"{path}.idx")
    lines = index.read_text().splitlines()
    offset, length = lines[2].split()
    lines[2] = f"{offset} {int(length) + 1}"
    index.write_text("\n".join(lines) + "\n")
    result = inspect(shards)
    assert result.exit_code == 1
    assert (
        f"  - {index}: line 3 says '{offset} {int(length) + 1}', but record 2 of {path} is at "
        f"byte {offset}, {length} bytes long: the index does not match its shard; write it "
        f"again with `tfrec index --overwrite {path}`"
    ) in result.output


def test_an_index_the_manifest_lists_that_is_missing_is_a_problem(shards):
    path = first_shard(shards)
    Path(f"{path}.idx").unlink()
    report = inspect_shards(str(shards))
    assert report.problems == [
        f"{path}.idx: listed in {shards / 'train.manifest.json'} but missing; write it with "
        f"`tfrec index {path}`"
    ]


def test_foreign_shards_without_indexes_get_a_note_not_a_problem(tmp_path):
    from tfrec_tools.index import ensure_index

    for f in range(2):
        write_foreign_shard(tmp_path / f"x{f}-2.tfrec", [{"id": f"{f}a"}, {"id": f"{f}b"}])
    report = inspect_shards(str(tmp_path))
    assert report.ok, report.problems
    note = (
        "2 of 2 files have no record index (FILE.idx, which DALI and the tfrecord package "
        "read); `tfrec index` writes them"
    )
    assert note in report.notes
    ensure_index(str(tmp_path / "x0-2.tfrec"))
    ensure_index(str(tmp_path / "x1-2.tfrec"))
    report = inspect_shards(str(tmp_path))
    assert report.ok and not any("record index" in n for n in report.notes)


def test_a_clean_build_has_no_index_note(shards):
    assert not any("record index" in n for n in inspect_shards(str(shards)).notes)
