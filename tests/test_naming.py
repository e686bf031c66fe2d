from __future__ import annotations

import pytest

from tfrec_tools import naming
from tfrec_tools.errors import ShardError


def test_shard_name_round_trip():
    name = naming.shard_name("train", 7, 16, 1233)
    assert name == "train07-1233.tfrec"
    assert naming.parse_shard_name(name) == ("train", 7, 1233)
    assert naming.parse_count(name) == 1233


def test_index_width_grows_with_shard_count():
    assert naming.shard_stem("train", 3, 100) == "train03"
    assert naming.shard_stem("train", 3, 101) == "train003"
    assert naming.shard_stem("train", 0, 1) == "train00"


def test_partial_name_is_not_a_shard():
    partial = naming.partial_name("train", 2, 16, pid=4242)
    assert partial == "train02.4242.tfrec.partial"
    assert not partial.endswith(".tfrec")
    assert naming.parse_count(partial) is None


def test_count_reads_base_name_only():
    # The notebooks' regex r"-([0-9]*)\." reads "2" from the folder "data-2.1/".
    files = ["gs://bucket/data-2.1/train00-100.tfrec", "/x/data-7.0/train01-23.tfrec"]
    assert naming.count_data_items(files) == 123


def test_count_accepts_kaggle_names():
    assert naming.count_data_items(["ld_train00-1338.tfrec", "test-12.tfrecords"]) == 1350


def test_count_without_number_names_the_file():
    with pytest.raises(ShardError, match=r"data-2\.1/train\.tfrec: the file name states no record"):
        naming.count_data_items(["data-2.1/train.tfrec"])


def test_partial_belongs_to_its_own_build_only():
    assert naming.is_partial_of("out/train03.tfrec.partial", "train")
    assert naming.is_partial_of("out/train03.4242.tfrec.partial", "train")
    assert not naming.is_partial_of("out/train03.x.tfrec.partial", "train")
    assert not naming.is_partial_of("out/train03.tfrec.partial", "tr")
    assert not naming.is_partial_of("out/train03-5.tfrec", "train")


def test_tfds_style_sharded_names_state_no_count():
    assert naming.parse_count("train.tfrecord-00003-of-00010") is None
    assert naming.parse_count("part-00000-of-00010.tfrecord") is None


def test_side_file_names():
    assert naming.rejected_name("train") == "train.rejected.csv"
    assert naming.unmatched_name("train") == "train.unmatched.txt"
    assert naming.state_dir_name("train") == ".train.build"


def test_state_dir_is_a_hidden_folder_with_a_name():
    assert naming.is_state_dir(naming.state_dir_name("train"))
    assert naming.is_state_dir("gs://bucket/out/.ld_train.build")
    assert not naming.is_state_dir("train.build")  # not hidden
    assert not naming.is_state_dir(".build")  # no build name
    assert not naming.is_state_dir(".train.build/plan.json")


def test_temp_names_hold_the_pid_and_are_recognised():
    temp = naming.temp_name("out/train.manifest.json", 4242)
    assert temp == "out/train.manifest.json.4242.partial"
    assert naming.is_temp_of(temp, "train.manifest.json")
    assert naming.is_temp_of("train.manifest.json.partial", "train.manifest.json")
    assert not naming.is_temp_of("train.manifest.json", "train.manifest.json")
    assert not naming.is_temp_of("train.manifest.json.x.partial", "train.manifest.json")
    assert naming.lock_name("train") == ".train.lock"


def test_size_folder_names_a_square_size_by_its_side():
    assert naming.size_folder((256, 256)) == "256"
    assert naming.size_folder((256, 384)) == "256x384"


@pytest.mark.parametrize(
    ("path", "expected"),
    [("256", True), ("out/256x384", True), ("16x", False), ("x16", False), ("²56", False)],
)
def test_is_size_folder_reads_back_what_size_folder_writes(path, expected):
    assert naming.is_size_folder(path) is expected
    assert naming.is_size_folder(naming.size_folder((256, 384)))
