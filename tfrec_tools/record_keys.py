"""The keys of a shard's records: probed from its first record, and for foreign shards (no
manifest) guessed per role (image, id, label, group), the same way for `inspect` and the reader."""

from __future__ import annotations

from collections.abc import Mapping

from tfrec_tools.errors import ShardError
from tfrec_tools.quiet import import_tensorflow, tf_error_text
from tfrec_tools.records import feature_kind, feature_values, iter_examples
from tfrec_tools.schema import DTYPES, FeatureSpec, Schema

# Names public Kaggle shards use, most common first (melanoma/cassava: image, image_name,
# target; flowers: image, id, class; others: image_raw, img, label).
IMAGE_KEYS = ("image", "image_raw", "img", "image_bytes", "image/encoded", "jpeg", "bytes")
ID_KEYS = ("image_id", "image_name", "id", "img_id", "name", "filename", "file_name")
# `target` before `label`: a guess is only made for shards without a manifest, i.e. foreign
# ones (ours name their label in the manifest, whatever --label-col was). Those are mostly
# public Kaggle sets, whose reference notebooks read `target`: a shard holding both must train
# on the column the notebook it is compared with trains on. `--label-key` picks the other one.
LABEL_KEYS = ("target", "label", "class", "labels", "category", "diagnosis", "y")
GROUP_KEYS = ("patient_id", "group", "group_id", "subject_id")

# role -> (names tried in order, dtypes a key of that role may have)
GUESSES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "image": (IMAGE_KEYS, ("bytes",)),
    "id": (ID_KEYS, ("bytes", "int64")),
    "label": (LABEL_KEYS, ("int64", "float")),  # scalar labels only: a class index or a value
    "group": (GROUP_KEYS, DTYPES),
}


def guess_key(role: str, kinds: Mapping[str, str]) -> str | None:
    """The first name tried for ``role`` (one of ``GUESSES``) that ``kinds`` (key -> dtype)
    holds with a dtype the role allows, else None."""
    names, dtypes = GUESSES[role]
    return next((name for name in names if kinds.get(name) in dtypes), None)


def first_features(path: str):
    """The feature map of the first record of ``path``, or None when it holds no record.

    Raises:
        ShardError: the file cannot be read.
    """
    tf = import_tensorflow()
    try:
        return next((example.features.feature for example in iter_examples(path)), None)
    except tf.errors.OpError as err:
        raise ShardError(f"{path}: cannot read a record ({tf_error_text(err)})") from err


def probe_schema(path: str) -> Schema:
    """The keys and kinds of the first record of a shard (for shards with no manifest); keys
    with no value are left out.

    Raises:
        ShardError: the file cannot be read or holds no record.
    """
    features = first_features(path)
    if features is None:
        raise ShardError(f"{path}: the file holds no record")
    specs = []
    for key in sorted(features):
        kind, length = feature_kind(features[key]), len(feature_values(features[key]))
        if kind is not None:
            specs.append(FeatureSpec(key, kind, () if length == 1 else (length,)))
    return Schema(tuple(specs))
