"""`tfrec kaggle-metadata`: write the dataset-metadata.json `kaggle datasets create` reads."""

from __future__ import annotations

from collections.abc import Callable

import click

from tfrec_tools.kaggle import LICENSES
from tfrec_tools.manifest import SUFFIX


def _checked(check: Callable[[str], str]) -> Callable:
    """A click callback: the library's check, its ConfigError a usage error (exit 2)."""
    from tfrec_tools.errors import ConfigError

    def callback(ctx, param, value):
        try:
            return None if value is None else check(value)
        except ConfigError as err:
            raise click.BadParameter(str(err)) from err

    return callback


def _check_id(value: str) -> str:
    from tfrec_tools.kaggle import check_dataset_id

    return check_dataset_id(value)


def _check_title(value: str) -> str:
    from tfrec_tools.kaggle import check_title

    return check_title(value)


@click.command("kaggle-metadata")
@click.argument("folder")
@click.option(
    "--id", "dataset_id", required=True, callback=_checked(_check_id),
    help="OWNER/SLUG of the Kaggle dataset (slug: 6-50 lowercase letters, digits, hyphens).",
)  # fmt: skip
@click.option(
    "--title", callback=_checked(_check_title),
    help="Title, 6-50 characters [default: the slug, hyphens as spaces].",
)  # fmt: skip
@click.option("--license", "license_name", type=click.Choice(LICENSES), default="CC0-1.0",
              show_default=True, help="The dataset's license, by its Kaggle name.")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset-metadata.json.")
def kaggle_metadata_command(folder, dataset_id, title, license_name, overwrite) -> None:
    """Write FOLDER/dataset-metadata.json for `kaggle datasets create -p FOLDER`: title, id,
    license, and a description of every file of every build in FOLDER (shards with their fold,
    records and classes; manifests; rejected lists). No network access.

    Example: tfrec kaggle-metadata shards/ --id alice/melanoma-256
    """
    from tfrec_tools.kaggle import dataset_metadata, write_metadata
    from tfrec_tools.urls import check_url

    check_url(folder, "FOLDER")
    metadata = dataset_metadata(
        folder, dataset_id=dataset_id, title=title, license_name=license_name
    )
    path = write_metadata(folder, metadata, overwrite=overwrite)
    names = [r["path"].removesuffix(SUFFIX) for r in metadata["resources"] if _is_manifest(r)]
    builds = f"{len(names)} build{'s' if len(names) > 1 else ''} ({', '.join(names)})"
    click.echo(f"wrote {path}: {builds}, {len(metadata['resources'])} files described")
    click.echo(f"next: kaggle datasets create -p {folder}  (a new version: kaggle datasets "
               f"version -p {folder} -m MESSAGE)")  # fmt: skip


def _is_manifest(resource: dict) -> bool:
    return resource["path"].endswith(SUFFIX)
