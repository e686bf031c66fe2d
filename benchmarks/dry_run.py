"""`tfrec build --dry-run` on a large CSV: wall time of the whole command (walk the folder,
read the CSV, match, plan, summarise), as a user runs it, and its peak memory (the largest
resident set of the command's process, from getrusage).

Makes N empty placeholder files (the plan never opens an image) and a CSV with G patient
groups and 4 classes, then times `tfrec build IMAGES CSV --group-col patient_id --dry-run`
with --shards/--folds as given. The split it replaces (scikit-learn's StratifiedGroupKFold) is
timed against ours by benchmarks/plan.py; on this size it did not finish in 15 minutes.

    .venv/bin/python benchmarks/dry_run.py                 # 500k rows, 150k groups, 128 x 4
    .venv/bin/python benchmarks/dry_run.py --rows 50000 --groups 15000
    .venv/bin/python benchmarks/dry_run.py --rows 1000000 --groups 300000 --shards 256 --breakdown

``--breakdown`` then runs the steps once more, one by one in this process, and prints the
resident memory after each (what holds the peak).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parent / "_work" / "dry_run"


def make_inputs(rows: int, groups: int) -> tuple[Path, Path]:
    folder = WORK / f"{rows}-{groups}"
    images, table = folder / "images", folder / "labels.csv"
    if table.exists():
        return images, table
    images.mkdir(parents=True, exist_ok=True)
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "label", "patient_id"])
        for i in range(rows):
            (images / f"img{i:07d}.jpg").touch()
            group = (i * 7919) % groups
            writer.writerow([f"img{i:07d}", "abcd"[group % 4], f"p{group:06d}"])
    return images, table


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def breakdown(images: Path, table_path: Path, shards: int, folds: int) -> None:
    """Resident memory after each planning step, run in this process."""
    from tfrec_tools.builder.config import BuildConfig
    from tfrec_tools.builder.plan import make_plan
    from tfrec_tools.builder.table import read_table
    from tfrec_tools.builder.walk import walk_images

    print(f"  interpreter + build imports: {rss_mib():,.0f} MiB")
    table = read_table(str(table_path))
    print(f"  + the CSV as a table: {rss_mib():,.0f} MiB")
    walk = walk_images(str(images))
    print(f"  + the file list ({len(walk.files):,} paths): {rss_mib():,.0f} MiB")
    config = BuildConfig(
        images=str(images),
        labels_csv=str(table_path),
        group_col="patient_id",
        shards=shards,
        folds=folds,
    )
    plan = make_plan(config, walk.files, table, None, {}, walk.skipped)
    print(f"  + the plan ({len(plan.shards)} shards): {rss_mib():,.0f} MiB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak of these steps: {peak:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--groups", type=int, default=150_000)
    parser.add_argument("--shards", type=int, default=128)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--breakdown", action="store_true", help="memory after each step")
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    images, table = make_inputs(args.rows, args.groups)
    made = time.perf_counter() - started
    print(f"inputs: {args.rows:,} rows, {args.groups:,} groups (made in {made:.0f} s)")
    tfrec = Path(sys.executable).with_name("tfrec")
    command = [str(tfrec), "build", str(images), str(table), "--group-col", "patient_id"]
    command += ["--shards", str(args.shards), "--folds", str(args.folds), "--dry-run"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    print("\n".join(result.stdout.splitlines()[:4]))
    if result.returncode:
        sys.exit(f"failed ({result.returncode}): {result.stderr.strip()}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(
        f"dry run: {elapsed:.1f} s wall for {args.rows:,} rows "
        f"({args.rows / elapsed:,.0f} rows/s), peak RSS {peak_mib:,.0f} MiB"
    )
    if args.breakdown:
        print("memory, step by step:")
        breakdown(images, table, args.shards, args.folds)


if __name__ == "__main__":
    main()
