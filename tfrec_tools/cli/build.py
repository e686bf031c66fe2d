"""`tfrec build`: a thin shell over `tfrec_tools.build`."""

from __future__ import annotations

import json
import os

import click

from tfrec_tools import naming
from tfrec_tools.builder.config import (
    DEFAULT_OUT,
    FITS,
    LABEL_SOURCES,
    RUNNERS,
    BuildConfig,
    ImageConfig,
)
from tfrec_tools.cli import INTERRUPT_HINT
from tfrec_tools.errors import ConfigError
from tfrec_tools.manifest import SUFFIX as MANIFEST_SUFFIX


class _Sizes(click.ParamType):
    """``256``, ``256x384``, or several comma-separated (``256,384x512``): a tuple of sizes."""

    name = "SIZE[,SIZE...]"

    def convert(self, value, param, ctx):
        from tfrec_tools.builder.config import parse_sizes

        try:
            return value if isinstance(value, tuple) else parse_sizes(str(value))
        except ConfigError as err:
            self.fail(str(err), param, ctx)


@click.command("build")
@click.argument("images", type=click.Path(file_okay=False))
@click.argument("labels_csv", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--out", default=DEFAULT_OUT, show_default=True, help="Output folder (local or gs://)."
)
@click.option(
    "--name", help="Shard name prefix [default: train when labeled, test when unlabeled]."
)
@click.option(
    "--size",
    type=_Sizes(),
    help="Target size: 256 or HEIGHTxWIDTH (256x384) [default: 256; none with --fit keep]. "
    "Several, comma-separated (256,384,512), decode each image once and write one build per "
    "size in OUT/256, OUT/384, ... (the same records, folds and rejected rows in each).",
)
@click.option(
    "--fit",
    type=click.Choice(FITS),
    default="resize",
    show_default=True,
    help="resize (stretch), crop (centre), pad (black bars) or keep (no resizing).",
)
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True)
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    help="Number of shards [default: from the size, a multiple of the folds and of 8 where the "
    "data allows, 32+ records each].",
)
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
    help="Assign shards to K folds (K divides the shard count); 0 = no folds [default: 5 when "
    "labeled, or the divisor of --shards nearest 5; none when unlabeled].",
)
@click.option("--id-col", help="CSV column naming each image [default: image_id, id, ...].")
@click.option(
    "--label-col",
    multiple=True,
    help="Label column (repeat for multi-output) [default: label or target].",
)
@click.option(
    "--labels-from",
    type=click.Choice(LABEL_SOURCES),
    default="auto",
    show_default=True,
    help="auto: the CSV if given, else class folders (IMAGES/CLASS/x.jpg) when every image is "
    "one folder deep, else none.",
)
@click.option(
    "--label-key",
    help="Record key of the label [default: its column name; 'label' for class folders]; "
    "e.g. target, as the reference notebooks read.",
)
@click.option(
    "--multi-label",
    is_flag=True,
    help="Label cells hold tag sets ('haze primary'), stored as multi-hot vectors over the "
    "sorted tags; shards are stratified over the tags.",
)
@click.option(
    "--label-sep",
    default=" ",
    show_default="a space: any run of whitespace",
    help="With --multi-label: what separates the tags of a cell.",
)
@click.option("--group-col", help="Group column (e.g. patient_id): a group never spans shards.")
@click.option("--feature-col", multiple=True, help="Tabular column to store (repeatable).")
@click.option(
    "--vocab-from",
    type=click.Path(dir_okay=False),
    help="Reuse the categorical codes (and class-folder classes, multi-label tags) of this "
    "manifest (build test like train).",
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
    help="local: a process pool; beam: an Apache Beam pipeline (DirectRunner, a Dask "
    "cluster, Dataflow, Flink, Spark).",
)
@click.option(
    "--beam-option",
    multiple=True,
    help="Beam pipeline option KEY=VALUE (repeatable), e.g. runner=DaskRunner "
    "dask_client_address=127.0.0.1:8786, or runner=DataflowRunner.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when any row was rejected.")
@click.option("--overwrite", is_flag=True, help="Replace an existing build of this name.")
@click.option("--resume", is_flag=True, help="Finish an interrupted build of this name.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option(
    "--dry-run", is_flag=True, help="Match, validate and plan; print the plan, write nothing."
)
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: the plan as JSON.")
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
    labels_from,
    label_key,
    multi_label,
    label_sep,
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
    dry_run,
    as_json,
) -> None:
    """Turn IMAGES (+ LABELS_CSV, or class folders IMAGES/CLASS/*.jpg) into stratified,
    fold-assigned shards in --out (default: ./shards).

    Example: tfrec build images/ labels.csv --shards 16 --size 256,384
    """
    from tfrec_tools.builder.run import plan_build
    from tfrec_tools.builder.summary import plan_summary, render_summary

    _check_flags(overwrite=overwrite, resume=resume, dry_run=dry_run, as_json=as_json)
    if fit == "keep" and size is not None:
        raise click.UsageError("--size has no effect with --fit keep: drop one of them")
    sizes = () if fit == "keep" else size or ((256, 256),)
    config = BuildConfig(
        images=images,
        out=out,
        labels_csv=labels_csv,
        name=name,
        image=ImageConfig(
            size=sizes[0] if sizes else None, fit=fit, quality=quality, max_pixels=max_pixels
        ),
        sizes=sizes if len(sizes) > 1 else (),
        shards=shards,
        shard_size_mb=shard_size_mb,
        folds=folds,
        id_col=id_col,
        label_cols=tuple(label_col) or None,
        labels_from=labels_from,
        label_key=label_key,
        multi_label=multi_label,
        label_sep=label_sep,
        group_col=group_col,
        feature_cols=tuple(feature_col),
        vocab_from=vocab_from,
        runner=runner,
        beam_options=tuple(beam_option),
        seed=seed,
        workers=workers,
        existing="overwrite" if overwrite else "resume" if resume else "error",
    )
    if dry_run:
        summary = plan_summary(plan_build(config))
        lines = render_summary(summary)
        if summary["existing_build"]:
            lines.append(
                f"note: {summary['out']} already holds a build named {summary['name']!r}: "
                "the real build needs --overwrite (replace it) or --resume (finish it)"
            )
        click.echo(json.dumps(summary, indent=2) if as_json else "\n".join(lines))
        return
    report = _build(config, show_bar=not no_progress)
    _print_summary(report)
    if strict and report.num_rejected:
        raise click.ClickException(f"--strict: {report.num_rejected} rows rejected")


def _check_flags(*, overwrite: bool, resume: bool, dry_run: bool, as_json: bool) -> None:
    if overwrite and resume:
        raise click.UsageError("--overwrite and --resume exclude each other")
    if dry_run and (overwrite or resume):
        flag = "--overwrite" if overwrite else "--resume"
        raise click.UsageError(f"--dry-run writes nothing, so {flag} has no meaning: drop one")
    if as_json and not dry_run:
        raise click.UsageError("--json prints the plan of --dry-run: add --dry-run")


def _build(config: BuildConfig, *, show_bar: bool):
    """`build`, printing the plan first and drawing the progress bar while shards are written."""
    from tfrec_tools.builder.run import build

    bar = _ProgressBar()

    def on_plan(plan) -> None:
        _print_plan(plan)
        bar.expect(plan)

    again = "with --resume in place of --overwrite" if config.existing == "overwrite" else ""
    click.get_current_context().meta[INTERRUPT_HINT] = (
        f"The shards written so far stay in {config.out}; run the same command "
        f"{again or 'with --resume'} to finish the build."
    )
    try:
        return build(config, on_plan=on_plan, progress=bar.advance if show_bar else None)
    finally:
        bar.close()


class _ProgressBar:
    """A tqdm bar on stderr over the images of the plan, drawn from the first images written
    (so a resumed build starts where the interrupted one stopped, and a finished one draws
    none); ``disable=None`` hides it when stderr is not a terminal."""

    def __init__(self) -> None:
        self._total, self._desc, self._bar = 0, "build", None

    def expect(self, plan) -> None:
        self._total = sum(len(shard.rows) for shard in plan.shards)
        self._desc = f"build {plan.config.name}"

    def advance(self, images: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self._total, unit="img", desc=self._desc, disable=None)
        self._bar.update(images)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _print_plan(plan) -> None:
    """What will be written, before it is (the same facts as --dry-run, in two lines)."""
    from tfrec_tools.builder.config import sized_configs
    from tfrec_tools.builder.summary import describe_labels

    config = plan.config
    into = ", ".join(c.out for c in sized_configs(config))
    click.echo(f"build {config.name!r} into {into}; {describe_labels(plan)}")
    click.echo(f"plan: {plan.layout.reason}")
    for warning in plan.warnings:  # a task kind decided by one cell, a fold far too big
        click.echo(f"warning: {warning}")


def _print_summary(report) -> None:
    if not report.sizes:
        _print_build(report)
        return
    click.echo(f"wrote {len(report.sizes)} builds, one per size (the same records in each):")
    for sized in report.sizes:
        folder = naming.folder_name(sized.manifest_path)
        click.echo(
            f"size {naming.base_name(folder)}: {_written(sized)}; manifest: {sized.manifest_path}"
        )
    for sized in report.sizes:
        click.echo(f"--- {naming.folder_name(sized.manifest_path)}")
        _print_build(sized)


def _written(report) -> str:
    folds = f" in {report.folds} folds" if report.folds else ""
    shards = f"{report.shards} shard{'s' if report.shards > 1 else ''}"
    return f"wrote {report.records} records to {shards}{folds}"


def _print_build(report) -> None:
    click.echo(_written(report))
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
    _print_duplicates(report.duplicates)
    click.echo(f"manifest: {report.manifest_path}")
    folder = naming.folder_name(report.manifest_path)
    name = naming.base_name(report.manifest_path).removesuffix(MANIFEST_SUFFIX)
    alone = name == "train" and not _other_labeled_builds(folder, name)
    shards = folder if alone else f'"{folder}/{naming.set_glob(name)}"'
    if report.folds:
        click.echo(f"next: tfrec inspect {folder}  then  tfrec train {shards}")


def _print_duplicates(duplicates) -> None:
    """The copies among the stored images: a warning, never a failure."""
    if duplicates is None:  # a finished build, resumed: nothing was checked
        return
    listed = f"; listed in {duplicates.path}" if duplicates.path else ""
    click.echo(f"duplicates: {duplicates.summary}{listed}")
    if duplicates.across_folds:
        click.echo(
            f"warning: {duplicates.across_folds} groups of copies span folds (leakage: a model "
            "validates on images it trained on); drop the copies from the CSV, or give each "
            "group one --group-col value"
        )


def _other_labeled_builds(folder: str, name: str) -> list[str]:
    """Manifests of other labeled, fold-assigned builds beside this one (then `tfrec train
    FOLDER` cannot tell them apart, and the hint names the glob)."""
    from tfrec_tools import fs
    from tfrec_tools.errors import ShardError
    from tfrec_tools.manifest import read_manifest

    found = []
    for entry in fs.listdir(folder):
        if not entry.endswith(MANIFEST_SUFFIX) or entry == name + MANIFEST_SUFFIX:
            continue
        try:
            manifest = read_manifest(fs.join(folder, entry))
        except ShardError:  # another set's damaged manifest says nothing about this one
            continue
        if manifest.labels and manifest.folds:
            found.append(entry)
    return found
