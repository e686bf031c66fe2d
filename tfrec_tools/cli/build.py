"""`tfrec build`: a thin shell over `tfrec_tools.build`."""

from __future__ import annotations

import os

import click

from tfrec_tools.builder.config import FITS, RUNNERS, BuildConfig, ImageConfig
from tfrec_tools.cli.types import SIZE


@click.command("build")
@click.argument("images", type=click.Path(file_okay=False))
@click.argument("labels_csv", required=False, type=click.Path(dir_okay=False))
@click.option("--out", required=True, help="Output folder (local or gs://).")
@click.option("--name", default="train", show_default=True, help="Shard name prefix.")
@click.option(
    "--size",
    type=SIZE,
    help="Target size: 256 or HEIGHTxWIDTH (256x384) [default: 256; none with --fit keep].",
)
@click.option(
    "--fit",
    type=click.Choice(FITS),
    default="resize",
    show_default=True,
    help="resize (stretch), crop (centre), pad (black bars) or keep (no resizing).",
)
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True)
@click.option("--shards", type=click.IntRange(min=1), help="Number of shards [default: auto].")
@click.option(
    "--shard-size-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=100.0,
    show_default=True,
    help="Target shard size when --shards is not given.",
)
@click.option(
    "--folds",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Assign shards to K folds (K must divide the shard count); 0 = no folds.",
)
@click.option("--id-col", help="CSV column naming each image [default: image_id, id, ...].")
@click.option(
    "--label-col",
    multiple=True,
    help="Label column (repeat for multi-output) [default: label or target].",
)
@click.option("--group-col", help="Group column (e.g. patient_id): a group never spans shards.")
@click.option("--feature-col", multiple=True, help="Tabular column to store (repeatable).")
@click.option(
    "--vocab-from",
    type=click.Path(dir_okay=False),
    help="Reuse the categorical codes of this manifest (build test like train).",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default="all cores"
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=ImageConfig.max_pixels,
    show_default=True,
    help="Reject larger images (decompression-bomb guard).",
)
@click.option(
    "--runner",
    type=click.Choice(RUNNERS),
    default="local",
    show_default=True,
    help="local: a process pool; beam: an Apache Beam pipeline (DirectRunner, Dataflow, "
    "Flink, Spark).",
)
@click.option(
    "--beam-option",
    multiple=True,
    help="Beam pipeline option KEY=VALUE (repeatable), e.g. runner=DataflowRunner.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when any row was rejected.")
@click.option("--overwrite", is_flag=True, help="Replace an existing build of this name.")
@click.option("--resume", is_flag=True, help="Finish an interrupted build of this name.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def build_command(
    images,
    labels_csv,
    out,
    name,
    size,
    fit,
    quality,
    shards,
    shard_size_mb,
    folds,
    id_col,
    label_col,
    group_col,
    feature_col,
    vocab_from,
    runner,
    beam_option,
    seed,
    workers,
    max_pixels,
    strict,
    overwrite,
    resume,
    no_progress,
) -> None:
    """Turn IMAGES (+ LABELS_CSV) into stratified, fold-assigned shards in --out.

    Example: tfrec build images/ labels.csv --out shards/ --folds 5 --group-col patient_id
    """
    from tfrec_tools.builder.run import build

    if overwrite and resume:
        raise click.UsageError("--overwrite and --resume exclude each other")
    if fit == "keep" and size is not None:
        raise click.UsageError("--size has no effect with --fit keep: drop one of them")
    size = None if fit == "keep" else size or (256, 256)
    config = BuildConfig(
        images=images,
        out=out,
        labels_csv=labels_csv,
        name=name,
        image=ImageConfig(size=size, fit=fit, quality=quality, max_pixels=max_pixels),
        shards=shards,
        shard_size_mb=shard_size_mb,
        folds=folds,
        id_col=id_col,
        label_cols=tuple(label_col) or None,
        group_col=group_col,
        feature_cols=tuple(feature_col),
        vocab_from=vocab_from,
        runner=runner,
        beam_options=tuple(beam_option),
        seed=seed,
        workers=workers,
        existing="overwrite" if overwrite else "resume" if resume else "error",
    )
    report = build(config, progress=not no_progress)
    _print_summary(report)
    if strict and report.num_rejected:
        raise click.ClickException(f"--strict: {report.num_rejected} rows rejected")


def _print_summary(report) -> None:
    folds = f" in {report.folds} folds" if report.folds else ""
    click.echo(f"wrote {report.records} records to {report.shards} shards{folds}")
    if report.reused_shards == report.shards:
        click.echo("  (nothing to do: the build was already complete)")
    elif report.reused_shards:
        click.echo(f"  ({report.reused_shards} shards reused from the interrupted run)")
    click.echo(f"rows: {report.rows}, landed: {report.records}, rejected: {report.num_rejected}")
    for reason, count in report.rejected.items():
        click.echo(f"  {reason}: {count}")
    if report.num_rejected:
        click.echo(f"rejected rows listed in {report.rejected_path}")
    if report.unmatched:
        click.echo(f"{report.unmatched} images named by no row, listed in {report.unmatched_path}")
    click.echo(f"manifest: {report.manifest_path}")
