"""`tfrec build --dry-run` on a large CSV: wall time of the whole command (walk the folder,
read the CSV, match, plan, summarise), as a user runs it, and its peak memory (the largest
resident set of the command's process, from getrusage).

Makes N empty placeholder files (the plan never opens an image) and a CSV with G patient
groups and 4 classes, then times `tfrec build IMAGES CSV --group-col patient_id --dry-run`
with --shards/--folds as given. The split it replaces (scikit-learn's StratifiedGroupKFold) is
timed against ours by benchmarks/plan.py; on this size it did not finish in 15 minutes.

    .venv/bin/python benchmarks/dry_run.py                 # 500k rows, 150k groups, 128 x 4
    .venv/bin/python benchmarks/dry_run.py --rows 50000 --groups 15000
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--groups", type=int, default=150_000)
    parser.add_argument("--shards", type=int, default=128)
    parser.add_argument("--folds", type=int, default=4)
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


if __name__ == "__main__":
    main()
