"""Benchmark multi-label training end to end on "two cells, 10 tags": build, train, predict.

Run from the repository root::

    .venv/bin/python benchmarks/multilabel.py
    .venv/bin/python benchmarks/multilabel.py --epochs 8 --work /tmp/multilabel -- --tta 2

Steps:

1. Images of 64x64 RGB pixels made of two cells, the left and the right half, each drawing
   one of 10 shapes in its own colour (random size, position and shade, on a noisy dark
   background); an image's tags are the set of its two cells' shapes, one tag when both
   cells show the same one. 2,400 training images (``imgs/`` + ``labels.csv``, a ``tags``
   column like Planet's ``haze primary``) and 600 test images (``test_imgs/``; their tags go
   to ``test_labels.csv``, never given to tfrec) under ``--work``, drawn with SEED.
2. In ``--work``: ``tfrec build imgs labels.csv --multi-label --size 64`` (the ``tags``
   column; 5 folds, shards stratified over the tags), then ``tfrec build test_imgs --size
   64`` (the unlabeled ``test`` set beside it). ``--size 64`` keeps the images at their size
   (the default, 256, would upscale them).
3. ``tfrec train shards --fold 0`` with the defaults (``small_cnn`` from scratch, its
   learning rate, batch and warmup, the standard augmentation, threshold 0.5) and only
   ``--epochs`` (plus anything after ``--``). It trains on folds 1-4, validates on fold 0
   and predicts the test set, as it does for a folder holding both sets.
4. Prints the OOF and test micro-F1, macro-F1 and mAP (test: from ``submission.csv``
   against ``test_labels.csv``), the wall time of each step and the machine. The exit code
   is 1 when the test micro-F1 is below 0.97.

Each step runs the ``tfrec`` executable beside this Python in a subprocess, as a user would.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SEED = 0
SIZE = 64  # px: two 32x64 cells
TRAIN, TEST = 2400, 600
SHAPES = (  # name, RGB colour
    ("circle", (230, 60, 60)),
    ("square", (60, 200, 60)),
    ("triangle", (70, 110, 240)),
    ("cross", (240, 220, 60)),
    ("ring", (220, 70, 220)),
    ("diamond", (60, 220, 220)),
    ("hbar", (245, 150, 40)),
    ("vbar", (235, 235, 235)),
    ("xmark", (150, 90, 230)),
    ("frame", (150, 200, 90)),
)
TARGET = 0.97
EPOCHS = 12
DEFAULT_WORK = Path(__file__).resolve().parent / "_work" / "multilabel"


def draw_cell(draw, left: int, shape: int, rng: np.random.Generator) -> None:
    """One shape in the 32x64 cell starting at x = ``left``: random size, centre and shade."""
    name, colour = SHAPES[shape]
    r = int(rng.integers(7, 12))  # half the extent
    cx = left + int(rng.integers(r + 1, 32 - r - 1))
    cy = int(rng.integers(r + 2, SIZE - r - 2))
    shade = tuple(int(np.clip(c * rng.uniform(0.8, 1.1), 0, 255)) for c in colour)
    box = (cx - r, cy - r, cx + r, cy + r)
    w = max(2, r // 3)
    if name == "circle":
        draw.ellipse(box, fill=shade)
    elif name == "square":
        draw.rectangle(box, fill=shade)
    elif name == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=shade)
    elif name == "cross":
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=shade)
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=shade)
    elif name == "ring":
        draw.ellipse(box, outline=shade, width=w)
    elif name == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=shade)
    elif name == "hbar":
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=shade)
    elif name == "vbar":
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=shade)
    elif name == "xmark":
        draw.line((cx - r, cy - r, cx + r, cy + r), fill=shade, width=w)
        draw.line((cx - r, cy + r, cx + r, cy - r), fill=shade, width=w)
    else:  # frame
        draw.rectangle(box, outline=shade, width=w)


def make_image(path: Path, cells: tuple[int, int], rng: np.random.Generator) -> None:
    from PIL import Image, ImageDraw

    noise = rng.integers(0, 50, (SIZE, SIZE, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    draw = ImageDraw.Draw(image)
    for left, shape in zip((0, SIZE // 2), cells):
        draw_cell(draw, left, shape, rng)
    image.save(path, quality=95)


def write_images(work: Path) -> None:
    """The images and CSVs under ``work`` (rewritten every run: a few seconds)."""
    rng = np.random.default_rng(SEED)
    rows: dict[str, list[tuple[str, str]]] = {"imgs": [], "test_imgs": []}
    for folder, count in (("imgs", TRAIN), ("test_imgs", TEST)):
        shutil.rmtree(work / folder, ignore_errors=True)
        (work / folder).mkdir(parents=True)
        for i in range(count):
            cells = (int(rng.integers(10)), int(rng.integers(10)))
            name = f"{folder.split('_')[0]}_{i:05d}"
            make_image(work / folder / f"{name}.jpg", cells, rng)
            tags = " ".join(SHAPES[c][0] for c in sorted(set(cells)))
            rows[folder].append((name, tags))
    write_csv(work / "labels.csv", rows["imgs"])
    write_csv(work / "test_labels.csv", rows["test_imgs"])


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "tags"])
        writer.writerows(rows)


def tfrec(work: Path, *args: object) -> float:
    """Run ``tfrec ARGS`` in ``work`` (output streams through); return the wall time in s."""
    command = [str(Path(sys.executable).with_name("tfrec")), *map(str, args)]
    print("$", " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=work)
    return time.perf_counter() - start


def test_scores(submission: Path, answers: Path) -> dict[str, float]:
    """Micro/macro-F1 of the predicted tag sets and mAP of the probabilities, on the test set."""
    from tfrec_tools.train.metrics import multilabel_scores

    tags = [name for name, _ in SHAPES]
    with open(answers) as handle:
        truth = {row["image_id"]: set(row["tags"].split()) for row in csv.DictReader(handle)}
    with open(submission) as handle:
        rows = {row["image_id"]: row for row in csv.DictReader(handle)}
    if set(rows) != set(truth):
        raise SystemExit(f"{submission}: predicted other ids than {answers}")
    ids = sorted(truth)
    hot = np.array([[t in truth[i] for t in tags] for i in ids])
    probs = np.array([[float(rows[i][f"tags_p_{t}"]) for t in tags] for i in ids])
    scores = multilabel_scores(hot, probs, 0.5)
    predicted = np.array([[t in rows[i]["tags"].split() for t in tags] for i in ids])
    if not np.array_equal(predicted, probs > 0.5):  # the tags column is the 0.5 cut
        raise SystemExit(f"{submission}: the tags column disagrees with the probabilities")
    return scores


def main() -> int:
    from digits import machine  # the sibling benchmark (this folder is on sys.path)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("extra", nargs="*", help="after --: more `tfrec train` options")
    args = parser.parse_args()
    work = args.work.resolve()
    start = time.perf_counter()
    write_images(work)
    for old in ("shards", "runs"):
        shutil.rmtree(work / old, ignore_errors=True)
    times = {"images": time.perf_counter() - start}
    times["build"] = tfrec(work, "build", "imgs", "labels.csv", "--multi-label", "--size", SIZE)
    times["build"] += tfrec(work, "build", "test_imgs", "--size", SIZE)
    train_args = ["--fold", "0", "--epochs", args.epochs, *args.extra]
    times["train"] = tfrec(work, "train", "shards", *train_args)
    times["inspect"] = tfrec(work, "inspect", "shards")
    (run_dir,) = sorted((work / "runs").iterdir())
    oof = json.loads((run_dir / "metrics.json").read_text())["overall"]["tags"]
    test = test_scores(run_dir / "submission.csv", work / "test_labels.csv")
    print()
    print(f"train options: {' '.join(map(str, train_args))} (defaults otherwise)")
    for name, scores, n in (("OOF (fold 0)", oof, TRAIN // 5), ("test", test, TEST)):
        print(
            f"{name + ':':<14} micro-F1 {scores['f1_micro']:.4f}, macro-F1 "
            f"{scores['f1_macro']:.4f}, mAP {scores['map']:.4f} ({n} images)"
        )
    print("wall time:     " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    print(f"machine:       {machine()}")
    return 0 if test["f1_micro"] >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
