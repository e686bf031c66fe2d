"""The fit loop of one fold: progressive fine-tuning (a frozen backbone, then the whole model,
one checkpoint and one history over both phases), steps per execution, and per-fold settings
from Python (one run per fold, blended afterwards). CPU, 16-24 px, a few epochs."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from tests.helpers import make_dataset
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ConfigError
from tfrec_tools.read.augment import PRESETS
from tfrec_tools.train import kfold
from tfrec_tools.train.backbones import small_cnn
from tfrec_tools.train.config import TrainConfig
from tfrec_tools.train.data import FoldSplit
from tfrec_tools.train.kfold import Phase, fit_phases
from tfrec_tools.train.models import ModelConfig
from tfrec_tools.train.run import run_training
from tfrec_tools.train.schedules import ScheduleConfig
from tfrec_tools.train.strategy import Device

BACKBONE = "small_cnn_backbone"
FAST = ScheduleConfig(kind="constant", lr_max=1e-4)  # a peak of 8e-4 at batch 8, no warmup


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kfold")
    images, labels = make_dataset(root, n=48, groups=12, size=(16, 16))
    config = BuildConfig(
        images=str(images),
        labels_csv=str(labels),
        out=str(root / "shards"),
        image=ImageConfig(size=(16, 16)),
        folds=2,
        shards=4,
        group_col="patient_id",
        workers=1,
    )
    build(config)
    return root / "shards"


def train_config(shards: Path, run_dir: Path, **options) -> TrainConfig:
    return TrainConfig(
        shards=(f"{shards}/train*.tfrec",),
        run_dir=str(run_dir),
        schedule=FAST,
        batch_size=8,
        augment=PRESETS["none"],
        verbose=0,
        **options,
    )


def test_no_freeze_epochs_is_one_phase_as_built():
    config = TrainConfig(("s",), "run", epochs=5)
    assert fit_phases(config) == (Phase(0, 5),)
    frozen = TrainConfig(("s",), "run", epochs=5, freeze_epochs=2)
    assert fit_phases(frozen) == (Phase(0, 2, frozen=True), Phase(2, 5, frozen=False))


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"epochs": 3, "freeze_epochs": 3},
            "`freeze_epochs` must be < `epochs`: at least one epoch must train the unfrozen "
            "backbone. Received: freeze_epochs=3, epochs=3",
        ),
        ({"freeze_epochs": -1}, "`freeze_epochs` must be >= 0. Received: freeze_epochs=-1"),
        (
            {"steps_per_execution": 0},
            "`steps_per_execution` must be >= 1. Received: steps_per_execution=0",
        ),
    ],
)
def test_bad_freeze_and_execution_settings(options, message):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(("s",), "run", **options)
    assert str(caught.value) == message


class Recorder(keras.callbacks.Callback):
    """Every weight of the model at the start of each fit and at the end of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[dict[str, np.ndarray]] = []
        self.epochs: dict[int, dict[str, np.ndarray]] = {}
        self.iterations: list[int] = []  # optimizer steps per fit (a new optimizer each)

    def on_train_begin(self, logs=None) -> None:
        self.starts.append(snapshot(self.model))

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.epochs[epoch] = snapshot(self.model)

    def on_train_end(self, logs=None) -> None:
        self.iterations.append(int(self.model.optimizer.iterations.numpy()))


def snapshot(model) -> dict[str, np.ndarray]:
    return {v.path: np.array(v.numpy()) for v in model.weights}


def changed(before: dict, after: dict, names) -> set[str]:
    return {n for n in names if not np.array_equal(before[n], after[n])}


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    recorder, fold_callbacks = Recorder(), kfold.fold_callbacks
    monkeypatch.setattr(kfold, "fold_callbacks", lambda **kw: [*fold_callbacks(**kw), recorder])
    return recorder


@pytest.mark.slow
def test_frozen_epochs_keep_the_backbone_then_it_fine_tunes(shards, tmp_path, recorder):
    weights = str(tmp_path / "backbone.weights.h5")  # "pretrained": a backbone saved alone
    small_cnn((16, 16, 3), None).save_weights(weights)
    said: list[str] = []
    config = train_config(
        shards,
        tmp_path / "run",
        model=ModelConfig(weights=weights),
        epochs=3,
        freeze_epochs=1,
        folds=(0,),
        steps_per_execution=2,
    )
    result = run_training(config, say=said.append)

    model, start = recorder.model, recorder.starts[0]
    backbone = [v.path for v in model.get_layer(BACKBONE).weights]
    statistics = [n for n in backbone if "_bn/" in n]  # gamma, beta, moving mean and variance
    convolutions = [n for n in backbone if "_conv/" in n]
    assert changed(start, recorder.epochs[0], backbone) == set()  # the frozen epoch
    assert changed(start, recorder.epochs[0], ["label/kernel"]) == {"label/kernel"}
    assert changed(recorder.epochs[0], recorder.epochs[2], convolutions) == set(convolutions)
    assert changed(start, recorder.epochs[2], statistics) == set()  # pretrained BN stays
    # 24 training records, batch 8: 3 steps, run as whole executions of 2
    assert "fold 0: 2 train shards (2 steps/epoch), 2 validation shards" in said
    assert recorder.iterations == [2, 4]  # a new optimizer at the unfreeze

    fold = result.folds[0]
    assert fold.epochs_run == 3 and len(fold.history["val_accuracy"]) == 3
    best = int(np.argmax(fold.history["val_accuracy"]))
    assert fold.best_epoch == best
    assert changed(recorder.epochs[best], snapshot(model), backbone + ["label/kernel"]) == set()
    with open(tmp_path / "run" / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["fold"], r["epoch"]) for r in rows] == [("0", "0"), ("0", "1"), ("0", "2")]
    assert all(float(r["lr"]) == pytest.approx(8e-4) for r in rows)


@pytest.mark.slow
def test_per_fold_image_sizes_in_separate_runs_blend(shards, tmp_path):
    """The reference's IMG_SIZES / EFF_NETS per fold: one run per fold, then the CSVs."""
    runs = []
    for fold, size in ((0, (16, 16)), (1, (24, 24))):
        config = train_config(
            shards,
            tmp_path / f"fold-{fold}",
            test=(f"{shards}/train*.tfrec",),  # any shards do as a test set here
            model=ModelConfig(name="small_cnn"),
            image_size=size,
            epochs=1,
            folds=(fold,),
        )
        runs.append(run_training(config, say=lambda _: None).run_dir)
    oof = pd.concat(pd.read_csv(f"{run}/oof.csv") for run in runs)
    assert sorted(oof["fold"].unique()) == [0, 1] and len(oof) == 48
    subs = [pd.read_csv(f"{run}/submission.csv", index_col="image_id") for run in runs]
    columns = [c for c in subs[0].columns if c.startswith("label_p_")]
    blend = sum(s[columns] for s in subs) / len(subs)
    assert blend.shape == (48, 3) and np.allclose(blend.sum(axis=1), 1, atol=1e-5)


def test_each_worker_predicts_its_share_and_hands_it_to_the_chief(monkeypatch):
    predicted, handed, said = [], [], []

    def predict(plan, model, files, *, labeled):
        predicted.append((files, labeled))
        return files

    def exchange(device, run_dir, fold, files, mine):
        handed.append((run_dir, fold, files, mine))
        return {"oof": None, "test": None}

    monkeypatch.setattr(kfold, "_predict", predict)
    monkeypatch.setattr(kfold, "exchange", exchange)
    monkeypatch.setattr(kfold, "worker_index", lambda device: 1)
    device = Device(object(), "CPU", 2, workers=2, is_chief=False)
    tests = ("t00-3.tfrec", "t01-4.tfrec")
    plan = kfold.Plan(TrainConfig(("s",), "run"), None, device, 16, tests, ("val_loss", "min"), "x")
    valid = ("v00-5.tfrec", "v01-6.tfrec", "v02-7.tfrec")
    split = FoldSplit(2, ("a-1.tfrec",), valid)
    assert kfold._predict_fold(plan, split, None, said.append) == (None, None)
    assert predicted == [(("v01-6.tfrec",), True), (("t01-4.tfrec",), False)]
    assert said == [
        "fold 2: worker 1 of 2 predicted 6 validation images (v01-6.tfrec) and 4 test images "
        "(t01-4.tfrec)"
    ]
    mine = {"oof": ("v01-6.tfrec",), "test": ("t01-4.tfrec",)}
    assert handed == [("run", 2, {"oof": valid, "test": tests}, mine)]


def test_a_worker_share_of_files_whose_names_state_no_count_is_logged_not_refused():
    assert kfold._count(("test-00000-of-00002.tfrec",)) == "an unknown number of"
    assert kfold._count(("t00-3.tfrec", "t01-4.tfrec")) == 7
    assert kfold._count(()) == 0
