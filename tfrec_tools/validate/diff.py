"""Two builds compared (`tfrec diff`): their manifests section by section (options, image,
schema, classes, feature vocabularies, records per fold and class, each shard's sha256), and
with ``deep`` their records (see ``record_diff``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfrec_tools import fs, naming
from tfrec_tools.errors import ShardError
from tfrec_tools.manifest import SUFFIX, Manifest, manifest_path, read_manifest
from tfrec_tools.shard_files import one_build_per_size
from tfrec_tools.validate.record_diff import RecordDiff, record_diff

SECTIONS = ("options", "image", "schema", "labels", "features", "folds", "shards")

# key -> (value in A, value in B); None: the key is absent from that build
Changes = dict[str, tuple[Any, Any]]


@dataclass(frozen=True)
class BuildDiff:
    """Every difference between build A and build B; ``records`` is None unless ``deep``."""

    a: str  # the manifests' paths
    b: str
    manifests: tuple[Manifest, Manifest]
    sections: dict[str, Changes]
    records: RecordDiff | None

    @property
    def identical(self) -> bool:
        records_same = self.records is None or self.records.identical
        return records_same and not any(self.sections.values())

    @property
    def shards_differ(self) -> bool:
        return bool(self.sections["shards"])

    def to_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "a": self.a,
            "b": self.b,
            "sections": {
                k: {key: list(v) for key, v in c.items()} for k, c in self.sections.items()
            },
            "records": None if self.records is None else self.records.to_json(),
        }


def diff_builds(a: str, b: str, *, deep: bool = False, name: str | None = None) -> BuildDiff:
    """Compare build ``a`` with build ``b`` (each a folder holding one build, or its manifest;
    ``name`` picks the build of a folder that holds several).

    Raises:
        ShardError: a path holds no build, or several and no ``name``; a manifest is damaged;
            (``deep``) a shard is missing or damaged.
    """
    (path_a, one), (path_b, other) = resolve_build(a, name), resolve_build(b, name)
    sections = {s: _changed(_FACTS[s](one), _FACTS[s](other)) for s in SECTIONS}
    records = None
    if deep:
        folders = (naming.folder_name(path_a), naming.folder_name(path_b))
        records = record_diff((folders[0], one), (folders[1], other))
    return BuildDiff(path_a, path_b, (one, other), sections, records)


def resolve_build(path: str, name: str | None = None) -> tuple[str, Manifest]:
    """The manifest (path, content) that ``path`` names: a ``*.manifest.json``, or a folder
    holding one build (``name``: the build ``{name}.manifest.json`` of the folder).

    Raises:
        ShardError: nothing there, no manifest, several and no ``name``, a damaged one.
    """
    if path.endswith(SUFFIX):
        return path, read_manifest(path)
    if not fs.exists(path):
        raise ShardError(f"{path}: no such file or folder")
    if not fs.isdir(path):
        raise ShardError(f"{path}: not a manifest: pass a build's folder or its *{SUFFIX}")
    if name:
        return manifest_path(path, name), read_manifest(manifest_path(path, name))
    found = [e for e in fs.listdir(path) if e.endswith(SUFFIX)]
    if not found:
        raise ShardError(
            one_build_per_size(path)
            or f"{path}: no *{SUFFIX}: `tfrec diff` compares builds of `tfrec build`; pass the "
            "folder it wrote (its --out) or the manifest"
        )
    if len(found) > 1:
        raise ShardError(
            f"{path} holds {len(found)} builds ({', '.join(found)}): pass one manifest, e.g. "
            f"{fs.join(path, found[-1])}, or --name {found[-1].removesuffix(SUFFIX)}"
        )
    return fs.join(path, found[0]), read_manifest(fs.join(path, found[0]))


def _changed(one: dict[str, Any], other: dict[str, Any]) -> Changes:
    """The keys whose values differ, in sorted order."""
    keys = sorted(set(one) | set(other))
    return {k: (one.get(k), other.get(k)) for k in keys if one.get(k) != other.get(k)}


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (``image.size``), so a change names the value that changed."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = list(value) if isinstance(value, tuple) else value
    return flat


def _schema(manifest: Manifest) -> dict[str, str]:
    """``{"label": "int64", "tags": "int64 x5"}``."""
    return {
        s.name: s.dtype + (f" x{s.shape[0]}" if s.shape else "") for s in manifest.schema.features
    }


def _labels(manifest: Manifest) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for label in manifest.labels:
        facts[label.name] = label.kind
        facts[f"{label.name} classes"] = list(label.classes)
    return facts


def _features(manifest: Manifest) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for column in manifest.features:
        facts[column.name] = column.kind
        if column.vocabulary:
            facts[f"{column.name} vocabulary"] = list(column.vocabulary)
    return facts


def _folds(manifest: Manifest) -> dict[str, int]:
    """Records per fold (``fold 0``), and per fold and class (``fold 0 label cat``)."""
    counts: dict[str, int] = {}
    for shard in manifest.shards:
        fold = "no fold" if shard.fold is None else f"fold {shard.fold}"
        counts[fold] = counts.get(fold, 0) + shard.count
        for label, histogram in shard.label_histogram.items():
            for value, n in histogram.items():
                key = f"{fold} {label} {value}"
                counts[key] = counts.get(key, 0) + n
    return counts


def _shards(manifest: Manifest) -> dict[str, str]:
    return {
        f"shard {s.index}": f"{s.file} ({s.count} records, sha256 {s.sha256[:12]})"
        for s in manifest.shards
    }


_FACTS = {
    "options": lambda m: _flat(m.options),
    "image": lambda m: _flat(m.image),
    "schema": _schema,
    "labels": _labels,
    "features": _features,
    "folds": _folds,
    "shards": _shards,
}
