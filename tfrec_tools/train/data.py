"""What a training run reads: the shards, their labels (-> model heads), their feature columns
(-> model inputs), the image size, and the fold splits over files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tfrec_tools import naming
from tfrec_tools.errors import ConfigError
from tfrec_tools.manifest import Manifest
from tfrec_tools.shard_files import load_manifest, resolve_files
from tfrec_tools.train.specs import (
    DEFAULT_THRESHOLD,
    HeadSpec,
    InputSpec,
    heads_from_manifest,
    inputs_from_manifest,
)


@dataclass(frozen=True)
class FoldSplit:
    fold: int
    train: tuple[str, ...]
    valid: tuple[str, ...]


@dataclass(frozen=True)
class TrainData:
    files: tuple[str, ...]
    manifest: Manifest | None
    heads: tuple[HeadSpec, ...]
    inputs: InputSpec
    classes: dict[str, tuple[str, ...]]  # head name -> class names (or tags, multilabel)
    vocabularies: dict[str, tuple[str, ...]]  # categorical feature -> vocabulary
    splits: tuple[FoldSplit, ...]  # every fold, whether it runs or not

    @property
    def image_size(self) -> tuple[int, int]:
        assert self.inputs.image_size is not None
        return self.inputs.image_size


def training_data(
    shards: Sequence[str],
    *,
    image_size: tuple[int, int] | None,
    num_folds: int | None,
    seed: int,
    threshold: float = DEFAULT_THRESHOLD,
) -> TrainData:
    """Resolve the shards and everything the model and the fold loop need from them;
    ``threshold`` goes to multi-label heads (the probability above which a tag is predicted).

    Raises:
        ConfigError: no labels, no image size, or fold options the shards cannot satisfy.
        ShardError: no shards, or a file TensorFlow cannot read (see ``resolve_files``).
    """
    files = tuple(resolve_files(list(shards), role="train"))
    manifest = load_manifest(files)
    if manifest is None:
        return _foreign_data(files, image_size=image_size, num_folds=num_folds, seed=seed)
    if not manifest.labels:
        raise ConfigError(
            f"the shards of {manifest.name!r} hold no labels: train needs shards built with a "
            "labels CSV (unlabeled shards are for `tfrec predict`)"
        )
    size = image_size or (tuple(manifest.image["size"]) if manifest.image["size"] else None)
    if size is None:
        raise ConfigError("the shards store images of varying size (--fit keep): pass --size")
    heads = heads_from_manifest(manifest, threshold=threshold)
    classes = {s.name: s.classes for s in manifest.labels if s.kind != "regression"}
    inputs = inputs_from_manifest(manifest, image_size=size)
    vocabularies = {c.name: c.vocabulary for c in manifest.features if c.kind == "categorical"}
    splits = _splits(files, manifest, num_folds, seed)
    return TrainData(files, manifest, heads, inputs, classes, vocabularies, splits)


def _foreign_data(
    files: tuple[str, ...], *, image_size: tuple[int, int] | None, num_folds: int | None, seed: int
) -> TrainData:
    """Shards with no manifest (public Kaggle sets): keys guessed from the first record as the
    reader guesses them, classes from the label values, K-fold over the files."""
    from tfrec_tools.read.parse import guess_keys, probe_image_size
    from tfrec_tools.record_keys import probe_schema

    schema = probe_schema(files[0])
    keys = guess_keys(schema, files[0])
    if not keys.labels:
        raise ConfigError(
            f"{files[0]}: no manifest beside the shards and no label key in the records "
            f"(they hold {', '.join(schema.names)}): train needs labeled shards"
        )
    label = keys.labels[0]
    size = image_size or probe_image_size(files[0], keys.image)
    dtype = {s.name: s.dtype for s in schema.features}[label]
    head, classes = _foreign_head(files, label, dtype)
    inputs = InputSpec(image_size=tuple(size))
    splits = _splits(files, None, num_folds, seed)
    return TrainData(files, None, (head,), inputs, classes, {}, splits)


def _foreign_head(
    files: tuple[str, ...], label: str, dtype: str
) -> tuple[HeadSpec, dict[str, tuple[str, ...]]]:
    """Integer labels: classes 0..max (binary when two); float labels: regression."""
    if dtype == "float":
        return HeadSpec(label, "regression"), {}
    from tfrec_tools.quiet import import_tensorflow

    tf = import_tensorflow()
    spec = {label: tf.io.FixedLenFeature([], tf.int64)}
    values = (
        tf.data.TFRecordDataset(list(files))
        .batch(4096)
        .map(lambda batch: tf.io.parse_example(batch, spec)[label])
    )
    top = max(int(tf.reduce_max(v)) for v in values)
    classes = tuple(str(i) for i in range(top + 1))
    kind = "binary" if len(classes) <= 2 else "multiclass"
    return HeadSpec(label, kind, 1 if kind == "binary" else len(classes)), {label: classes}


def _splits(
    files: tuple[str, ...], manifest: Manifest | None, num_folds: int | None, seed: int
) -> tuple[FoldSplit, ...]:
    """Folds stored by the build (shard -> fold), else K-fold over the files."""
    fold_of = {s.file: s.fold for s in manifest.shards} if manifest else {}
    if manifest and manifest.folds and num_folds in (None, manifest.folds):
        folds = [fold_of[naming.base_name(f)] for f in files]
        return tuple(
            FoldSplit(
                k,
                _pick(files, folds, lambda f, k=k: f != k),
                _pick(files, folds, lambda f, k=k: f == k),
            )
            for k in sorted(set(folds))
        )
    k = num_folds or 0
    if k < 2:
        raise ConfigError("the shards store no folds: pass --num-folds K to split the files K ways")
    if k > len(files):
        raise ConfigError(
            f"--num-folds {k} needs at least {k} shard files; these shards have {len(files)}: "
            f"pass --num-folds {len(files)} or fewer, or rebuild with more --shards"
        )
    from sklearn.model_selection import KFold

    splitter = KFold(k, shuffle=True, random_state=seed)
    return tuple(
        FoldSplit(i, tuple(files[j] for j in train), tuple(files[j] for j in valid))
        for i, (train, valid) in enumerate(splitter.split(files))
    )


def _pick(files, folds, keep) -> tuple[str, ...]:
    return tuple(f for f, fold in zip(files, folds) if keep(fold))


def chosen_splits(data: TrainData, folds: tuple[int, ...] | None) -> tuple[FoldSplit, ...]:
    """The splits of ``folds`` (all when None), checked against the folds there are."""
    known = [s.fold for s in data.splits]
    if folds is None:
        return data.splits
    unknown = sorted(set(folds) - set(known))
    if unknown:
        raise ConfigError(
            f"--fold {unknown[0]} does not exist: the shards have folds "
            f"{', '.join(map(str, known))}"
        )
    return tuple(s for s in data.splits if s.fold in folds)


def check_test_size(test_manifest: Manifest | None, size: tuple[int, int], given: bool) -> None:
    """Test shards stored at another size than training would be resized silently: refuse."""
    stored = test_manifest.image.get("size") if test_manifest else None
    if stored and tuple(stored) != tuple(size) and not given:
        raise ConfigError(
            f"the test shards store {stored[0]}x{stored[1]} images, training uses "
            f"{size[0]}x{size[1]}: rebuild them with --size {size[0]}x{size[1]}, or pass --size "
            "to resize both when reading"
        )


def check_test_inputs(
    files: Sequence[str], inputs: InputSpec, vocabularies: dict[str, tuple[str, ...]]
) -> None:
    """Test shards must carry every tabular feature the model takes, coded as in training."""
    from tfrec_tools.record_keys import probe_schema

    needed = [*inputs.numeric, *(name for name, _ in inputs.categorical)]
    have = set(probe_schema(files[0]).names)
    missing = [name for name in needed if name not in have]
    if missing:
        flags = " ".join(f"--feature-col {name}" for name in missing)
        raise ConfigError(
            f"{files[0]}: the model also takes {', '.join(missing)}, which these shards do not "
            f"hold: build them from a CSV with {flags}"
        )
    manifest = load_manifest(files)
    for column in manifest.features if manifest else ():
        expected = vocabularies.get(column.name)
        if expected is not None and column.vocabulary != expected:
            raise ConfigError(
                f"the test shards code {column.name!r} with another vocabulary than training "
                f"({', '.join(column.vocabulary[:4])} vs {', '.join(expected[:4])}): rebuild "
                "them with --vocab-from <the training manifest>"
            )
