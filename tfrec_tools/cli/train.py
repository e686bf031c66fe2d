"""`tfrec train` and `tfrec predict`: thin shells over `tfrec_tools.train`."""

from __future__ import annotations

import os

import click

from tfrec_tools.cli.defaults import (
    auto_lr_max,
    predict_inputs,
    run_dir_or_new,
    shard_args,
    training_inputs,
)
from tfrec_tools.cli.schedule_options import FLAGS, model_schedule_options
from tfrec_tools.cli.types import SIZE, AugmentType
from tfrec_tools.read.augment import DEFAULT_AUGMENT, PRESETS
from tfrec_tools.read.pipeline import CACHE_MODES
from tfrec_tools.train.config import AUGMENT_ON, SEED_MAX
from tfrec_tools.train.registry import available_models
from tfrec_tools.train.specs import DEFAULT_THRESHOLD


def _floats(ctx, param, value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"expected numbers separated by commas. Received: {value!r}"
        ) from None


def _loss_weights(ctx, param, values) -> tuple[tuple[str, float], ...]:
    pairs = []
    for value in values:
        name, _, weight = value.partition("=")
        try:
            pairs.append((name, float(weight)))
        except ValueError:
            raise click.BadParameter(f"expected LABEL=WEIGHT. Received: {value!r}") from None
    return tuple(pairs)


@click.command("train")
@click.argument("shards", nargs=-1)
@click.option(
    "--out",
    "run_dir",
    help="Run folder for models, OOF, report [default: a new runs/<date>-<n>].",
)
@click.option(
    "--test",
    multiple=True,
    help="Test shards to predict after each fold (repeatable) [default: with SHARDS a folder, "
    "the unlabeled set in it].",
)
@click.option(
    "--model",
    type=click.Choice(available_models()),
    metavar="MODEL",
    default="small_cnn",
    show_default=True,
    help=f"One of {', '.join(available_models())}. Each brings its training defaults "
    "(peak lr, warmup, schedule, batch).",
)
@click.option(
    "--weights",
    default="none",
    show_default=True,
    help="imagenet, none, or a PATH. none: the model's defaults for training from scratch; "
    "else its defaults for fine-tuning.",
)
@click.option("--size", type=SIZE, help="Image size to read at [default: the manifest's].")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Per replica; the global batch is this x replicas [default: the model's].",
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--freeze-epochs",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Progressive fine-tuning: the first N epochs train the heads with the backbone frozen, "
    "the rest unfreeze it (pretrained BatchNorm stays frozen). Below --epochs.",
)
@click.option(
    "--steps-per-execution",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Batches per compiled call: fewer host round trips (TPU: 8-32). Per-batch callbacks "
    "then run every N batches.",
)
@click.option("--fold", "folds", type=int, multiple=True, help="Run only these folds.")
@click.option(
    "--num-folds",
    type=click.IntRange(min=2),
    help="Folds over files for shards built without --folds.",
)
@click.option("--patience", type=click.IntRange(min=1), help="Early stopping patience [off].")
@click.option(
    "--augment",
    type=AugmentType(),
    metavar="PRESET|FILE.json",
    default=DEFAULT_AUGMENT,
    show_default=True,
    help=f"Preset ({', '.join(PRESETS)}) or a JSON file of AugmentConfig fields. standard: "
    "horizontal flips, small turns/zooms/shifts, mild colour; kaggle-melanoma adds vertical "
    "flips, shear, strong colour and cutout (for subjects with no up or down).",
)
@click.option(
    "--augment-on",
    type=click.Choice(AUGMENT_ON),
    default="host",
    show_default=True,
    help="Training augmentation in the tf.data pipeline, or as Keras layers in the model "
    "(on the accelerator; no cutout).",
)
@click.option(
    "--tta",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Prediction passes (1 = no augmentation).",
)
@click.option("--fold-weights", callback=_floats, help="Test blend weights, e.g. 1,1,2,1.")
@click.option(
    "--loss-weight",
    "loss_weights",
    multiple=True,
    callback=_loss_weights,
    help="Multi-output: LABEL=WEIGHT (repeatable).",
)
@click.option("--cache", type=click.Choice(CACHE_MODES), default="none", show_default=True)
@click.option(
    "--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True
)
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=42, show_default=True)
@click.option("--deterministic", is_flag=True, help="Op determinism: identical reruns.")
@click.option("--mixed-precision", is_flag=True, help="bfloat16 on TPU, float16 on GPU.")
@click.option("--description", default="run", show_default=True, help="Report name.")
@click.option("--report-dir", help="Where the report goes [default: RUN_DIR/reports].")
@click.option("--overwrite", is_flag=True, help="Replace the results of an earlier run.")
@click.option("--quiet", is_flag=True, help="No per-epoch lines from Keras.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Multi-label heads: a tag is predicted when its probability is above this (F1 "
    "scores, the tags in oof.csv and submission.csv; kept for tfrec predict).",
)
@model_schedule_options
def train_command(
    shards,
    run_dir,
    test,
    model,
    weights,
    size,
    batch_size,
    epochs,
    freeze_epochs,
    steps_per_execution,
    folds,
    num_folds,
    patience,
    augment,
    augment_on,
    tta,
    fold_weights,
    loss_weights,
    cache,
    dropout,
    seed,
    deterministic,
    mixed_precision,
    description,
    report_dir,
    overwrite,
    quiet,
    threshold,
    **schedule,
) -> None:
    """K-fold training on SHARDS: fold models, OOF scores, submission and a report.

    Example: tfrec train shards/ --model efficientnet_b0 --weights imagenet --epochs 12 --tta 5
    """
    from tfrec_tools.train.config import TrainConfig, resolve_defaults
    from tfrec_tools.train.lr_find import LrFindConfig
    from tfrec_tools.train.models import ModelConfig
    from tfrec_tools.train.report import learning_warnings
    from tfrec_tools.train.run import run_training

    model_config = ModelConfig(name=model, weights=weights, dropout=dropout)
    auto = schedule["lr_max"] == "auto"
    if auto and "TF_CONFIG" in os.environ:
        raise click.UsageError(
            "--lr-max auto runs on one machine: run `tfrec lr-find` first and pass its --lr-max"
        )
    labels = {**FLAGS, "batch_size": "--batch-size"}
    given = {**schedule, "lr_max": None if auto else schedule["lr_max"], "batch_size": batch_size}
    chosen = resolve_defaults(model_config, given, labels=labels, epochs=epochs)
    shards, test = training_inputs(shard_args(shards), tuple(test), click.echo)
    run_dir = run_dir_or_new(run_dir, click.echo)
    if auto:
        lr_max = auto_lr_max(
            LrFindConfig(
                shards=tuple(shards),
                model=model_config,
                image_size=size,
                batch_size=chosen.batch_size,
                fold=folds[0] if folds else 0,
                num_folds=num_folds,
                augment=augment,
                seed=seed,
            ),
            run_dir,
            click.echo,
        )
        labels["lr_max"] = "--lr-max auto (lr-find)"
        given["lr_max"] = lr_max
        chosen = resolve_defaults(model_config, given, labels=labels, epochs=epochs)
    config = TrainConfig(
        shards=tuple(shards),
        run_dir=run_dir,
        test=tuple(test),
        model=model_config,
        schedule=chosen.schedule,
        image_size=size,
        batch_size=chosen.batch_size,
        epochs=epochs,
        freeze_epochs=freeze_epochs,
        steps_per_execution=steps_per_execution,
        folds=tuple(folds) or None,
        num_folds=num_folds,
        patience=patience,
        augment=augment,
        augment_on=augment_on,
        tta=tta,
        fold_weights=fold_weights,
        loss_weights=loss_weights,
        cache=cache,
        seed=seed,
        deterministic=deterministic,
        mixed_precision=mixed_precision,
        description=description,
        report_dir=report_dir,
        overwrite=overwrite,
        verbose=0 if quiet else 2,
        threshold=threshold,
        sources=chosen.sources,
    )
    if config.freeze_epochs and config.model.weights is None:
        click.echo(
            f"note: --freeze-epochs {config.freeze_epochs} with --weights none trains the heads on "
            "a random backbone first; freezing pays off with pretrained weights (--weights "
            "imagenet or a file)"
        )
    result = run_training(config, say=click.echo)
    if result.scores:  # None on a worker that is not the chief
        for warning in learning_warnings(config, result.folds, result.scores):
            click.echo(f"Warning: {warning}", err=True)
    if result.submission_path:
        click.echo(f"submission: {result.submission_path}")
    if result.report_path:
        click.echo(f"report: {result.report_path}")


@click.command("predict")
@click.argument("shards", nargs=-1)
@click.option(
    "--run", "run_dir", help="A folder written by `tfrec train` [default: the newest in runs/]."
)
@click.option("--out", help="The CSV to write [default: RUN/predictions-<set>-tta<N>.csv].")
@click.option("--tta", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Per replica."
)
@click.option("--fold-weights", callback=_floats, help="Blend weights [default: the run's].")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Multi-label heads: predict the tags above this [default: the run's --threshold].",
)
def predict_command(shards, run_dir, out, tta, batch_size, fold_weights, threshold) -> None:
    """Predict SHARDS with every fold model of a run (TTA), blended into one CSV.

    Example: tfrec predict shards/ --tta 5   (the newest run; or --run runs/2026-01-31-1)
    """
    from tfrec_tools.train.predict import predict

    shards, run_dir, out = predict_inputs(shard_args(shards), run_dir, out, tta)
    click.echo(f"run: {run_dir}")
    path = predict(
        shards,
        run_dir,
        out,
        tta=tta,
        batch_size=batch_size,
        fold_weights=fold_weights,
        threshold=threshold,
    )
    click.echo(f"predictions: {path}")
