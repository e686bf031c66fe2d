"""Planning a build: CSV rows + image files -> matched, encoded rows -> stratified,
group-aware shards assigned to folds. Pure: no TensorFlow, no image decoding, no writes."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from tfrec_tools.builder.config import BuildConfig
from tfrec_tools.builder.folders import label_source
from tfrec_tools.builder.layout import Capacity, Layout, choose_layout
from tfrec_tools.builder.match import ImageIndex, is_hidden, is_image_name, strip_extension
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
from tfrec_tools.builder.walk import Skipped
from tfrec_tools.errors import ConfigError, DataError
from tfrec_tools.schema import ColumnSpec, LabelSpec, Schema, build_schema, check_column_names

BYTES_PER_PIXEL = 0.3  # a q95 JPEG of a photo takes ~2.4 bits per pixel
FOLD_IMBALANCE = 1.5  # a fold over this many times its share of the records gets a warning


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
    notes: tuple[str, ...] = ()  # each label's kind and the cell that decided it
    warnings: tuple[str, ...] = ()  # for the CLI to print: the plan works, but look at this

    @cached_property  # serialises every planned row: computed once, read several times
    def fingerprint(self) -> str:
        """Changes whenever the options or any planned record change (guards --resume)."""
        shards = [
            [s.index, s.fold, [[r.row, r.image_id, r.path, list(r.values)] for r in s.rows]]
            for s in self.shards
        ]
        options = self.config.to_json()
        if self.config.sizes:  # one fingerprint for the build of every size of a pass
            options["image"]["size"] = None
        payload = {"config": options, "shards": shards}
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_plan(
    config: BuildConfig,
    files: Sequence[str],
    table: pd.DataFrame | None,
    file_size: Callable[[str], int] | None = None,
    vocabularies: dict[str, tuple[str, ...]] | None = None,
    skipped: Sequence[Skipped] = (),
) -> Plan:
    """Plan a build from the files under ``config.images`` (relative paths), what the walk
    skipped there (``walk_images``) and the CSV (as ``read_table`` returns it: indexed by
    spreadsheet row); ``vocabularies`` fixes the codes of categorical feature columns
    (``--vocab-from``).

    Raises:
        DataError: no row can be used, or the rows cannot fill the shards asked for.
        ConfigError: the options contradict the data.
    """
    rejected: list[Rejection] = []
    index = ImageIndex(files, skipped)
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
        images = index.images + [s.rel for s in skipped if is_image_name(s.rel)]
        unmatched = tuple(sorted(f for f in images if join_image(config, f) not in used))
    if table is None:
        rejected += _skipped_rows(config, skipped)
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
        notes=rows.notes,
        warnings=rows.warnings + _fold_warnings(shards, config.folds, rows.groups),
    )


def _skipped_rows(config: BuildConfig, skipped: Sequence[Skipped]) -> list[Rejection]:
    """A rejected row (no row number) for each file the walk skipped that a build without a
    CSV would have taken (an image name), and each folder or link it did not follow (what
    is under it is unknown); hidden ones (``.git``) are left out, as their images would be."""
    return [
        Rejection(None, strip_extension(s.rel), join_image(config, s.rel), s.reason, s.detail)
        for s in skipped
        if is_image_name(s.rel) or (s.folder and not is_hidden(s.rel))
    ]


def _fold_warnings(
    shards: tuple[ShardSpec, ...], folds: int, groups: np.ndarray | None
) -> tuple[str, ...]:
    """A warning when the largest fold holds over FOLD_IMBALANCE times its share of the
    records, and more than one record above it (rounding, on tiny data): a group never
    spans folds, so one large group makes one large fold. Rows alone are dealt evenly."""
    if not folds or groups is None:
        return ()
    sizes = [0] * folds
    for shard in shards:
        sizes[shard.fold] += len(shard.rows)
    share = sum(sizes) / folds
    largest = max(range(folds), key=sizes.__getitem__)
    if sizes[largest] <= max(FOLD_IMBALANCE * share, math.ceil(share) + 1):
        return ()
    group, rows = Counter(groups.tolist()).most_common(1)[0]
    return (
        f"folds are uneven: {', '.join(map(str, sizes))} records per fold; fold {largest} "
        f"holds {sizes[largest] / share:.1f}x its share of {share:g}, as group {group!r} alone "
        f"holds {rows} rows and a group never spans folds: pass --folds 0 (no folds), or a "
        "--group-col with smaller groups",
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
    if config.image.size is not None:  # a pass of several sizes: its largest decides
        height, width = max(config.sizes or (config.image.size,), key=lambda s: s[0] * s[1])
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
