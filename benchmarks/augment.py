"""Benchmark ``tfrec_tools.read.augment``: images/s of each operation alone, of the presets, and
of three ways to apply the same affine transform.

Run from the repository root::

    .venv/bin/python benchmarks/augment.py                 # 256x256, 3 rounds of 1024 images
    .venv/bin/python benchmarks/augment.py --size 384 --n 512 --rounds 5

Every row runs the same tf.data pipeline: ``--distinct`` smooth random uint8 images (seed 0)
-> repeat -> enumerate -> ``map(augment, AUTOTUNE)`` with stateless seed ``[1, index]`` ->
batch 64 -> prefetch, timed after 4 warm-up batches. ``none`` is that pipeline with nothing to
do. Each row is the best of ``--rounds`` interleaved rounds (other processes slow every row
alike); besides images/s (wall clock) it reports CPU ms per image (all threads of this
process), which load from other processes hardly changes.
The affine rows apply ``random_affine(kaggle-melanoma)`` by a flat ``tf.gather`` (what the library
does), by ``tf.gather_nd`` on (row, col) pairs, and by ``ImageProjectiveTransformV3`` with the
same matrix (nearest, same fill mode); ratios are against ImageProjectiveTransformV3 measured
in the same run. Results are also written to ``benchmarks/_work/augment-results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from tfrec_tools.quiet import import_tensorflow  # noqa: E402
from tfrec_tools.read import augment, augment_ops  # noqa: E402

tf = import_tensorflow()

OFF = augment.PRESETS["none"]
STANDARD = augment.PRESETS["kaggle-melanoma"]  # the reference set the timings were taken on
SINGLE_OPS = {
    "flip_left_right": replace(OFF, flip_left_right=True),
    "flip_up_down": replace(OFF, flip_up_down=True),
    "saturation": replace(OFF, saturation=(0.7, 1.3)),
    "contrast": replace(OFF, contrast=(0.8, 1.2)),
    "brightness": replace(OFF, brightness=0.1),
    "hue": replace(OFF, hue=0.05),
    "rotation": replace(OFF, rotation=10.0),
    "shear": replace(OFF, shear=5.0),
    "zoom": replace(OFF, zoom=1 / 8),
    "shift": replace(OFF, shift=1 / 32),
    "cutout (p=1)": replace(OFF, cutout_count=5, cutout_size=0.1, cutout_probability=1.0),
    "colour (sat+con+bri)": replace(
        OFF, saturation=(0.7, 1.3), contrast=(0.8, 1.2), brightness=0.1
    ),
    "affine (rot+shr+zoom+shift)": replace(OFF, rotation=10.0, shear=5.0, zoom=1 / 8, shift=1 / 32),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side (square)")
    parser.add_argument("--n", type=int, default=1024, help="images per timed row and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best kept")
    parser.add_argument("--distinct", type=int, default=16, help="distinct source images")
    args = parser.parse_args()
    images = tf.constant(_images(args.distinct, args.size))
    configs = {"none": OFF, **SINGLE_OPS, "kaggle-melanoma preset": STANDARD}
    op_fns = {name: _config_fn(config) for name, config in configs.items()}
    rows = _best_of(images, op_fns, args)
    affine = _best_of(images, _affine_fns(), args)
    _report(rows, affine, args)


def _best_of(images, fns: dict, args) -> dict[str, dict[str, float]]:
    """Per function, the best images/s and CPU ms per image over ``--rounds`` interleaved
    rounds: load from other processes hits every row alike, the best round is the least
    disturbed, and CPU time (all threads of this process) hardly depends on that load."""
    best = {name: {"images_per_s": 0.0, "cpu_ms": math.inf} for name in fns}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            rate, cpu_ms = _measure(images, fn, args.n)
            best[name]["images_per_s"] = max(best[name]["images_per_s"], rate)
            best[name]["cpu_ms"] = min(best[name]["cpu_ms"], cpu_ms)
    return best


def _images(count: int, side: int) -> np.ndarray:
    """Smooth random images (upscaled noise), so colour ops see photo-like gradients."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (count, side // 16, side // 16, 3)).astype(np.float32)
    big = tf.image.resize(small, (side, side), method="bicubic")
    return tf.saturate_cast(big, tf.uint8).numpy()


def _config_fn(config: augment.AugmentConfig):
    return lambda image, seed: augment_ops.augment_image(image, config, seed)


def _affine_fns():
    fill = STANDARD.fill_mode

    def draw(image, seed):
        shape = tf.shape(image)
        return augment_ops.random_affine(STANDARD, seed), shape[0], shape[1]

    def flat_gather(image, seed):
        return augment_ops.affine_transform(image, draw(image, seed)[0], fill_mode=fill)

    def gather_nd(image, seed):
        affine, height, width = draw(image, seed)
        rows, cols, _ = augment_ops.source_indices(affine, height, width, fill)
        return tf.gather_nd(image, tf.stack([rows, cols], axis=-1))

    def projective(image, seed):
        affine, height, width = draw(image, seed)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=image[None],
            transforms=augment_ops.transform_vector(affine, height, width)[None],
            output_shape=tf.stack([height, width]),
            fill_value=0.0,
            interpolation="NEAREST",
            fill_mode=fill.upper(),
        )[0]

    return {
        "tf.gather (flat index)": flat_gather,
        "tf.gather_nd (row, col)": gather_nd,
        "ImageProjectiveTransformV3": projective,
    }


def _measure(images, fn, n: int) -> tuple[float, float]:
    """Images/s and CPU ms per image of a fresh, finite pipeline after 4 warm-up batches (a
    finite pipeline leaves no prefetch thread running into the next measurement)."""
    batches = max(1, n // 64)
    pipeline = (
        tf.data.Dataset.from_tensor_slices(images)
        .repeat()
        .enumerate()
        .map(lambda i, image: fn(image, tf.stack([tf.constant(1, tf.int64), i])), tf.data.AUTOTUNE)
        .batch(64)
        .take(4 + batches)
        .prefetch(tf.data.AUTOTUNE)
    )
    iterator = iter(pipeline)
    for _ in range(4):
        next(iterator)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in iterator:
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return batches * 64 / wall, cpu * 1000 / (batches * 64)


def _report(rows: dict, affine: dict, args) -> None:
    print(f"{args.size}x{args.size} uint8, {os.cpu_count()} CPU cores, tf {tf.__version__}")
    _table("operation", rows, rows["none"]["images_per_s"], "vs none")
    print()
    base = affine["ImageProjectiveTransformV3"]["images_per_s"]
    _table("affine, same matrix", affine, base, "vs V3")
    out = Path("benchmarks/_work/augment-results.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"size": args.size, "ops": rows, "affine": affine}, indent=2))
    print(f"\nresults: {out}")


def _table(title: str, rows: dict, base: float, ratio: str) -> None:
    print(f"{title:30} {'images/s':>9} {ratio:>8} {'CPU ms/img':>11}")
    for name, row in rows.items():
        rate = row["images_per_s"]
        print(f"{name:30} {rate:9.0f} {rate / base:8.2f} {row['cpu_ms']:11.3f}")


if __name__ == "__main__":
    main()
