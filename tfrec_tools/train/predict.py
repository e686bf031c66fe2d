"""`tfrec predict`: reload the fold models of a run and predict new shards with TTA.

A run saves ``model.json`` (model options, heads, inputs, classes, image size, folds, the
augmentation settings) beside its ``fold-{k}.weights.h5`` files, so prediction needs only the
run folder and the shards.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tfrec_tools import fs
from tfrec_tools.errors import ConfigError
from tfrec_tools.read.augment import AugmentConfig, stored_augment
from tfrec_tools.read.pipeline import ReadConfig
from tfrec_tools.shard_files import load_manifest, resolve_files
from tfrec_tools.train import outputs
from tfrec_tools.train.callbacks import checkpoint_path
from tfrec_tools.train.data import check_test_inputs, check_test_size
from tfrec_tools.train.models import ModelConfig, build_model
from tfrec_tools.train.specs import HeadSpec, InputSpec
from tfrec_tools.train.strategy import detect_device
from tfrec_tools.train.tta import predict_tta

CARD = "model.json"


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
        )


def save_card(card: ModelCard, run_dir: str) -> None:
    outputs.write_json(card.to_json(), fs.join(run_dir, CARD))


def load_card(run_dir: str) -> ModelCard:
    path = fs.join(run_dir, CARD)
    if not fs.exists(path):
        raise ConfigError(f"{path} not found: --run must be a folder written by `tfrec train`")
    return ModelCard.from_json(json.loads(fs.read_bytes(path)))


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
        ConfigError: a fold checkpoint is missing, the shards do not fit the models, or the
            threshold is outside (0, 1).
    """
    card = load_card(run_dir)
    if threshold is not None:
        card = replace(card, heads=tuple(replace(h, threshold=threshold) for h in card.heads))
    files = resolve_files(list(shards), role="predict")
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
        model.load_weights(path)
        predictions.append(
            (
                fold,
                predict_tta(
                    model, files, read, card.heads, passes=tta, augment=card.augment, labeled=False
                ),
            )
        )
    blended = outputs.blend(predictions, weights, card.heads)
    outputs.write_csv(outputs.submission_frame(blended, card.heads, card.classes), out)
    return out


def _run_weights(run_dir: str, card: ModelCard) -> list[float] | None:
    path = fs.join(run_dir, "fold_weights.json")
    if not fs.exists(path):
        return None
    saved = json.loads(fs.read_bytes(path))
    return [saved[str(fold)] for fold in card.folds]
