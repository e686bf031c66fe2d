"""Publishing a folder of shards as a Kaggle dataset: its ``dataset-metadata.json`` (title, id,
license, a description of every file of every build in the folder), written offline.

The format is the Kaggle API's (kaggle-api ``docs/datasets_metadata.md``), and the rules are
the ones ``kaggle datasets create`` checks before it uploads: a slug of 6 to 50 characters,
a title of 6 to 50, exactly one license, every resource an existing file listed once.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tfrec_tools import __version__, fs, naming
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.manifest import SUFFIX, Manifest, read_manifest
from tfrec_tools.shard_files import one_build_per_size

METADATA_NAME = "dataset-metadata.json"
# The license names the Kaggle API accepts (kaggle-api docs/datasets_metadata.md, "Licenses").
LICENSES = (
    "CC0-1.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC-BY-NC-SA-4.0", "GPL-2.0", "ODbL-1.0",
    "DbCL-1.0", "copyright-authors", "other", "unknown", "CC-BY-4.0", "CC-BY-NC-4.0", "PDDL",
    "CC-BY-3.0", "CC-BY-3.0-IGO", "US-Government-Works", "CC-BY-NC-SA-3.0-IGO",
    "CDLA-Permissive-1.0", "CDLA-Sharing-1.0", "CC-BY-ND-4.0", "CC-BY-NC-ND-4.0", "ODC-BY-1.0",
    "LGPL-3.0", "AGPL-3.0", "FDL-1.3", "EU-ODP-Legal-Notice", "apache-2.0", "GPL-3.0",
)  # fmt: skip
SLUG_LENGTH = (6, 50)  # `kaggle datasets create` refuses other lengths before uploading
TITLE_LENGTH = (6, 50)
HISTOGRAM_CLASSES = 5  # a shard's description names its largest classes, then "+N more"
_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def check_dataset_id(dataset_id: str) -> str:
    """``OWNER/SLUG`` as Kaggle accepts it, unchanged.

    Raises:
        ConfigError: not two parts, an owner with other characters, or a slug that is not
            6 to 50 lowercase letters, digits and hyphens (starting and ending with no hyphen).
    """
    owner, _, slug = dataset_id.partition("/")
    if not _OWNER.fullmatch(owner) or not slug or "/" in slug or " " in slug:
        raise ConfigError(
            f"`--id` must be OWNER/SLUG (e.g. alice/melanoma-256). Received: {dataset_id!r}"
        )
    low, high = SLUG_LENGTH
    if not low <= len(slug) <= high:
        raise ConfigError(
            f"`--id`: the slug must be {low} to {high} characters long (received {len(slug)}). "
            f"Received: {dataset_id!r}"
        )
    if not _SLUG.fullmatch(slug):
        raise ConfigError(
            "`--id`: the slug may hold lowercase letters, digits and hyphens, and must start "
            f"and end with a letter or digit. Received: {dataset_id!r}"
        )
    return dataset_id


def check_title(title: str) -> str:
    """Raises:
    ConfigError: a title Kaggle refuses (not 6 to 50 characters)."""
    low, high = TITLE_LENGTH
    if not low <= len(title) <= high:
        raise ConfigError(f"`--title` must be {low} to {high} characters. Received: {title!r}")
    return title


def dataset_metadata(
    folder: str, *, dataset_id: str, title: str | None = None, license_name: str = "CC0-1.0"
) -> dict[str, Any]:
    """The ``dataset-metadata.json`` content for the builds in ``folder`` (every manifest).

    Args:
        title: default: the slug, its hyphens as spaces ("skin-lesions" -> "Skin lesions").

    Raises:
        ConfigError: a bad id, title or license.
        ShardError: no manifest in the folder, an unreadable one, an unfinished build, or a
            shard a manifest lists that is missing.
    """
    check_dataset_id(dataset_id)
    title = check_title(title or dataset_id.split("/")[1].replace("-", " ").capitalize())
    if license_name not in LICENSES:
        raise ConfigError(f"`--license` must be one of {LICENSES}. Received: {license_name!r}")
    builds = _builds(folder)
    return {
        "title": title,
        "id": dataset_id,
        "licenses": [{"name": license_name}],
        "description": _description(builds),
        "resources": [r for path, m in builds for r in _resources(folder, path, m)],
    }


def write_metadata(folder: str, metadata: dict[str, Any], *, overwrite: bool = False) -> str:
    """Write ``FOLDER/dataset-metadata.json``; its path.

    Raises:
        ConfigError: the file exists and ``overwrite`` is false.
    """
    path = fs.join(folder, METADATA_NAME)
    if fs.exists(path) and not overwrite:
        raise ConfigError(f"{path} exists: pass --overwrite to replace it")
    fs.write_bytes_atomic(path, (json.dumps(metadata, indent=2) + "\n").encode("utf-8"))
    return path


def _builds(folder: str) -> list[tuple[str, Manifest]]:
    """Every manifest of the folder (path, content) by name; none, or an unfinished build,
    is an error: the upload would carry shards nobody can check."""
    if not fs.isdir(folder):
        raise ShardError(f"{folder}: no such folder")
    paths = [fs.join(folder, e) for e in fs.listdir(folder) if e.endswith(SUFFIX)]
    if not paths:
        raise ShardError(
            one_build_per_size(folder)
            or f"{folder}: no *.manifest.json: `tfrec kaggle-metadata` describes the builds of "
            "`tfrec build`; pass the folder it wrote (its --out)"
        )
    builds = [(path, read_manifest(path)) for path in paths]
    for _, manifest in builds:
        state = fs.join(folder, naming.state_dir_name(manifest.name))
        if fs.exists(state):
            raise ShardError(
                f"the build {manifest.name!r} is unfinished ({state} exists): finish it with "
                "`tfrec build ... --resume` before publishing"
            )
    return builds


def _resources(folder: str, path: str, manifest: Manifest) -> list[dict[str, str]]:
    """The manifest, each shard (then its record index, if any), the rejected and unmatched
    lists of one build."""
    name = manifest.name
    found = [(naming.base_name(path), f"tfrec-tools manifest of the {name!r} build: " + _ABOUT)]
    for shard in manifest.shards:
        if not fs.exists(fs.join(folder, shard.file)):
            raise ShardError(
                f"{fs.join(folder, shard.file)}: listed in {path} but missing: the dataset "
                "would be incomplete; copy the file back or rebuild"
            )
        found.append((shard.file, _shard_text(manifest, shard)))
        found.append((naming.index_name(shard.file), _INDEX.format(shard=shard.file)))
    rejected = manifest.totals.get("rejected", "")
    found.append((naming.rejected_name(name), _REJECTED.format(name=name, n=rejected)))
    found.append((naming.unmatched_name(name), _UNMATCHED.format(name=name)))
    return [
        {"path": file, "description": text}
        for file, text in found
        if file == found[0][0] or fs.exists(fs.join(folder, file))
    ]


_ABOUT = "schema, classes, folds, and per shard its records, fold, classes and sha256 (JSON)"
_INDEX = "record index of {shard}: byte offset and length of each record, one per line"
_REJECTED = "rows of the {name!r} build that were rejected ({n}), with the reason of each (CSV)"
_UNMATCHED = "images in the folder that no row of the {name!r} build names, one per line"


def _shard_text(manifest: Manifest, shard) -> str:
    """``shard 1 of 4 of the 'train' build: fold 1, 6 records; label: dog 3, cat 2``."""
    head = f"shard {shard.index} of {len(manifest.shards)} of the {manifest.name!r} build: "
    fold = "" if shard.fold is None else f"fold {shard.fold}, "
    text = head + fold + f"{shard.count} records"
    if not manifest.labels:
        return text + ", unlabeled"
    for label, counts in sorted(shard.label_histogram.items()):
        largest = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        shown = ", ".join(f"{value} {n}" for value, n in largest[:HISTOGRAM_CLASSES])
        more = len(largest) - HISTOGRAM_CLASSES
        text += f"; {label}: {shown}" + (f", +{more} more" if more > 0 else "")
    return text


def _description(builds: list[tuple[str, Manifest]]) -> str:
    """Markdown: one paragraph per build, then how to count and check the records."""
    lines = [f"TFRecord shards written by tfrec-tools {__version__} (`tfrec build`).", ""]
    for _, manifest in builds:
        lines += [_build_text(manifest), ""]
    lines.append(
        "Each shard's name states its record count (`train07-1233.tfrec` holds 1233), so "
        "`count_data_items` reads totals from file names alone. Each `*.manifest.json` holds "
        "the schema, the class names in label order, the folds and each shard's sha256."
    )
    return "\n".join(lines)


def _build_text(manifest: Manifest) -> str:
    records = sum(s.count for s in manifest.shards)
    text = f"**{manifest.name}**: {records} records in {len(manifest.shards)} shards"
    if manifest.folds:
        by = f" (grouped by `{manifest.group_col}`)" if manifest.group_col else ""
        text += f", {manifest.folds} folds{by}"
    size = manifest.image.get("size")
    image_format = str(manifest.image.get("format", "")).upper()
    text += f"; images {size[0]}x{size[1]} {image_format}" if size else f"; {image_format} images"
    for label in manifest.labels:
        classes = ", ".join(label.classes[:20]) + (", ..." if len(label.classes) > 20 else "")
        text += f"; label `{label.name}` ({label.kind}{': ' + classes if classes else ''})"
    if manifest.features:
        text += "; features: " + ", ".join(f"`{c.name}`" for c in manifest.features)
    return text + "."
