"""record_keys: the one guess of foreign keys per role, and the schema of a first record."""

from __future__ import annotations

import pytest

from tests.helpers import write_foreign_shard
from tfrec_tools.errors import ShardError
from tfrec_tools.record_keys import guess_key, probe_schema
from tfrec_tools.schema import FeatureSpec, Schema


@pytest.mark.parametrize(
    ("role", "kinds", "expected"),
    [
        ("label", {"label": "int64", "target": "int64"}, "target"),  # Kaggle notebooks' key
        ("label", {"label": "bytes", "class": "int64"}, "class"),  # names are not labels
        ("image", {"img": "bytes", "image": "int64"}, "img"),
        ("id", {"name": "bytes", "filename": "bytes"}, "name"),
        ("group", {"subject_id": "int64"}, "subject_id"),
        ("group", {"site": "bytes"}, None),
    ],
)
def test_guess_key_takes_the_first_name_of_an_allowed_dtype(role, kinds, expected):
    assert guess_key(role, kinds) == expected


def test_probe_schema_of_a_foreign_shard(tmp_path):
    path = write_foreign_shard(tmp_path / "a-1.tfrec", [{"id": "a", "target": 1}])
    assert probe_schema(str(path)) == Schema(
        (FeatureSpec("id", "bytes"), FeatureSpec("image", "bytes"), FeatureSpec("target", "int64"))
    )


def test_probe_schema_of_an_empty_file_names_it(tmp_path):
    (tmp_path / "a-0.tfrec").write_bytes(b"")
    with pytest.raises(ShardError, match=r"a-0.tfrec: the file holds no record"):
        probe_schema(str(tmp_path / "a-0.tfrec"))
