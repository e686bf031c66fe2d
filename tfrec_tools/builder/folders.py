"""Where a build's labels come from: a CSV, class folders (``images/cat/1.jpg``: the folder
name is the label, as in Keras's ``image_dataset_from_directory``), or nowhere.

The rule (``--labels-from auto``):
- a LABELS_CSV is given: the CSV's label column (``--label-col``, else ``label``/``target``);
- no CSV, every image exactly one folder deep, in at least 2 folders: class folders;
- no CSV, every image at the top level: no labels;
- anything else is ambiguous and stops with a message saying what was found.
``--labels-from folders`` forces class folders (an image nested deeper takes the name of its
top folder; an image at the top level is rejected); ``--labels-from none`` forces no labels.
Classes are the folder names sorted as strings, as Keras sorts them (``10`` before ``2``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pandas as pd

from tfrec_tools.builder.config import BuildConfig
from tfrec_tools.builder.table import LABEL_CANDIDATES, TAG_CANDIDATES
from tfrec_tools.errors import ConfigError

MIN_CLASS_FOLDERS = 2  # one folder of images is a container, not a class


def label_source(config: BuildConfig, images: Sequence[str], table: pd.DataFrame | None) -> str:
    """The label source of this build, "csv", "folders" or "none", by the rule above
    (``images``: the relative paths of the image files).

    Raises:
        ConfigError: the layout is ambiguous and ``labels_from`` is "auto".
    """
    if config.labels_from != "auto":
        return config.labels_from
    depths = Counter(rel.count("/") for rel in images)
    folders = {rel.split("/", 1)[0] for rel in images if "/" in rel}
    class_layout = set(depths) == {1} and len(folders) >= MIN_CLASS_FOLDERS
    if table is not None:
        if class_layout and not _has_label_column(config, table):
            raise ConfigError(
                f"{config.labels_csv} has no label column and the images of {config.images} sit "
                f"in {len(folders)} class folders ({_examples(folders)}): pass --label-col COLUMN "
                "to label from the CSV, --labels-from csv to build from the CSV without labels, "
                "or drop the CSV to label by folder name"
            )
        return "csv"
    if class_layout:
        return "folders"
    if set(depths) <= {0}:
        return "none"
    if set(depths) == {1}:  # a single folder holding every image: a container, not classes
        return "none"
    raise ConfigError(
        f"{config.images}: images at {len(depths)} depths ({_depths(depths)}), so neither class "
        "folders (every image one folder deep) nor a flat folder; pass --labels-from folders "
        "(the top folder is the label, top-level images are rejected) or --labels-from none"
    )


def class_of(rel_path: str) -> str | None:
    """The class of an image under class folders: its top folder; None at the top level."""
    return rel_path.split("/", 1)[0] if "/" in rel_path else None


def _has_label_column(config: BuildConfig, table: pd.DataFrame) -> bool:
    candidates = TAG_CANDIDATES if config.multi_label else LABEL_CANDIDATES
    return bool(config.label_cols) or any(c in table.columns for c in candidates)


def _examples(names: set[str]) -> str:
    shown = sorted(names)[:3]
    return ", ".join(shown) + (", ..." if len(names) > 3 else "")


def _depths(depths: Counter) -> str:
    words = {0: "at the top level", 1: "one folder down"}
    return ", ".join(
        f"{count} {words.get(depth, f'{depth} folders down')}"
        for depth, count in sorted(depths.items())
    )
