"""Planning a build: CSV rows + image files -> matched, encoded rows -> stratified,
group-aware shards assigned to folds. Pure: no TensorFlow, no image decoding, no writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from tfrec_tools.builder.config import BuildConfig
from tfrec_tools.builder.folders import label_source
from tfrec_tools.builder.layout import Capacity, Layout, choose_layout
from tfrec_tools.builder.match import ImageIndex
from tfrec_tools.builder.rows import (
    Rejection,
    Rows,
    RowSpec,
    folder_rows,
    join_image,
    labeled_rows,
    unlabeled_rows,
)
from tfrec_tools.builder.split import assign_shards, assign_shards_multilabel
from tfrec_tools.errors import ConfigError, DataError
from tfrec_tools.schema import ColumnSpec, LabelSpec, Schema, build_schema, check_column_names

BYTES_PER_PIXEL = 0.3  # a q95 JPEG of a photo takes ~2.4 bits per pixel


class NothingToBuild(DataError):
    """Every row was rejected while planning; ``rejected`` says why, ``config`` is the build's
    resolved config (its name decided)."""

    def __init__(self, message: str, rejected: list[Rejection], config: BuildConfig) -> None:
        super().__init__(message)
        self.rejected = rejected
        self.config = config


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
        labels, columns, rows = folder_rows(config, index, rejected, classes)
    elif table is None:
        labels, columns, rows = (), (), unlabeled_rows(config, index, rejected)
    else:
        labels, columns, rows = labeled_rows(config, index, table, rejected, vocabularies or {})
        used = {spec.path for spec in rows.specs} | {r.path for r in rejected}
        unmatched = tuple(f for f in index.images if join_image(config, f) not in used)
    labels = _keyed(config, labels)
    # A build coded like another (--vocab-from) is a test or holdout set even when labeled
    name = config.name or ("train" if labels and not config.vocab_from else "test")
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


def _capacity(config: BuildConfig, rows: Rows, file_size: Callable[[str], int] | None) -> Capacity:
    units, unit_name = _split_units(rows)
    estimate = _estimate_bytes(config, rows.specs, file_size)
    return Capacity(len(rows.specs), units, unit_name, estimate)


def _split_units(rows: Rows) -> tuple[int, str]:
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


def _split(config: BuildConfig, rows: Rows, num_shards: int) -> tuple[ShardSpec, ...]:
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
