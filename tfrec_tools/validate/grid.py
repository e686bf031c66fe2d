"""Contact-sheet tiles of inspected shards: image bytes and an "id / label · fold" caption."""

from __future__ import annotations

import math

from tfrec_tools.errors import ShardError
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.records import feature_values, iter_examples
from tfrec_tools.validate.report import InspectReport
from tfrec_tools.validate.scan import as_text, record_value


def grid_tiles(report: InspectReport, count: int = 16) -> list[tuple[bytes, str]]:
    """(image bytes, "id\\nlabel · fold") for up to ``count`` records, taken round-robin from
    the files so every shard shows."""
    tf = import_tensorflow()
    keys, per_file = report.keys, max(1, math.ceil(count / max(1, len(report.files))))
    tiles = []
    for file in report.files:
        try:  # never past the records the scan could read: TensorFlow crashes on some
            for example in iter_examples(file.path, limit=min(per_file, file.records)):
                tiles.append(_tile(example.features.feature, keys, report))
        except (tf.errors.OpError, ShardError):
            continue
    return tiles[:count]


def _tile(features, keys: dict[str, str | None], report: InspectReport) -> tuple[bytes, str]:
    label, fold = record_value(features, keys["label"]), record_value(features, keys["fold"])
    shown = "" if label is None else report.class_names.get(label, label)
    if report.multi_label and label is not None:
        hot = feature_values(features[keys["label"]])
        shown = " ".join(str(report.class_names.get(i, i)) for i, v in enumerate(hot) if v)
    caption = f"{as_text(record_value(features, keys['id'], ''))}\n{shown}"
    caption += "" if fold is None else f" · fold {fold}"
    return record_value(features, keys["image"], b""), caption
