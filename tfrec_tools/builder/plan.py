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
from tfrec_tools.builder.split import assign_shards, assign_shards_multilabel
from tfrec_tools.builder.table import (
    FIRST_DATA_ROW,
    LABEL_CANDIDATES,
    TAG_CANDIDATES,
    Columns,
    column_spec,
    feature_encoder,
    is_missing,
    label_encoder,
    label_spec,
    resolve_columns,
    tag_encoder,
    tag_spec,
    unknown_tags,
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
    # label columns, then feature columns, in schema order; a multi-label column's value is
    # its multi-hot tuple of 0/1
    values: tuple[int | float | tuple[int, ...], ...]


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
    tags: np.ndarray | None = None  # multi-label: [rows, tags] bool, stratified on instead


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
        label_candidates=TAG_CANDIDATES if config.multi_label else LABEL_CANDIDATES,
    )
    keep = _matched_rows(config, index, table, cols, rejected)
    labels = _label_specs(config, cols, table.iloc[[i for i, _ in keep]], vocabularies)
    if config.multi_label:
        keep = _known_tags(config, table, cols, labels, keep, rejected)
    kept = table.iloc[[i for i, _ in keep]]
    columns = tuple(
        column_spec(c, kept[c].tolist(), vocabularies.get(c, ())) for c in cols.features
    )
    encoders = _label_encoders(config, labels) + [feature_encoder(s) for s in columns]
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
    groups = kept[cols.group].to_numpy() if cols.group else None
    return labels, columns, _stratified(labels, specs, groups)


def _stratified(
    labels: tuple[LabelSpec, ...], specs: list[RowSpec], groups: np.ndarray | None
) -> _Rows:
    """The rows with what they are stratified on: the first label's class (or bin), or its
    tags; without labels, one stratum."""
    no_strata = np.zeros(len(specs), np.int64)
    if not labels:
        return _Rows(specs, no_strata, groups)
    first = [s.values[0] for s in specs]
    if labels[0].kind == "multilabel":
        tags = np.asarray(first, dtype=bool).reshape(len(specs), labels[0].num_classes)
        return _Rows(specs, no_strata, groups, tags)
    return _Rows(specs, _strata(labels[0], first), groups)


def _label_specs(
    config: BuildConfig,
    cols: Columns,
    kept: pd.DataFrame,
    vocabularies: dict[str, tuple[str, ...]],
) -> tuple[LabelSpec, ...]:
    """Classes or values of each label column; with --multi-label, the tags of each (those of
    --vocab-from's label under the same record key, when it has one)."""
    if not config.multi_label:
        return tuple(label_spec(c, kept[c].tolist()) for c in cols.labels)
    if not cols.labels:
        raise DataError(
            f"{config.labels_csv}: --multi-label needs a label column, and the CSV has none "
            f"named {', '.join(TAG_CANDIDATES)}: pass --label-col COLUMN"
        )
    return tuple(
        tag_spec(c, kept[c].tolist(), config.label_sep, vocabularies.get(config.label_key or c, ()))
        for c in cols.labels
    )


def _label_encoders(config: BuildConfig, labels: tuple[LabelSpec, ...]) -> list[Callable]:
    if config.multi_label:
        return [tag_encoder(s, config.label_sep) for s in labels]
    return [label_encoder(s) for s in labels]


def _known_tags(
    config: BuildConfig,
    table: pd.DataFrame,
    cols: Columns,
    labels: tuple[LabelSpec, ...],
    keep: list[tuple[int, str]],
    rejected: list[Rejection],
) -> list[tuple[int, str]]:
    """The rows whose tags are all among their label's tags; the others are rejected as
    ``unknown tag`` (only a reused vocabulary, --vocab-from, can lack a tag)."""
    known = []
    cells = [table[c].tolist() for c in cols.labels]
    for i, path in keep:
        unknown = [
            (spec, unknown_tags(spec, column[i], config.label_sep))
            for spec, column in zip(labels, cells)
        ]
        spec, tags = next(((s, t) for s, t in unknown if t), (None, []))
        if not tags:
            known.append((i, path))
            continue
        detail = (
            f"{', '.join(map(repr, tags[:3]))} not among the {spec.num_classes} tags of "
            f"--vocab-from {config.vocab_from}"
        )
        image_id = table[cols.id].iat[i]
        rejected.append(Rejection(i + FIRST_DATA_ROW, image_id, path, "unknown tag", detail))
    return known


def _matched_rows(
    config: BuildConfig,
    index: ImageIndex,
    table: pd.DataFrame,
    cols: Columns,
    rejected: list[Rejection],
) -> list[tuple[int, str]]:
    """(row position, image path) of every row that names one image and has what it needs."""
    keep, first_id, first_file = [], {}, {}
    id_col, group_col = cols.id, cols.group
    needed = [id_col, *cols.labels] + ([group_col] if group_col else [])
    for i, values in enumerate(zip(*(table[c].tolist() for c in needed))):
        record = dict(zip(needed, values))
        row, image_id = i + FIRST_DATA_ROW, record[id_col]
        match = index.match(image_id) if image_id else None
        path = _join(config, match.path) if match and match.path else ""
        reason, detail = _row_problem(record, match, cols, tags=config.multi_label)
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


def _row_problem(record, match, cols: Columns, *, tags: bool) -> tuple[str, str]:
    """Why a row cannot be used ("" when it can). A multi-label cell that is empty is the
    empty tag set; one holding a missing-value token (``nan``, ``NA``, ...) is missing."""
    if match is None:
        return "missing id", "the id cell is empty"
    if match.path is None:
        return match.reason, match.detail
    for column in cols.labels:
        value = record[column]
        if is_missing(value) and not (tags and value == ""):
            detail = "is empty" if value == "" else f"holds {value!r}, a missing-value token"
            return "missing label", f"column {column!r} {detail}"
    if cols.group and is_missing(record[cols.group]):
        return "missing group", f"column {cols.group!r} is empty"
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
    if rows.tags is not None:
        members = assign_shards_multilabel(rows.tags, rows.groups, num_shards, config.seed)
    else:
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
