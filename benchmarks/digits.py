"""Benchmark the training defaults of ``tfrec train`` on scikit-learn's handwritten digits.

Run from the repository root::

    .venv/bin/python benchmarks/digits.py
    .venv/bin/python benchmarks/digits.py --work /tmp/digits -- --augment none --lr-max 1e-4

Steps:

1. ``sklearn.datasets.load_digits()`` (1,797 8x8 grey images, 10 classes, bundled with
   scikit-learn: no network) is shuffled with SEED, upscaled to 32x32 RGB PNGs (bilinear) and
   split into 1,500 training images (``train/`` + ``labels.csv``) and 297 test images
   (``test/`` + ``test_labels.csv``, the answers, never given to tfrec) under ``--work``.
2. ``tfrec build`` writes 10 training shards in 5 folds, and 2 test shards.
3. ``tfrec train`` with ONLY ``--model small_cnn --weights none --epochs 12`` (plus anything
   after ``--``, to compare against the defaults), then ``tfrec predict`` on the test shards.
4. Prints the OOF accuracy (from the run's metrics.json), the test accuracy, the wall time of
   each step and the machine. The target is >= 0.97 for both accuracies; the exit code is 1
   below it.

Each step runs the ``tfrec`` executable beside this Python in a subprocess, as a user would.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SEED = 0
SIZE = 32  # px: the 8x8 digits upscaled 4x, the smallest size every model here accepts
TRAIN = 1500  # the remaining 297 images are the test set
SHARDS = 10
FOLDS = 5
TARGET = 0.97
TRAIN_ARGS = ("--model", "small_cnn", "--weights", "none", "--epochs", "12")
DEFAULT_WORK = Path(__file__).resolve().parent / "_work" / "digits"


def write_images(work: Path) -> None:
    """The digits as PNGs and CSVs under ``work`` (rewritten every run: it takes a second)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(SEED).permutation(len(digits.target))
    for folder in ("train", "test"):
        shutil.rmtree(work / folder, ignore_errors=True)
        (work / folder).mkdir(parents=True)
    rows = {"train": [], "test": []}
    for rank, index in enumerate(order):
        split = "train" if rank < TRAIN else "test"
        name = f"digit_{index:04d}"
        pixels = (digits.images[index] * (255 / 16)).round().astype(np.uint8)
        image = Image.fromarray(pixels, "L").resize((SIZE, SIZE), Image.BILINEAR)
        image.convert("RGB").save(work / split / f"{name}.png")
        rows[split].append((name, int(digits.target[index])))
    write_csv(work / "labels.csv", rows["train"])
    write_csv(work / "test_labels.csv", rows["test"])


def write_csv(path: Path, rows: list[tuple[str, int]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "label"])
        writer.writerows(rows)


def tfrec(*args: object) -> float:
    """Run ``tfrec ARGS`` (its output streams through); return the wall time in seconds."""
    command = [str(Path(sys.executable).with_name("tfrec")), *map(str, args)]
    print("$", " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def test_accuracy(predictions: Path, answers: Path) -> float:
    with open(answers) as handle:
        truth = {row["image_id"]: row["label"] for row in csv.DictReader(handle)}
    with open(predictions) as handle:
        predicted = {row["image_id"]: row["label"] for row in csv.DictReader(handle)}
    if set(predicted) != set(truth):
        raise SystemExit(f"{predictions}: predicted other ids than {answers}")
    return float(np.mean([predicted[k] == truth[k] for k in truth]))


def machine() -> str:
    """CPU model and count, load, Python and TensorFlow versions (without importing TF)."""
    from importlib.metadata import version

    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        text = Path("/proc/cpuinfo").read_text().splitlines()
        names = [line for line in text if line.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    return (
        f"{cpu}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"Python {platform.python_version()}, TensorFlow {version('tensorflow')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder")
    parser.add_argument("extra", nargs="*", help="after --: more `tfrec train` options")
    args = parser.parse_args()
    work = args.work.resolve()
    shards, run_dir = work / "shards", work / "run"
    write_images(work)
    times = {
        "build": tfrec("build", work / "train", work / "labels.csv", "--out", shards,
                       "--size", SIZE, "--shards", SHARDS, "--folds", FOLDS, "--overwrite")
        + tfrec("build", work / "test", "--out", shards, "--name", "test", "--size", SIZE,
                "--shards", 2, "--overwrite"),
        "train": tfrec("train", f"{shards}/train*.tfrec", "--out", run_dir, "--overwrite",
                       "--quiet", *TRAIN_ARGS, *args.extra),
        "predict": tfrec("predict", f"{shards}/test*.tfrec", "--run", run_dir,
                         "--out", work / "predictions.csv"),
    }  # fmt: skip
    oof = json.loads((run_dir / "metrics.json").read_text())["overall"]["label"]["accuracy"]
    test = test_accuracy(work / "predictions.csv", work / "test_labels.csv")
    print()
    print(f"train options: {' '.join([*TRAIN_ARGS, *args.extra])}")
    print(f"OOF accuracy:  {oof:.4f} ({TRAIN} images, {FOLDS} folds)")
    print(f"test accuracy: {test:.4f} ({len(test_labels(work))} images)")
    print("wall time:     " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    print(f"machine:       {machine()}")
    return 0 if min(oof, test) >= TARGET else 1


def test_labels(work: Path) -> list[str]:
    return (work / "test_labels.csv").read_text().splitlines()[1:]


if __name__ == "__main__":
    sys.exit(main())
