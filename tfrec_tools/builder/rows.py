"""A build's rows: image files and CSV rows matched, checked and encoded (labels, tags,
features), with a Rejection for every row that cannot be used. Pure: no TensorFlow, no image
decoding, no writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from tfrec_tools import fs
from tfrec_tools.builder.config import BuildConfig
from tfrec_tools.builder.folders import class_of
from tfrec_tools.builder.match import ImageIndex, normalise_id, strip_extension
from tfrec_tools.builder.table import (
    LABEL_CANDIDATES,
    TAG_CANDIDATES,
    Columns,
    LabelChoice,
    choose_label,
    column_spec,
    feature_encoder,
    is_missing,
    label_encoder,
    resolve_columns,
    tag_encoder,
    tag_spec,
    unknown_tags,
)
from tfrec_tools.errors import DataError
from tfrec_tools.schema import ColumnSpec, LabelSpec

REGRESSION_BINS = 10  # quantile bins a regression target is stratified on


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
class Rows:
    """Rows that survived matching, before they are split into shards."""

    specs: list[RowSpec]
    strata: np.ndarray  # stratification key per row
    groups: np.ndarray | None
    tags: np.ndarray | None = None  # multi-label: [rows, tags] bool, stratified on instead
    notes: tuple[str, ...] = ()  # each label's kind, and the cell that decided it
    warnings: tuple[str, ...] = ()  # a kind decided by a single cell


def join_image(config: BuildConfig, rel: str) -> str:
    return _prefix(config.images) + rel


@lru_cache(maxsize=8)
def _prefix(images: str) -> str:
    """``IMAGES/`` as fs.join writes it: joined once, not once per file."""
    return fs.join(images, "")


def unlabeled_rows(config: BuildConfig, index: ImageIndex, rejected: list[Rejection]) -> Rows:
    specs, seen = [], {}
    for rel in index.images:
        image_id, path = strip_extension(rel), join_image(config, rel)
        if image_id in seen:
            detail = f"{seen[image_id]} has the same id; rename one of them"
            rejected.append(Rejection(None, image_id, path, "duplicate id", detail))
            continue
        seen[image_id] = rel
        specs.append(RowSpec(None, image_id, path, ()))
    return Rows(specs, np.zeros(len(specs), dtype=np.int64), None)


def folder_rows(
    config: BuildConfig,
    index: ImageIndex,
    rejected: list[Rejection],
    classes: tuple[str, ...] | None = None,
) -> tuple[tuple[LabelSpec, ...], tuple[ColumnSpec, ...], Rows]:
    """Class folders: the top folder's name is the label; classes sorted by name, or
    ``classes`` (those of --vocab-from, so a holdout set gets training's codes)."""
    found = {c for c in map(class_of, index.images) if c is not None}
    classes = classes or tuple(sorted(found))
    code = {name: i for i, name in enumerate(classes)}
    known = [f for f in index.images if class_of(f) in code]
    kept = unlabeled_rows(config, ImageIndex(known), rejected)
    for rel in (f for f in index.images if class_of(f) not in code):
        if class_of(rel) is None:
            reason, detail = "no class", "images sit in class folders (IMAGES/CLASS/file)"
        else:
            reason, detail = "unknown class", f"{class_of(rel)!r} is not among --vocab-from's"
        path = join_image(config, rel)
        rejected.append(Rejection(None, strip_extension(rel), path, reason, detail))
    specs = [replace(spec, values=(code[class_of(spec.image_id)],)) for spec in kept.specs]
    strata = np.asarray([s.values[0] for s in specs], dtype=np.int64)
    return (LabelSpec("label", "classification", classes),), (), Rows(specs, strata, None)


def labeled_rows(
    config: BuildConfig,
    index: ImageIndex,
    table: pd.DataFrame,
    rejected: list[Rejection],
    vocabularies: dict[str, tuple[str, ...]],
) -> tuple[tuple[LabelSpec, ...], tuple[ColumnSpec, ...], Rows]:
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
    kept = table.iloc[[i for i, _ in keep]]
    if config.multi_label:
        labels = _tag_specs(config, cols, kept, vocabularies)
        fitting, choices = _known_tags(config, table, cols, labels, keep, rejected), []
    else:
        numbers = kept.index.tolist()
        choices = [choose_label(c, kept[c].tolist(), numbers) for c in cols.labels]
        labels = tuple(choice.spec for choice in choices)
        fitting = _fitting_labels(table, cols, choices, keep, rejected)
    if len(fitting) < len(keep):
        keep, kept = fitting, table.iloc[[i for i, _ in fitting]]
    columns = tuple(
        column_spec(c, kept[c].tolist(), vocabularies.get(c, ())) for c in cols.features
    )
    encoders = _label_encoders(config, labels) + [feature_encoder(s) for s in columns]
    value_columns = [kept[c].tolist() for c in cols.labels + cols.features]
    value_rows = zip(*value_columns) if value_columns else [()] * len(kept)
    ids, numbers = kept[cols.id].tolist(), kept.index.tolist()
    specs = [
        RowSpec(row, str(image_id), path, tuple(encode(v) for encode, v in zip(encoders, values)))
        for row, (_, path), image_id, values in zip(numbers, keep, ids, value_rows)
    ]
    groups = kept[cols.group].to_numpy() if cols.group else None
    rows = _stratified(labels, specs, groups)
    notes = tuple(choice.note for choice in choices)
    warnings = tuple(choice.warning for choice in choices if choice.warning)
    return labels, columns, replace(rows, notes=notes, warnings=warnings)


def _stratified(
    labels: tuple[LabelSpec, ...], specs: list[RowSpec], groups: np.ndarray | None
) -> Rows:
    """The rows with what they are stratified on: the first label's class (or bin), or its
    tags; without labels, one stratum."""
    no_strata = np.zeros(len(specs), np.int64)
    if not labels:
        return Rows(specs, no_strata, groups)
    first = [s.values[0] for s in specs]
    if labels[0].kind == "multilabel":
        tags = np.asarray(first, dtype=bool).reshape(len(specs), labels[0].num_classes)
        return Rows(specs, no_strata, groups, tags)
    return Rows(specs, _strata(labels[0], first), groups)


def _tag_specs(
    config: BuildConfig,
    cols: Columns,
    kept: pd.DataFrame,
    vocabularies: dict[str, tuple[str, ...]],
) -> tuple[LabelSpec, ...]:
    """The tags of each label column (--multi-label): those of --vocab-from's label under
    the same record key, when it has one."""
    if not cols.labels:
        raise DataError(
            f"{config.labels_csv}: --multi-label needs a label column, and the CSV has none "
            f"named {', '.join(TAG_CANDIDATES)}: pass --label-col COLUMN"
        )
    return tuple(
        tag_spec(c, kept[c].tolist(), config.label_sep, vocabularies.get(config.label_key or c, ()))
        for c in cols.labels
    )


def _fitting_labels(
    table: pd.DataFrame,
    cols: Columns,
    choices: list[LabelChoice],
    keep: list[tuple[int, str]],
    rejected: list[Rejection],
) -> list[tuple[int, str]]:
    """The rows whose labels fit their column's kind; the others (``inf`` among numbers:
    neither a class index nor a target) are rejected as ``non-finite label``."""
    checks = [(choice, table[choice.spec.name].tolist()) for choice in choices if choice.unfit]
    if not checks:
        return keep
    fitting = []
    for i, path in keep:
        bad = [(c.spec.name, cells[i]) for c, cells in checks if not c.fits(cells[i])]
        if not bad:
            fitting.append((i, path))
            continue
        column, value = bad[0]
        detail = f"column {column!r} holds {value!r}; a numeric label must be finite (float32)"
        row, image_id = int(table.index[i]), table[cols.id].iat[i]
        rejected.append(Rejection(row, image_id, path, "non-finite label", detail))
    return fitting


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
        rejected.append(Rejection(int(table.index[i]), image_id, path, "unknown tag", detail))
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
    numbers = table.index.tolist()  # spreadsheet rows (read_table)
    for i, values in enumerate(zip(*(table[c].tolist() for c in needed))):
        record = dict(zip(needed, values))
        row, image_id = numbers[i], record[id_col]
        match = index.match(image_id) if image_id else None
        path = join_image(config, match.path) if match and match.path else ""
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
    if match.reason:  # no file, several, or one the walk skipped
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
