"""How many shards and folds: chosen together, so K divides the shard count, with one line
saying why. Pure arithmetic: no files, no TensorFlow.

Why the counts are what they are:
- K-fold CV over shards needs K to divide the shard count (shard i is in fold i % K).
- 5 folds is the Kaggle convention (the reference notebooks' ``FOLDS = 5``); with ``--shards``
  given, the divisor of it nearest 5 is taken instead (16 shards: 4 folds).
- ~100 MB per shard reads well from local disk and from GCS (the TPU guides' 100-200 MB).
- Where the data allows, a multiple of 8: TPU v3-8 / v4-8 hosts have 8 cores, and input that is
  split by file (TPU pod slices, multi-worker training, ``interleave`` over 8 readers) keeps every
  reader equally busy only when the files divide evenly. At least 16 files for parallel reads.
- Never so many files that a shard holds fewer than MIN_RECORDS_PER_SHARD records: tiny files
  cost a file open each and make per-shard class shares noisy (60 images make 1 shard, not 16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tfrec_tools.builder.config import round_up
from tfrec_tools.errors import ConfigError, DataError

DEFAULT_FOLDS = 5
TPU_CORES = 8
MIN_AUTO_SHARDS = 16  # enough files for parallel reads on 8 TPU cores or many workers
MIN_RECORDS_PER_SHARD = 32  # "a few dozen": below this, shards are more overhead than data


@dataclass(frozen=True)
class Layout:
    """The chosen shard and fold counts, and the one-line reason for them."""

    shards: int
    folds: int  # 0: no folds
    reason: str


@dataclass(frozen=True)
class Capacity:
    """What the rows allow: ``units`` is how many shards they can fill (groups, or rows)."""

    records: int
    units: int
    unit_name: str
    estimated_bytes: float


def choose_layout(
    capacity: Capacity,
    *,
    shards: int | None,
    folds: int | None,
    labeled: bool,
    shard_size_mb: float,
) -> Layout:
    """The shard and fold counts for a build (``shards``/``folds`` None: choose them).

    Raises:
        ConfigError: folds asked for an unlabeled build.
        DataError: the rows cannot fill the shards or folds asked for.
    """
    if folds and not labeled:
        raise ConfigError("--folds needs labels: this build has none (no label column)")
    if shards is not None:
        _check_fill(capacity, shards, folds or 1)
        chosen = _folds_for(shards, labeled) if folds is None else folds
        why = "--shards as given"
        if folds is None and chosen:
            why += f"; {chosen} folds, the divisor of {shards} nearest {DEFAULT_FOLDS}"
        return Layout(shards, chosen, f"{_counts(capacity.records, shards, chosen)}: {why}")
    chosen = _default_folds(capacity, labeled) if folds is None else folds
    return _auto_layout(capacity, chosen, shard_size_mb)


def _folds_for(shards: int, labeled: bool) -> int:
    """The divisor of ``shards`` nearest DEFAULT_FOLDS (ties: the larger), 0 when none."""
    if not labeled:
        return 0
    divisors = [k for k in range(2, shards + 1) if shards % k == 0]
    return min(divisors, key=lambda k: (abs(k - DEFAULT_FOLDS), -k), default=0)


def _default_folds(capacity: Capacity, labeled: bool) -> int:
    if not labeled:
        return 0
    folds = min(DEFAULT_FOLDS, capacity.units)
    return folds if folds >= 2 else 0


def _auto_layout(capacity: Capacity, folds: int, shard_size_mb: float) -> Layout:
    step = folds or 1
    by_size = math.ceil(capacity.estimated_bytes / (shard_size_mb * 1e6))
    most = capacity.records // MIN_RECORDS_PER_SHARD  # a few dozen records each
    wanted = max(1, min(max(by_size, MIN_AUTO_SHARDS), most))
    if most < max(by_size, MIN_AUTO_SHARDS):
        count = max(most, 1)
        unit = "shard" if count == 1 else "shards"
        why = f"{capacity.records} records fill {count} {unit} of {MIN_RECORDS_PER_SHARD}+"
    elif by_size >= MIN_AUTO_SHARDS:
        why = f"~{capacity.estimated_bytes / 1e6:,.0f} MB of images at ~{shard_size_mb:g} MB each"
    else:
        why = f"about {MIN_AUTO_SHARDS} files for parallel reads"
    aligned = math.lcm(step, TPU_CORES)
    up, down = round_up(wanted, aligned), wanted - wanted % aligned
    if up <= min(most, 2 * wanted) or down >= max(aligned, wanted / 2):
        shards = up if up <= min(most, 2 * wanted) else down
        why += f", a multiple of {TPU_CORES} (TPU cores)" + (f" and {folds}" if folds else "")
    elif folds and wanted <= step:
        shards, why = step, f"one shard per fold ({why})"
    else:
        shards = round_up(wanted, step)
        if shards > most:  # rounding up would leave shards below the record floor
            shards = wanted - wanted % step
        why += f", a multiple of {folds} (folds)" if folds else ""
    limit = capacity.units - capacity.units % step
    if shards > limit:
        shards, why = limit, f"no more than the {capacity.units} {capacity.unit_name} can fill"
    if shards < step:
        _refuse_folds(capacity, folds)
    return Layout(shards, folds, f"{_counts(capacity.records, shards, folds)}: {why}")


def _refuse_folds(capacity: Capacity, folds: int) -> None:
    """Raises the DataError of too few rows (groups) for ``folds``, with advice that works:
    folds are 0 or >= 2, so one row (group) leaves no folds."""
    units = capacity.units
    unit_name = capacity.unit_name.removesuffix("s") if units == 1 else capacity.unit_name
    if units >= 2:
        advice = f"pass --folds {units} or fewer (or --folds 0)"
    else:
        advice = "pass --folds 0 (no folds)"
        advice += ", or a --group-col with more groups" if capacity.unit_name == "groups" else ""
    raise DataError(
        f"cannot make {folds} folds from {units} {unit_name}: each fold needs at least one; "
        + advice
    )


def _counts(records: int, shards: int, folds: int) -> str:
    text = f"{shards} shard{'s' if shards > 1 else ''} of ~{records // shards} records"
    return text + (f", {folds} folds of {shards // folds}" if folds else ", no folds")


def _check_fill(capacity: Capacity, shards: int, step: int) -> None:
    if capacity.units < step:  # fewer shards would not help: the folds cannot be filled
        _refuse_folds(capacity, step)
    if shards > capacity.units:
        fit = max(step, capacity.units - capacity.units % step)
        raise DataError(
            f"cannot fill {shards} shards from {capacity.units} {capacity.unit_name}: every "
            f"shard needs at least one; pass --shards {fit} or fewer"
        )
