"""Planning a build: CSV rows + image files -> matched, encoded rows -> stratified,
group-aware shards assigned to folds. Pure: no TensorFlow, no image decoding, no writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd

from tfrec_tools import fs
from tfrec_tools.builder.config import BuildConfig
from tfrec_tools.builder.folders import class_of, label_source
from tfrec_tools.builder.layout import Capacity, Layout, choose_layout
from tfrec_tools.builder.match import ImageIndex, normalise_id, strip_extension
from tfrec_tools.builder.split import assign_shards
from tfrec_tools.builder.table import (
    FIRST_DATA_ROW,
    column_spec,
    feature_encoder,
    is_missing,
    label_encoder,
    label_spec,
    resolve_columns,
)
from tfrec_tools.errors import ConfigError, DataError
from tfrec_tools.schema import ColumnSpec, LabelSpec, Schema, build_schema, check_column_names

BYTES_PER_PIXEL = 0.3  # a q95 JPEG of a photo takes ~2.4 bits per pixel
REGRESSION_BINS = 10  # quantile bins a regression target is stratified on


class NothingToBuild(DataError):
    """Every row was rejected while planning; ``rejected`` says why, ``config`` is the build's
    resolved config (its name decided)."""

    def __init__(self, message: str, rejected: list[Rejection], config: BuildConfig) -> None:
        super().__init__(message)
        self.rejected = rejected
        self.config = config


@dataclass(frozen=True)
class Rejection:
    """A row (or, unlabeled, a file) that reached no shard, and why."""

    row: int | None
    image_id: str
    path: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class RowSpec:
    """One record to write: the image to read and its encoded labels and features."""

    row: int | None
    image_id: str
    path: str
    values: tuple[int | float, ...]  # label columns, then feature columns, in schema order


@dataclass(frozen=True)
class ShardSpec:
    index: int
    fold: int | None
    rows: tuple[RowSpec, ...]


@dataclass(frozen=True)
class Plan:
    """Everything the writer needs, decided up front and identical on every run. ``config``
    is resolved: its name, folds and label source are decided."""

    config: BuildConfig
    schema: Schema
    labels: tuple[LabelSpec, ...]
    columns: tuple[ColumnSpec, ...]
    shards: tuple[ShardSpec, ...]
    rejected: tuple[Rejection, ...]
    unmatched: tuple[str, ...]  # image files no CSV row names
    num_rows: int  # CSV rows, or image files for a build without a CSV
    layout: Layout  # the shard and fold counts and why
    groups: int | None = None  # distinct groups (--group-col), None without groups

    @cached_property  # serialises every planned row: computed once, read several times
    def fingerprint(self) -> str:
        """Changes whenever the options or any planned record change (guards --resume)."""
        shards = [
            [s.index, s.fold, [[r.row, r.image_id, r.path, list(r.values)] for r in s.rows]]
            for s in self.shards
        ]
        payload = {"config": self.config.to_json(), "shards": shards}
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Rows:
    """Rows that survived matching, before they are split into shards."""

    specs: list[RowSpec]
    strata: np.ndarray  # stratification key per row
    groups: np.ndarray | None


def make_plan(
    config: BuildConfig,
    files: Sequence[str],
    table: pd.DataFrame | None,
    file_size: Callable[[str], int] | None = None,
    vocabularies: dict[str, tuple[str, ...]] | None = None,
) -> Plan:
    """Plan a build from the files under ``config.images`` (relative paths) and the CSV;
    ``vocabularies`` fixes the codes of categorical feature columns (``--vocab-from``).

    Raises:
        DataError: no row can be used, or the rows cannot fill the shards asked for.
        ConfigError: the options contradict the data.
    """
    rejected: list[Rejection] = []
    index = ImageIndex(files)
    source = label_source(config, index.images, table)
    unmatched: tuple[str, ...] = ()
    if source == "folders":
        classes = (vocabularies or {}).get(config.label_key or "label")
        labels, columns, rows = _folder_rows(config, index, rejected, classes)
    elif table is None:
        labels, columns, rows = (), (), _unlabeled_rows(config, index, rejected)
    else:
        labels, columns, rows = _labeled_rows(config, index, table, rejected, vocabularies or {})
        used = {spec.path for spec in rows.specs} | {r.path for r in rejected}
        unmatched = tuple(f for f in index.images if _join(config, f) not in used)
    labels = _keyed(config, labels)
    name = config.name or ("train" if labels else "test")
    config = replace(config, name=name, labels_from=source)
    if not rows.specs:
        raise NothingToBuild(
            f"{config.images}: no usable image (all {len(rejected)} rows rejected)",
            rejected,
            config,
        )
    layout = choose_layout(
        _capacity(config, rows, file_size),
        shards=config.shards,
        folds=config.folds,
        labeled=bool(labels),
        shard_size_mb=config.shard_size_mb,
    )
    config = replace(config, folds=layout.folds)
    shards = _split(config, rows, layout.shards)
    schema = build_schema(labels, columns, with_fold=bool(config.folds))
    return Plan(
        config,
        schema,
        labels,
        columns,
        shards,
        tuple(rejected),
        unmatched,
        num_rows=len(table) if table is not None else len(rows.specs) + len(rejected),
        layout=layout,
        groups=None if rows.groups is None else len(set(rows.groups)),
    )


def _keyed(config: BuildConfig, labels: tuple[LabelSpec, ...]) -> tuple[LabelSpec, ...]:
    """The labels under their record keys: ``--label-key`` renames the single label."""
    if config.label_key is None:
        return labels
    if len(labels) != 1:
        raise ConfigError(
            f"--label-key names the key of a single label; this build has {len(labels)} labels"
        )
    keyed = (replace(labels[0], name=config.label_key),)
    check_column_names(tuple(c.name for c in keyed))
    return keyed


def _join(config: BuildConfig, rel: str) -> str:
    return _prefix(config.images) + rel


@lru_cache(maxsize=8)
def _prefix(images: str) -> str:
    """``IMAGES/`` as fs.join writes it: joined once, not once per file."""
    return fs.join(images, "")


def _unlabeled_rows(config: BuildConfig, index: ImageIndex, rejected: list[Rejection]) -> _Rows:
    specs, seen = [], {}
    for rel in index.images:
        image_id, path = strip_extension(rel), _join(config, rel)
        if image_id in seen:
            detail = f"{seen[image_id]} has the same id; rename one of them"
            rejected.append(Rejection(None, image_id, path, "duplicate id", detail))
            continue
        seen[image_id] = rel
        specs.append(RowSpec(None, image_id, path, ()))
    return _Rows(specs, np.zeros(len(specs), dtype=np.int64), None)


def _folder_rows(
    config: BuildConfig,
    index: ImageIndex,
    rejected: list[Rejection],
    classes: tuple[str, ...] | None = None,
) -> tuple[tuple[LabelSpec, ...], tuple[ColumnSpec, ...], _Rows]:
    """Class folders: the top folder's name is the label; classes sorted by name, or
    ``classes`` (those of --vocab-from, so a holdout set gets training's codes)."""
    found = {c for c in map(class_of, index.images) if c is not None}
    classes = classes or tuple(sorted(found))
    code = {name: i for i, name in enumerate(classes)}
    known = [f for f in index.images if class_of(f) in code]
    kept = _unlabeled_rows(config, ImageIndex(known), rejected)
    for rel in (f for f in index.images if class_of(f) not in code):
        if class_of(rel) is None:
            reason, detail = "no class", "images sit in class folders (IMAGES/CLASS/file)"
        else:
            reason, detail = "unknown class", f"{class_of(rel)!r} is not among --vocab-from's"
        path = _join(config, rel)
        rejected.append(Rejection(None, strip_extension(rel), path, reason, detail))
    specs = [replace(spec, values=(code[class_of(spec.image_id)],)) for spec in kept.specs]
    strata = np.asarray([s.values[0] for s in specs], dtype=np.int64)
    return (LabelSpec("label", "classification", classes),), (), _Rows(specs, strata, None)


def _labeled_rows(
    config: BuildConfig,
    index: ImageIndex,
    table: pd.DataFrame,
    rejected: list[Rejection],
    vocabularies: dict[str, tuple[str, ...]],
) -> tuple[tuple[LabelSpec, ...], tuple[ColumnSpec, ...], _Rows]:
    cols = resolve_columns(
        table,
        config.labels_csv or "",
        id_col=config.id_col,
        label_cols=config.label_cols,
        group_col=config.group_col,
        feature_cols=config.feature_cols,
    )
    keep = _matched_rows(config, index, table, cols.id, cols.labels, cols.group, rejected)
    kept = table.iloc[[i for i, _ in keep]]
    labels = tuple(label_spec(c, kept[c].tolist()) for c in cols.labels)
    columns = tuple(
        column_spec(c, kept[c].tolist(), vocabularies.get(c, ())) for c in cols.features
    )
    encoders = [label_encoder(s) for s in labels] + [feature_encoder(s) for s in columns]
    value_columns = [kept[c].tolist() for c in cols.labels + cols.features]
    value_rows = zip(*value_columns) if value_columns else [()] * len(kept)
    ids = kept[cols.id].tolist()
    specs = [
        RowSpec(
            i + FIRST_DATA_ROW,
            str(image_id),
            path,
            tuple(encode(v) for encode, v in zip(encoders, values)),
        )
        for (i, path), image_id, values in zip(keep, ids, value_rows)
    ]
    strata = (
        _strata(labels[0], [s.values[0] for s in specs])
        if labels
        else np.zeros(len(specs), np.int64)
    )
    groups = kept[cols.group].to_numpy() if cols.group else None
    return labels, columns, _Rows(specs, strata, groups)


def _matched_rows(
    config: BuildConfig,
    index: ImageIndex,
    table: pd.DataFrame,
    id_col: str,
    label_cols: tuple[str, ...],
    group_col: str | None,
    rejected: list[Rejection],
) -> list[tuple[int, str]]:
    """(row position, image path) of every row that names one image and has what it needs."""
    keep, first_id, first_file = [], {}, {}
    needed = [id_col, *label_cols] + ([group_col] if group_col else [])
    for i, values in enumerate(zip(*(table[c].tolist() for c in needed))):
        record = dict(zip(needed, values))
        row, image_id = i + FIRST_DATA_ROW, record[id_col]
        match = index.match(image_id) if image_id else None
        path = _join(config, match.path) if match and match.path else ""
        reason, detail = _row_problem(record, match, label_cols, group_col)
        key = normalise_id(image_id)
        if not reason and key in first_id:
            reason, detail = "duplicate id", f"first seen on row {first_id[key]}"
        if not reason and path in first_file:
            reason, detail = "duplicate image", f"row {first_file[path]} names the same file"
        if reason:
            rejected.append(Rejection(row, image_id, path, reason, detail))
            continue
        first_id[key], first_file[path] = row, row
        keep.append((i, path))
    return keep


def _row_problem(record, match, label_cols, group_col) -> tuple[str, str]:
    if match is None:
        return "missing id", "the id cell is empty"
    if match.path is None:
        return match.reason, match.detail
    for column in label_cols:
        if is_missing(record[column]):
            return "missing label", f"column {column!r} is empty"
    if group_col and is_missing(record[group_col]):
        return "missing group", f"column {group_col!r} is empty"
    return "", ""


def _strata(spec: LabelSpec, values: list[int | float]) -> np.ndarray:
    """Class index, or the quantile bin of a regression target (first label column)."""
    if spec.kind == "classification":
        return np.asarray(values, dtype=np.int64)
    bins = pd.qcut(np.asarray(values), q=REGRESSION_BINS, labels=False, duplicates="drop")
    return np.asarray(bins, dtype=np.int64)


def _capacity(config: BuildConfig, rows: _Rows, file_size: Callable[[str], int] | None) -> Capacity:
    units, unit_name = _split_units(rows)
    estimate = _estimate_bytes(config, rows.specs, file_size)
    return Capacity(len(rows.specs), units, unit_name, estimate)


def _split_units(rows: _Rows) -> tuple[int, str]:
    """How many shards the rows can fill: one group each, or one row each."""
    if rows.groups is not None:
        return len(set(rows.groups)), "groups"
    return len(rows.specs), "rows"


def _estimate_bytes(
    config: BuildConfig, specs: list[RowSpec], file_size: Callable[[str], int] | None
) -> float:
    if config.image.size is not None:
        height, width = config.image.size
        return len(specs) * height * width * BYTES_PER_PIXEL
    sample = specs[:: max(1, len(specs) // 100)]
    if file_size is None:
        return len(specs) * 200e3
    return len(specs) * float(np.mean([file_size(s.path) for s in sample]))


def _split(config: BuildConfig, rows: _Rows, num_shards: int) -> tuple[ShardSpec, ...]:
    """Each shard a stratified slice; no group in two shards; shard i in fold i % folds."""
    members = assign_shards(rows.strata, rows.groups, num_shards, config.seed)
    shards = []
    for index, positions in enumerate(members):
        if len(positions) == 0:
            raise DataError(
                f"shard {index} of {num_shards} came out empty (too few rows or groups for so "
                f"many shards); pass a smaller --shards"
            )
        order = np.random.default_rng([config.seed, index]).permutation(positions)
        fold = index % config.folds if config.folds else None  # config is resolved
        shards.append(ShardSpec(index, fold, tuple(rows.specs[p] for p in order)))
    return tuple(shards)
