"""The manifest: the JSON sidecar ``{name}.manifest.json`` that describes a set of shards
(schema, classes, vocabularies, folds, and per shard its count, fold, histogram and sha256,
and its record index file and that file's sha256; the hashes sidecar and its sha256)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tfrec_tools import fs
from tfrec_tools.errors import ShardError
from tfrec_tools.schema import ColumnSpec, LabelSpec, Schema

FORMAT = "tfrec-tools.manifest/1"
SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class ShardEntry:
    file: str  # base name, relative to the manifest's folder
    index: int
    fold: int | None
    count: int
    bytes: int
    sha256: str
    label_histogram: dict[str, dict[str, int]] = field(default_factory=dict)
    # the shard's record index (``naming.index_name``) and its sha256; None in manifests
    # written before builds wrote indexes
    index_file: str | None = None
    index_sha256: str | None = None


@dataclass(frozen=True)
class Manifest:
    name: str
    tool_version: str
    options: dict[str, Any]
    schema: Schema
    image: dict[str, Any]  # size [h, w] or None, fit, format, channels, quality
    labels: tuple[LabelSpec, ...]
    features: tuple[ColumnSpec, ...]
    group_col: str | None
    folds: int
    shards: tuple[ShardEntry, ...]
    totals: dict[str, Any]
    plan_fingerprint: str
    # the hashes sidecar (``naming.hashes_name``) and its sha256; None in manifests written
    # before builds hashed images
    hashes_file: str | None = None
    hashes_sha256: str | None = None

    def files(self, folder: str, *, folds: tuple[int, ...] | None = None) -> list[str]:
        """Paths of the shards (optionally only those of ``folds``), in index order."""
        chosen = [s for s in self.shards if folds is None or s.fold in folds]
        return [fs.join(folder, s.file) for s in chosen]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = self.schema.to_json()
        return {"format": FORMAT, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            name=data["name"],
            tool_version=data["tool_version"],
            options=data["options"],
            schema=Schema.from_json(data["schema"]),
            image=data["image"],
            labels=tuple(
                LabelSpec(d["name"], d["kind"], tuple(d["classes"])) for d in data["labels"]
            ),
            features=tuple(
                ColumnSpec(d["name"], d["kind"], tuple(d["vocabulary"]), d["missing"])
                for d in data["features"]
            ),
            group_col=data["group_col"],
            folds=data["folds"],
            shards=tuple(ShardEntry(**d) for d in data["shards"]),
            totals=data["totals"],
            plan_fingerprint=data["plan_fingerprint"],
            hashes_file=data.get("hashes_file"),
            hashes_sha256=data.get("hashes_sha256"),
        )


def manifest_path(folder: str, name: str) -> str:
    return fs.join(folder, name + SUFFIX)


def dumps(manifest: Manifest) -> bytes:
    """Stable bytes: sorted keys, fixed indentation, trailing newline."""
    return (json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_manifest(manifest: Manifest, path: str) -> None:
    fs.write_bytes_atomic(path, dumps(manifest))


def read_manifest(path: str) -> Manifest:
    """Raises:
    ShardError: the file is missing, not JSON, or not a tfrec-tools manifest."""
    if not fs.exists(path):
        raise ShardError(f"{path}: manifest not found")
    try:
        data = json.loads(fs.read_bytes(path))
    except (ValueError, UnicodeDecodeError) as err:
        raise ShardError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ShardError(
            f"{path}: not a tfrec-tools manifest (format {found!r}, expected {FORMAT!r})"
        )
    try:
        return Manifest.from_json(data)
    except (KeyError, TypeError) as err:
        raise ShardError(f"{path}: manifest is incomplete or damaged ({err!r})") from err
