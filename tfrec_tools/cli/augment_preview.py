"""`tfrec augment-preview`: a thin shell over `tfrec_tools.read.augment_preview`."""

from __future__ import annotations

import click

from tfrec_tools.cli.types import AugmentType


@click.command("augment-preview")
@click.argument("shards", nargs=-1, required=True)
@click.option("--out", required=True, help="PNG file to write (local or gs://).")
@click.option(
    "--augment",
    "config",
    type=AugmentType(),
    metavar="PRESET|FILE.json",
    default="standard",
    show_default=True,
    help="Preset (standard, none) or a JSON file whose keys are AugmentConfig fields.",
)
@click.option("--n", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--index",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Record number, counted across the shard files in sorted order.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Version i uses seed [SEED, i]."
)
@click.option("--image-key", default="image", show_default=True, help="Feature with the bytes.")
def augment_preview_command(shards, out, config, n, index, seed, image_key) -> None:
    """Render one record of SHARDS (files, folders or globs) and N augmented versions of it
    as a captioned PNG grid, the original first.

    Example: tfrec augment-preview shards/ --out grid.png --augment aug.json
    """
    from tfrec_tools.contact_sheet import save_png
    from tfrec_tools.read.augment_preview import preview_grid, read_image
    from tfrec_tools.shard_files import resolve_files

    image = read_image(resolve_files(shards), index, image_key=image_key)
    save_png(preview_grid(image, config, n=n, seed=seed), out)
    click.echo(out)
