"""`tfrec train` and `tfrec predict`: thin shells over `tfrec_tools.train`."""

from __future__ import annotations

import click

from tfrec_tools.cli.schedule_options import schedule_config, schedule_options
from tfrec_tools.cli.types import SIZE

CACHE_CHOICES = ("none", "encoded", "decoded")


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
@click.argument("shards", nargs=-1, required=True)
@click.option("--out", "run_dir", required=True, help="Run folder for models, OOF, report.")
@click.option("--test", multiple=True, help="Test shards to predict after each fold (repeatable).")
@click.option(
    "--model",
    default="small_cnn",
    show_default=True,
    help="small_cnn, efficientnet_b0..b7, efficientnet_v2_*, resnet50.",
)
@click.option("--weights", default="none", show_default=True, help="imagenet, none, or a PATH.")
@click.option("--size", type=SIZE, help="Image size to read at [default: the manifest's].")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Per replica; the global batch is this x replicas.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--fold", "folds", type=int, multiple=True, help="Run only these folds.")
@click.option(
    "--num-folds",
    type=click.IntRange(min=2),
    help="Folds over files for shards built without --folds.",
)
@click.option("--patience", type=click.IntRange(min=1), help="Early stopping patience [off].")
@click.option(
    "--augment",
    default="standard",
    show_default=True,
    help="none, standard, or an AugmentConfig JSON file.",
)
@click.option(
    "--augment-on",
    type=click.Choice(("host", "model")),
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
@click.option("--cache", type=click.Choice(CACHE_CHOICES), default="none", show_default=True)
@click.option(
    "--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--deterministic", is_flag=True, help="Op determinism: identical reruns.")
@click.option("--mixed-precision", is_flag=True, help="bfloat16 on TPU, float16 on GPU.")
@click.option("--description", default="run", show_default=True, help="Report name.")
@click.option("--report-dir", help="Where the report goes [default: RUN_DIR/reports].")
@click.option("--overwrite", is_flag=True, help="Replace the results of an earlier run.")
@click.option("--quiet", is_flag=True, help="No per-epoch lines from Keras.")
@schedule_options
def train_command(
    shards,
    run_dir,
    test,
    model,
    weights,
    size,
    batch_size,
    epochs,
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
    **schedule,
) -> None:
    """K-fold training on SHARDS: fold models, OOF scores, submission and a report.

    Example: tfrec train shards/train*.tfrec --test "shards/test*.tfrec" --out runs/b0
    --model efficientnet_b0 --weights imagenet --epochs 12 --tta 5
    """
    from tfrec_tools.read.augment import augment_config
    from tfrec_tools.train.config import TrainConfig
    from tfrec_tools.train.models import ModelConfig
    from tfrec_tools.train.run import run_training

    in_model = augment_config(augment) if augment_on == "model" else None

    config = TrainConfig(
        shards=tuple(shards),
        run_dir=run_dir,
        test=tuple(test),
        model=ModelConfig(
            name=model,
            weights=None if weights == "none" else weights,
            dropout=dropout,
            augment=in_model,
        ),
        schedule=schedule_config(schedule),
        image_size=size,
        batch_size=batch_size,
        epochs=epochs,
        folds=tuple(folds) or None,
        num_folds=num_folds,
        patience=patience,
        augment=augment,
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
    )
    result = run_training(config, say=click.echo)
    if result.submission_path:
        click.echo(f"submission: {result.submission_path}")
    if result.report_path:
        click.echo(f"report: {result.report_path}")


@click.command("predict")
@click.argument("shards", nargs=-1, required=True)
@click.option("--run", "run_dir", required=True, help="A folder written by `tfrec train`.")
@click.option("--out", required=True, help="The CSV to write.")
@click.option("--tta", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Per replica."
)
@click.option("--fold-weights", callback=_floats, help="Blend weights [default: the run's].")
def predict_command(shards, run_dir, out, tta, batch_size, fold_weights) -> None:
    """Predict SHARDS with every fold model of a run (TTA), blended into one CSV.

    Example: tfrec predict "shards/test*.tfrec" --run runs/b0 --tta 5 --out submission.csv
    """
    from tfrec_tools.train.predict import predict

    path = predict(shards, run_dir, out, tta=tta, batch_size=batch_size, fold_weights=fold_weights)
    click.echo(f"predictions: {path}")
