"""A tiny build shared by the loader tests: 48 records in 4 shards of 2 folds, no index files
(tests that want them write them with ``write_index``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import make_dataset
from tfrec_tools import naming
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.records import iter_frames


def write_index(shard: Path) -> Path:
    """The shard's index file in the fixed format: "{offset} {length}" per record."""
    offsets = list(iter_frames(str(shard)))
    ends = [*offsets[1:], shard.stat().st_size]
    lines = "".join(f"{start} {end - start}\n" for start, end in zip(offsets, ends))
    index = Path(naming.index_name(str(shard)))
    index.write_text(lines)
    return index


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("loader_build")
    images, csv_path = make_dataset(root)
    config = BuildConfig(
        images=str(images),
        out=str(root / "out"),
        labels_csv=str(csv_path),
        image=ImageConfig(size=(16, 16)),
        shards=4,
        folds=2,
        feature_cols=("age", "site"),
        workers=1,
    )
    build(config)
    for index in (root / "out").glob("*.idx"):  # the build may write them: start without
        index.unlink()
    return root / "out"


@pytest.fixture
def shards(built, tmp_path) -> Path:
    """A copy of the build this test may change."""
    return Path(shutil.copytree(built, tmp_path / "shards"))
