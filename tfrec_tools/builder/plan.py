"""Planning a build: CSV rows + image files -> matched, encoded rows -> stratified,
group-aware shards assigned to folds. Pure: no TensorFlow, no image decoding, no writes."""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from tfrec_tools import fs
from tfrec_tools.builder.config import MIN_AUTO_SHARDS, BuildConfig, round_up
from tfrec_tools.builder.match import ImageIndex, is_image_name, normalise_id, strip_extension
from tfrec_tools.builder.table import (
    FIRST_DATA_ROW,
    column_spec,
    feature_encoder,
    is_missing,
    label_encoder,
    label_spec,
    resolve_columns,
)
from tfrec_tools.errors import DataError
from tfrec_tools.schema import ColumnSpec, LabelSpec, Schema, build_schema

BYTES_PER_PIXEL = 0.3  # a q95 JPEG of a photo takes ~2.4 bits per pixel
REGRESSION_BINS = 10  # quantile bins a regression target is stratified on


class NothingToBuild(DataError):
    """Every row was rejected while planning; ``rejected`` says why."""

    def __init__(self, message: str, rejected: list[Rejection]) -> None:
        super().__init__(message)
        self.rejected = rejected


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
    """Everything the writer needs, decided up front and identical on every run."""

    config: BuildConfig
    schema: Schema
    labels: tuple[LabelSpec, ...]
    columns: tuple[ColumnSpec, ...]
    shards: tuple[ShardSpec, ...]
    rejected: tuple[Rejection, ...]
    unmatched: tuple[str, ...]  # image files no CSV row names
    num_rows: int  # CSV rows, or image files for an unlabeled build

    @cached_property  # serialises every planned row: computed once, read several times
    def fingerprint(self) -> str:
        """Changes whenever the options or any planned record change (guards --resume)."""
        payload = {"config": self.config.to_json(), "shards": [asdict(s) for s in self.shards]}
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
    if table is None:
        labels, columns, rows = (), (), _unlabeled_rows(config, index, rejected)
        unmatched: tuple[str, ...] = ()
    else:
        labels, columns, rows = _labeled_rows(config, index, table, rejected, vocabularies or {})
        used = {spec.path for spec in rows.specs} | {r.path for r in rejected}
        unmatched = tuple(
            f for f in index.files if is_image_name(f) and _join(config, f) not in used
        )
    if not rows.specs:
        raise NothingToBuild(
            f"{config.images}: no usable image (all {len(rejected)} rows rejected)", rejected
        )
    num_shards = _count_shards(config, rows, file_size)
    shards = _split(config, rows, num_shards)
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
    )


def _join(config: BuildConfig, rel: str) -> str:
    return fs.join(config.images, rel)


def _unlabeled_rows(config: BuildConfig, index: ImageIndex, rejected: list[Rejection]) -> _Rows:
    specs, seen = [], {}
    for rel in (f for f in index.files if is_image_name(f)):
        image_id, path = strip_extension(rel), _join(config, rel)
        if image_id in seen:
            detail = f"{seen[image_id]} has the same id; rename one of them"
            rejected.append(Rejection(None, image_id, path, "duplicate id", detail))
            continue
        seen[image_id] = rel
        specs.append(RowSpec(None, image_id, path, ()))
    return _Rows(specs, np.zeros(len(specs), dtype=np.int64), None)


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
    value_rows = kept[list(cols.labels + cols.features)].itertuples(index=False, name=None)
    specs = [
        RowSpec(
            i + FIRST_DATA_ROW,
            str(table.iat[i, table.columns.get_loc(cols.id)]),
            path,
            tuple(encode(v) for encode, v in zip(encoders, values)),
        )
        for (i, path), values in zip(keep, value_rows)
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
    for i, record in enumerate(table.to_dict("records")):
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


def _count_shards(config: BuildConfig, rows: _Rows, file_size: Callable[[str], int] | None) -> int:
    """--shards, else enough files of ~shard_size_mb, at least MIN_AUTO_SHARDS; a multiple of
    --folds; never more than there are rows (or groups) to fill them."""
    units, unit_name = _split_units(rows)
    step = config.folds or 1
    if config.shards is not None:
        if config.shards > units:
            raise DataError(
                f"cannot fill {config.shards} shards from {units} {unit_name}: every shard needs "
                f"at least one; pass --shards {max(step, units - units % step)} or fewer"
            )
        return config.shards
    total = _estimate_bytes(config, rows.specs, file_size)
    wanted = max(math.ceil(total / (config.shard_size_mb * 1e6)), MIN_AUTO_SHARDS)
    shards = min(round_up(wanted, step), units - units % step)
    if shards < step:
        raise DataError(
            f"cannot make {config.folds} folds from {units} {unit_name}: each fold needs at "
            f"least one; pass --folds {units} or fewer"
        )
    return shards


def _split_units(rows: _Rows) -> tuple[int, str]:
    """How many shards the rows can fill: one group each, or (no groups) as many as the
    largest class has rows, since stratified splitting needs one of them per shard."""
    if rows.groups is not None:
        return len(set(rows.groups)), "groups"
    return int(np.bincount(rows.strata).max()), "rows of the largest class"


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
    members = _shard_members(rows, num_shards, config.seed)
    shards = []
    for index, positions in enumerate(members):
        if len(positions) == 0:
            raise DataError(
                f"shard {index} of {num_shards} came out empty (too few rows or groups for so "
                f"many shards); pass a smaller --shards"
            )
        order = np.random.default_rng([config.seed, index]).permutation(positions)
        fold = index % config.folds if config.folds else None
        shards.append(ShardSpec(index, fold, tuple(rows.specs[p] for p in order)))
    return tuple(shards)


def _shard_members(rows: _Rows, num_shards: int, seed: int) -> list[np.ndarray]:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    positions = np.arange(len(rows.specs))
    if num_shards == 1:
        return [positions]
    if rows.groups is None:
        splitter = StratifiedKFold(num_shards, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedGroupKFold(num_shards, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # "The least populated class has only N members": expected for rare classes; those
        # rows still land in some shard, the spread is just less even.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return [test for _, test in splitter.split(positions, rows.strata, rows.groups)]
        except ValueError as err:
            raise DataError(
                f"cannot split {len(positions)} rows into {num_shards} stratified shards "
                f"({err}); pass a smaller --shards"
            ) from err
