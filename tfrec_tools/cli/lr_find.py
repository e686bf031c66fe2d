"""`tfrec lr-find`: a thin shell over `tfrec_tools.train.lr_find`."""

from __future__ import annotations

import click

from tfrec_tools.cli.defaults import shard_args
from tfrec_tools.cli.types import SIZE
from tfrec_tools.train.config import SEED_MAX


@click.command("lr-find")
@click.argument("shards", nargs=-1)
@click.option(
    "--out",
    "out_dir",
    default="lr-find",
    show_default=True,
    help="Folder for lr_find.png and lr_find.json (created).",
)
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
    help="Per replica, as in train; the global batch is this x replicas [default: the "
    "model's, as train uses].",
)
@click.option(
    "--steps",
    type=click.IntRange(min=10),
    default=100,
    show_default=True,
    help="Batches, one learning rate each.",
)
@click.option(
    "--lr-start",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-7,
    show_default=True,
    help="First learning rate (absolute, not per sample).",
)
@click.option(
    "--lr-end",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Last learning rate (absolute); the test stops earlier when the loss diverges.",
)
@click.option(
    "--fold",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Train on this fold's training shards (the other folds').",
)
@click.option(
    "--num-folds",
    type=click.IntRange(min=2),
    help="Folds over files for shards built without --folds.",
)
@click.option(
    "--augment",
    default="standard",
    show_default=True,
    help="none, standard, or an AugmentConfig JSON file (as train).",
)
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=42, show_default=True)
def lr_find_command(
    shards,
    out_dir,
    model,
    weights,
    size,
    batch_size,
    steps,
    lr_start,
    lr_end,
    fold,
    num_folds,
    augment,
    seed,
) -> None:
    """Learning-rate range test on one fold's training shards: a fresh model trains with the
    learning rate growing exponentially each batch; the loss curve suggests --lr-max.

    Example: tfrec lr-find shards/ --model efficientnet_b0 --weights imagenet --out lr-b0
    """
    from tfrec_tools.train.lr_find import (
        LrFindConfig,
        find_lr,
        range_note,
        require_suggestion,
        save_lr_find,
        suggestion_line,
    )
    from tfrec_tools.train.models import ModelConfig

    config = LrFindConfig(
        shards=shard_args(tuple(shards)),
        model=ModelConfig(name=model, weights=None if weights == "none" else weights),
        image_size=size,
        batch_size=batch_size,
        steps=steps,
        lr_start=lr_start,
        lr_end=lr_end,
        fold=fold,
        num_folds=num_folds,
        augment=augment,
        seed=seed,
    )
    result = find_lr(config, say=click.echo)
    png, data = save_lr_find(result, out_dir)
    ending = "stopped: the loss diverged" if result.stopped_early else "reached --lr-end"
    click.echo(f"{len(result.lrs)} steps, {ending}; wrote {png} and {data}")
    note = range_note(result)
    if note:
        click.echo(f"note: {note}")
    click.echo(suggestion_line(require_suggestion(result)))
