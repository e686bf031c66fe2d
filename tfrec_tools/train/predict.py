"""`tfrec predict`: reload the fold models of a run and predict new shards with TTA.

A run saves ``model.json`` (model options, heads, inputs, classes, image size, folds, the
augmentation settings) beside its ``fold-{k}.weights.h5`` files, so prediction needs only the
run folder and the shards.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tfrec_tools import fs, naming
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.quiet import import_tensorflow, tf_error_text
from tfrec_tools.read.augment import AugmentConfig, stored_augment
from tfrec_tools.read.pipeline import ReadConfig
from tfrec_tools.shard_files import find_manifest, load_manifest, resolve_files
from tfrec_tools.train import outputs
from tfrec_tools.train.callbacks import checkpoint_path
from tfrec_tools.train.data import check_test_inputs, check_test_size
from tfrec_tools.train.models import ModelConfig, build_model
from tfrec_tools.train.specs import HeadSpec, InputSpec
from tfrec_tools.train.strategy import detect_device
from tfrec_tools.train.tta import predict_tta
from tfrec_tools.urls import check_url

CARD = "model.json"
DAMAGED_FOLD = (
    "the run may be damaged; train that fold again, or copy the file back from where the run "
    "was made"
)


@dataclass(frozen=True)
class ModelCard:
    """What rebuilding a run's models needs. ``augment``: the training settings, which TTA
    passes apply; ``augment_on``: "model" when ``model.augment`` holds them as Keras layers
    (derived from it), else "host"."""

    model: ModelConfig
    heads: tuple[HeadSpec, ...]
    inputs: InputSpec
    classes: dict[str, tuple[str, ...]]
    folds: tuple[int, ...]
    augment: AugmentConfig
    seed: int
    vocabularies: dict[str, tuple[str, ...]]
    # fold (as text) -> SHA-256 of its fold-K.weights.h5; empty in runs that kept none
    weights_sha256: dict[str, str] = field(default_factory=dict)
    augment_on: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "augment_on", "host" if self.model.augment is None else "model")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelCard:
        inputs, model = data["inputs"], ModelConfig(**data["model"])
        return cls(
            model=model,
            heads=tuple(HeadSpec(**h) for h in data["heads"]),
            inputs=InputSpec(
                tuple(inputs["image_size"]) if inputs["image_size"] else None,
                tuple(inputs["numeric"]),
                tuple(tuple(c) for c in inputs["categorical"]),
            ),
            classes={k: tuple(v) for k, v in data["classes"].items()},
            folds=tuple(data["folds"]),
            augment=stored_augment(data["augment"], in_model=model.augment),
            seed=data["seed"],
            vocabularies={k: tuple(v) for k, v in data["vocabularies"].items()},
            weights_sha256=data.get("weights_sha256", {}),
        )


def save_card(card: ModelCard, run_dir: str) -> None:
    outputs.write_json(card.to_json(), fs.join(run_dir, CARD))


def load_card(run_dir: str) -> ModelCard:
    path = fs.join(run_dir, CARD)
    if not fs.exists(path):
        raise ConfigError(f"{path} not found: --run must be a folder written by `tfrec train`")
    try:
        return ModelCard.from_json(json.loads(fs.read_bytes(path)))
    except (ValueError, KeyError, TypeError) as err:  # UnicodeDecodeError is a ValueError
        reason = f"no key {err}" if isinstance(err, KeyError) else " ".join(str(err).split())
        raise ConfigError(
            f"{path} is not a model card `tfrec train` wrote ({reason}): the run may be damaged; "
            "copy the file back from where the run was made, or train again"
        ) from err


def predict(
    shards: Sequence[str],
    run_dir: str,
    out: str,
    *,
    tta: int = 1,
    batch_size: int = 32,
    fold_weights: Sequence[float] | None = None,
    threshold: float | None = None,
) -> str:
    """Predict ``shards`` with every fold model of ``run_dir``, blend, write ``out`` (CSV).
    ``threshold``: multi-label heads predict the tags above it; None: the run's
    (``model.json``, from ``tfrec train --threshold``).

    Raises:
        ConfigError: a URL of an unknown scheme, an ``out`` that is a folder or one of the
            inputs (shard, manifest, run file), a fold checkpoint that is missing, replaced or
            damaged, shards that do not fit the models, or a threshold outside (0, 1).
        ShardError: the shards cannot be read (e.g. an image that does not decode).
    """
    for value in shards:
        check_url(value, "shards")
    check_url(run_dir, "run_dir")
    check_url(out, "out")
    card = load_card(run_dir)
    if threshold is not None:
        card = replace(card, heads=tuple(replace(h, threshold=threshold) for h in card.heads))
    files = resolve_files(list(shards), role="predict")
    _check_out(out, files, run_dir)
    check_test_size(load_manifest(files), card.inputs.image_size, given=False)
    check_test_inputs(files, card.inputs, card.vocabularies)
    paths = {fold: checkpoint_path(run_dir, fold) for fold in card.folds}
    missing = [p for p in paths.values() if not fs.exists(p)]
    if missing:
        raise ConfigError(f"{missing[0]} is missing: train that fold again, or copy the file back")
    weights = outputs.normalised_weights(fold_weights or _run_weights(run_dir, card), card.folds)
    device = detect_device(multi_worker=False)  # one process predicts; TF_CONFIG is ignored
    read = ReadConfig(
        batch_size=device.global_batch(batch_size),
        image_size=card.inputs.image_size,
        seed=card.seed,
    )
    predictions = []
    for fold, path in paths.items():
        with device.strategy.scope():
            # the checkpoint holds every weight: no ImageNet download at prediction time
            model = build_model(replace(card.model, weights=None), card.inputs, card.heads)
        _load_fold(model, path, fold, card.weights_sha256.get(str(fold)))
        with _read_errors(files):
            passes = predict_tta(
                model, files, read, card.heads, passes=tta, augment=card.augment, labeled=False
            )
        predictions.append((fold, passes))
    blended = outputs.blend(predictions, weights, card.heads)
    outputs.write_csv(outputs.submission_frame(blended, card.heads, card.classes), out)
    return out


def _check_out(out: str, files: Sequence[str], run_dir: str) -> None:
    """Refuse an ``out`` that is a folder, or the same file as an input: a shard, their
    manifest, or a file of the run (as `cp` refuses to copy a file onto itself)."""
    if fs.isdir(out):
        raise ConfigError(
            f"--out {out} is a folder: name the CSV to write, e.g. "
            f"{fs.join(out, 'predictions.csv')}"
        )
    if not fs.exists(out):
        return
    manifest = find_manifest(files)
    inputs = [("the input shard", f) for f in files]
    inputs += [("the manifest", manifest)] if manifest else []
    names = [n for n in fs.listdir(run_dir) if outputs.is_run_file(n)]
    inputs += [("the run's file", fs.join(run_dir, n)) for n in names]
    for what, path in inputs:
        if fs.same_file(out, path):
            raise ConfigError(
                f"--out {out} and {what} {path} are the same file: choose another --out"
            )


def _load_fold(model: Any, path: str, fold: int, sha256: str | None) -> None:
    """Load a fold's weights file, checked against the checksum the run saved (if any).

    Raises:
        ConfigError: the file was replaced, truncated or saved from another model.
    """
    if sha256 and fs.sha256(path) != sha256:
        raise ConfigError(
            f"{path} is not the file fold {fold} saved (its SHA-256 differs from the one in "
            f"{CARD}): {DAMAGED_FOLD}"
        )
    try:
        model.load_weights(path)
    except (ValueError, OSError, KeyError, TypeError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ConfigError(f"{path} could not be loaded ({reason}): {DAMAGED_FOLD}") from err


@contextmanager
def _read_errors(files: Sequence[str]) -> Iterator[None]:
    """TensorFlow's read and decode errors (a corrupted record, an image that does not decode)
    as one line naming the files and the check that finds the record."""
    tf = import_tensorflow()
    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
        shown = ", ".join(files[:3]) + (f", ... ({len(files)} files)" if len(files) > 3 else "")
        folders = " ".join(shlex.quote(f) for f in sorted({naming.folder_name(f) for f in files}))
        raise ShardError(
            f"reading the shards to predict ({shown}) failed: {tf_error_text(err)}; run "
            f"`tfrec inspect --deep {folders}` to find the damaged record"
        ) from err


def _run_weights(run_dir: str, card: ModelCard) -> list[float] | None:
    path = fs.join(run_dir, "fold_weights.json")
    if not fs.exists(path):
        return None
    saved = json.loads(fs.read_bytes(path))
    return [saved[str(fold)] for fold in card.folds]
