"""`tfrec inspect --duplicates`: exact and near-duplicate images within a set, across its
folds and between sets (train/test leakage). A set's hashes come from its sidecar
(``{name}.hashes.csv``, listed in its manifest); shards the sidecar does not cover (foreign or
older builds) are hashed by decoding their records' images, and the report says so.

Copies across folds or across sets are problems (they leak); copies within a fold are notes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tfrec_tools import fs, naming
from tfrec_tools.duplicates import DEFAULT_DISTANCE, Group, Item, find_groups, summary
from tfrec_tools.errors import ShardError
from tfrec_tools.manifest import Manifest
from tfrec_tools.phash import bytes_hash, hash_text, read_hashes
from tfrec_tools.record_keys import first_features, guess_key
from tfrec_tools.records import iter_examples
from tfrec_tools.schema import FOLD
from tfrec_tools.shard_files import load_manifest
from tfrec_tools.validate.scan import as_text, kind_of, record_value

_SHOWN = 5  # groups shown per problem or note


@dataclass(frozen=True)
class ShardSet:
    """The shards of one set and the name the report gives it."""

    label: str
    files: tuple[str, ...]


@dataclass
class DuplicateCheck:
    distance: int
    groups: list[Group] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # copies across folds or sets
    notes: list[str] = field(default_factory=list)  # copies within a fold; hashes computed

    @property
    def summary(self) -> str:
        return summary(self.groups)

    def to_json(self) -> dict[str, Any]:
        return {
            "hamming": self.distance,
            "summary": self.summary,
            "problems": self.problems,
            "notes": self.notes,
            "groups": [
                {"kind": g.kind, "scope": g.scope, "images": [_item_json(i) for i in g.items]}
                for g in self.groups
            ],
        }


def check_duplicates(
    sets: Sequence[ShardSet],
    distance: int = DEFAULT_DISTANCE,
    progress: Callable[[int], None] = lambda n: None,
) -> DuplicateCheck:
    """Group the copies among the images of ``sets``; ``progress`` hears of each record
    hashed by decoding its image.

    Raises:
        ShardError: a sidecar or shard cannot be read, or a set's records hold no image key.
    """
    check = DuplicateCheck(distance)
    items: list[Item] = []
    for shard_set in sets:
        items += _set_items(shard_set, check.notes, progress)
    check.groups = find_groups(items, distance)
    by_scope: dict[str, list[Group]] = {}
    for group in check.groups:
        by_scope.setdefault(group.scope, []).append(group)
    for scope, groups in by_scope.items():
        leak = scope != "within a fold"
        shown = "; ".join(_describe(g) for g in groups[:_SHOWN])
        (check.problems if leak else check.notes).append(
            f"{len(groups)} groups of copies {scope}{' (leakage)' if leak else ''} "
            f"(hamming <= {distance}), e.g. {shown}"
        )
    return check


def _set_items(shard_set: ShardSet, notes: list[str], progress) -> list[Item]:
    """The set's images from its sidecar; those of shards the sidecar lacks, hashed."""
    manifest = load_manifest(shard_set.files)
    folds = {s.file: s.fold for s in manifest.shards} if manifest else {}
    rows, why = _sidecar_rows(shard_set.files, manifest)
    covered = {row.shard for row in rows}
    items = [
        Item(shard_set.label, r.image_id, r.shard, folds.get(r.shard), r.phash, r.sha256)
        for r in rows
    ]
    missing = [f for f in shard_set.files if naming.base_name(f) not in covered]
    if missing:
        undecodable: list[str] = []
        for path in missing:
            items += _hash_records(shard_set.label, path, folds, undecodable, progress)
        notes.append(
            f"{shard_set.label}: {why}; hashed the images of {len(missing)} shards by "
            f"decoding them (rebuild with tfrec build to write {naming.hashes_name('NAME')})"
        )
        if undecodable:
            notes.append(
                f"{len(undecodable)} images cannot be decoded and were left out, e.g. "
                f"{', '.join(undecodable[:_SHOWN])}"
            )
    return items


def _sidecar_rows(files: Sequence[str], manifest: Manifest | None):
    """(the sidecar's rows for ``files``, why the others need hashing)."""
    if manifest is None:
        return [], "no manifest lists its shards"
    if not manifest.hashes_file:
        return [], "its manifest lists no hashes sidecar (built before hashing)"
    path = fs.join(naming.folder_name(files[0]), manifest.hashes_file)
    if not fs.exists(path):
        return [], f"{path} is missing"
    if fs.sha256(path) != manifest.hashes_sha256:
        return [], f"{path} differs from the sha256 its manifest records"
    names = {naming.base_name(f) for f in files}
    rows = [row for row in read_hashes(path) if row.shard in names]
    return rows, f"{path} does not cover every shard"


def _hash_records(label, path, folds, undecodable: list[str], progress) -> list[Item]:
    """Hash the image of every record of ``path``; undecodable images are listed, not hashed."""
    keys = _keys(path)
    base, items = naming.base_name(path), []
    for index, example in enumerate(iter_examples(path)):
        features = example.features.feature
        image_id = as_text(record_value(features, keys["id"], f"{base}#{index}"))
        image = record_value(features, keys["image"], b"")
        fold = record_value(features, FOLD, folds.get(base))
        try:
            phash = bytes_hash(image)
        except ValueError:
            undecodable.append(f"{base} record {index} ({image_id})")
            continue
        finally:
            progress(1)
        items.append(Item(label, image_id, base, fold, phash, hashlib.sha256(image).hexdigest()))
    return items


def _keys(path: str) -> dict[str, str | None]:
    features = first_features(path) or {}
    kinds = {key: kind_of(feature) for key, feature in features.items()}
    image = guess_key("image", kinds)
    if features and image is None:
        raise ShardError(
            f"{path}: no image key found in its records (keys: {', '.join(sorted(kinds))}); "
            "duplicates need the image bytes"
        )
    return {"image": image, "id": guess_key("id", kinds)}


def _describe(group: Group) -> str:
    members = " = ".join(f"{i.set}:{i.image_id}" for i in group.items[:4])
    more = f" (+{len(group.items) - 4})" if len(group.items) > 4 else ""
    return f"{members}{more} ({group.kind})"


def _item_json(item: Item) -> dict[str, Any]:
    return {
        "set": item.set,
        "image_id": item.image_id,
        "shard": item.shard,
        "fold": item.fold,
        "hash": hash_text(item.phash),
    }
