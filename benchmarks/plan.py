"""Benchmark ``assign_shards`` (stratified, group-aware shard assignment) against scikit-learn.

Run from the repository root::

    .venv/bin/python benchmarks/plan.py                  # sklearn only where it takes seconds
    .venv/bin/python benchmarks/plan.py --sklearn-budget 2e6  # + StratifiedGroupKFold on 300k
    .venv/bin/python benchmarks/plan.py --quick          # the two smallest cases

Each case is synthetic, drawn from ``default_rng(SEED)``: group sizes geometric with mean
rows / groups (so many singletons, a few large groups), one class per group drawn from
imbalanced shares (1/k over 8 classes, or 1000), then MIXED of the rows relabelled at random, so
some groups mix classes; group keys are strings like a patient id; rows in random order.
The baseline is what ``builder/plan.py`` used: ``StratifiedGroupKFold(num_shards,
shuffle=True, random_state=seed)``, or ``StratifiedKFold`` without groups. Its cost grows with
groups x shards, so it runs only where that product is at most ``--sklearn-budget``.

Balance, for both: ``shr dev`` is the largest |share of a class in a shard - its share
overall| over shards and classes (percentage points); ``max/min`` is the largest shard over
the smallest (rows). Times are wall-clock, best of ``--repeat`` for ours; ``speed-up`` is
sklearn's time over ours.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tfrec_tools.builder.split import assign_shards  # noqa: E402

SEED = 20240601
MIXED = 0.05  # share of rows whose class differs from their group's


@dataclass(frozen=True)
class Case:
    rows: int
    groups: int | None  # None: no groups, every row alone
    shards: int
    classes: int = 8


CASES = (
    Case(33_000, 2_000, 16),
    Case(100_000, 20_000, 16),
    Case(300_000, 100_000, 16),
    Case(500_000, 150_000, 128),
    Case(1_000_000, None, 256),
    Case(1_281_167, None, 1024, classes=1000),  # ImageNet-1k train, its usual 1024 shards
    Case(1_281_167, 400_000, 1024, classes=1000),  # the same, with near-duplicate groups
)


def make_data(case: Case, seed: int = SEED) -> tuple[np.ndarray, np.ndarray | None]:
    """Class code and (string) group key of each row; about ``case.rows`` rows."""
    rng = np.random.default_rng(seed)
    shares = 1.0 / np.arange(1, case.classes + 1)
    shares /= shares.sum()
    if case.groups is None:
        return rng.choice(case.classes, case.rows, p=shares), None
    sizes = rng.geometric(case.groups / case.rows, case.groups)
    group_of_row = rng.permutation(np.repeat(np.arange(case.groups), sizes))
    strata = rng.choice(case.classes, case.groups, p=shares)[group_of_row]
    relabel = rng.random(len(strata)) < MIXED
    strata[relabel] = rng.choice(case.classes, int(relabel.sum()))
    keys = np.array([f"patient-{g:07d}" for g in range(case.groups)], dtype=object)
    return strata, keys[group_of_row]


def balance(strata: np.ndarray, members: list[np.ndarray]) -> tuple[float, float]:
    """(largest |class share in a shard - overall share| in points, largest / smallest shard)."""
    overall = np.bincount(strata) / len(strata)
    sizes = np.array([len(m) for m in members])
    worst = max(
        np.abs(np.bincount(strata[m], minlength=len(overall)) / len(m) - overall).max()
        for m in members
    )
    return 100 * float(worst), float(sizes.max() / sizes.min())


def ours(strata, groups, shards: int, repeat: int) -> tuple[float, list[np.ndarray]]:
    best, members = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        members = assign_shards(strata, groups, shards, SEED)
        best = min(best, time.perf_counter() - start)
    return best, members


def sklearn(strata, groups, shards: int) -> tuple[float, list[np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is None:
        splitter = StratifiedKFold(shards, shuffle=True, random_state=SEED)
    else:
        splitter = StratifiedGroupKFold(shards, shuffle=True, random_state=SEED)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        positions = np.zeros((len(strata), 1))
        members = [test for _, test in splitter.split(positions, strata, groups)]
    return time.perf_counter() - start, members


def check(strata, groups, members: list[np.ndarray]) -> None:
    """Every row exactly once, and (with groups) no group in two shards."""
    rows = np.sort(np.concatenate(members))
    assert np.array_equal(rows, np.arange(len(strata))), "rows lost or repeated"
    if groups is not None:
        owner = {}
        for shard, m in enumerate(members):
            for key in set(groups[m].tolist()):
                assert owner.setdefault(key, shard) == shard, f"group {key} in two shards"


def run_case(case: Case, args: argparse.Namespace, rate: list[float]) -> str:
    """One table line; ``rate`` collects sklearn seconds per group x shard, for estimates."""
    strata, groups = make_data(case)
    num_groups = len(set(groups.tolist())) if groups is not None else 0
    ours_s, members = ours(strata, groups, case.shards, args.repeat)
    check(strata, groups, members)
    label = f"{len(strata):>9,} {num_groups or '-':>7} {case.shards:>6}"
    line = f"{label} | {ours_s:7.2f} {fmt_balance(strata, members)}"
    work = num_groups * case.shards
    if groups is None or work <= args.sklearn_budget or args.sklearn_all:
        sk_s, sk_members = sklearn(strata, groups, case.shards)
        if groups is not None:
            rate.append(sk_s / work)
        return f"{line} | {sk_s:7.2f} {fmt_balance(strata, sk_members)} | {sk_s / ours_s:6.0f}x"
    guess = f"~{min(rate) * work:.0f} s at the rate above" if rate else "minutes"
    return f"{line} | skipped ({guess}; --sklearn-all runs it)"


def fmt_balance(strata: np.ndarray, members: list[np.ndarray]) -> str:
    dev, ratio = balance(strata, members)
    return f"{dev:7.3f} {ratio:7.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the two smallest cases")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs of ours")
    parser.add_argument("--sklearn-all", action="store_true", help="run sklearn on every case")
    parser.add_argument(
        "--sklearn-budget",
        type=float,
        default=4e5,  # 10-30 s of StratifiedGroupKFold (30-80 us per group x shard)
        help="run StratifiedGroupKFold only when groups x shards is at most this",
    )
    args = parser.parse_args()
    print(
        f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"{'rows':>9} {'groups':>7} {'shards':>6} | {'ours s':>7} {'shr dev':>7} {'max/min':>7}"
        f" | {'skl s':>7} {'shr dev':>7} {'max/min':>7} | {'speed-up':>7}"
    )
    rate: list[float] = []
    for case in CASES[:2] if args.quick else CASES:
        print(run_case(case, args, rate), flush=True)


if __name__ == "__main__":
    main()
