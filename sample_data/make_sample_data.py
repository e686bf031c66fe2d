"""Generate the small, deterministic sample dataset used by examples and end-to-end tests.

Each image is 64x64 RGB: one filled shape (circle / square / triangle) of random colour, size
and position on a noisy, randomly tinted darker background, sometimes crossed by a distractor
line. Only the shape carries the class; colour, area and background do not depend on the label.

Run ``python sample_data/make_sample_data.py`` to (re)create, next to this script:
``images/batch{1,2}/img_XXXX.jpg``, ``labels.csv``, ``test_images/test_XXXX.jpg`` and
``test_labels.csv``. Output folders are deleted and rebuilt; re-runs are byte-identical.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")
CLASS_P = np.array([0.40, 0.33, 0.27])
AGE_SHIFT = {"circle": -4.0, "square": 0.0, "triangle": 6.0}  # weak age signal
SITES = ("head", "torso", "limb")
LUMA = np.array([0.299, 0.587, 0.114])
SIZE, SS = 64, 4  # image side, supersampling factor for anti-aliased shapes
N_GROUPS, MIN_PER_GROUP, N_TRAIN, N_TEST, N_BATCHES = 60, 3, 360, 60, 2
OUT = Path(__file__).resolve().parent


def background(rng: np.random.Generator) -> np.ndarray:
    """Randomly tinted background with smooth blotches and fine noise (float HxWx3)."""
    tint = rng.uniform(20, 120, size=3)
    blotch = Image.fromarray(rng.normal(0, 1, (8, 8)).astype(np.float32), mode="F")
    smooth = np.asarray(blotch.resize((SIZE, SIZE), Image.BICUBIC))[..., None] * 8.0
    return tint + smooth + rng.normal(0, 4, (SIZE, SIZE, 3))


def contrasting_colour(rng: np.random.Generator, ref: np.ndarray) -> np.ndarray:
    """A random colour clearly brighter than ``ref`` (same rule for every class)."""
    while True:
        colour = rng.uniform(0, 255, size=3)
        if np.dot(colour - ref, LUMA) > 110:
            return colour


def shape_mask(rng: np.random.Generator, label: str) -> np.ndarray:
    """Anti-aliased alpha mask (HxW in [0, 1]) of one shape of random size/position/rotation.

    All classes have the area of a circle of diameter 20-38 px, so pixel count is no shortcut.
    """
    r = rng.uniform(10, 19)  # circle radius; polygons get the circumradius of equal area
    n = {"circle": 0, "square": 4, "triangle": 3}[label]
    r = r * np.sqrt(2 * np.pi / (n * np.sin(2 * np.pi / n))) if n else r
    cx, cy = rng.uniform(r + 1, SIZE - r - 1, size=2)
    canvas = Image.new("L", (SIZE * SS, SIZE * SS), 0)
    draw = ImageDraw.Draw(canvas)
    if not n:
        draw.ellipse([(cx - r) * SS, (cy - r) * SS, (cx + r) * SS, (cy + r) * SS], fill=255)
    else:
        tilt = rng.uniform(-0.35, 0.35) if label == "square" else rng.uniform(0, 2 * np.pi)
        angles = tilt + np.pi / 4 + 2 * np.pi * np.arange(n) / n
        pts = [((cx + r * np.cos(a)) * SS, (cy + r * np.sin(a)) * SS) for a in angles]
        draw.polygon(pts, fill=255)
    return np.asarray(canvas.resize((SIZE, SIZE), Image.BOX), dtype=np.float32)[..., None] / 255


def draw_lines(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Overlay 0-1 thin distractor lines of random colour."""
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    for _ in range(rng.integers(0, 2)):
        xy = [tuple(int(v) for v in rng.integers(0, SIZE, size=2)) for _ in range(2)]
        draw.line(xy, fill=tuple(int(c) for c in rng.integers(0, 256, size=3)), width=1)
    return np.asarray(pil)


def make_image(rng: np.random.Generator, label: str) -> Image.Image:
    """Render one sample image of class ``label``."""
    bg = background(rng)
    colour = contrasting_colour(rng, bg.mean(axis=(0, 1)))
    alpha = shape_mask(rng, label)
    img = bg * (1 - alpha) + colour * alpha + rng.normal(0, 3, (SIZE, SIZE, 3))
    img = draw_lines(rng, np.clip(img, 0, 255).round().astype(np.uint8))
    return Image.fromarray(img, mode="RGB")


def save_jpeg(img: Image.Image, path: Path) -> None:
    """Save without metadata so output is byte-reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="JPEG", quality=90, subsampling=0, optimize=False)


def train_rows(rng: np.random.Generator) -> list[dict[str, str]]:
    """Labels + metadata: each group has >= MIN_PER_GROUP images with a group-biased class mix."""
    extra = rng.multinomial(N_TRAIN - N_GROUPS * MIN_PER_GROUP, np.full(N_GROUPS, 1 / N_GROUPS))
    rows = []
    for g, n in enumerate(extra + MIN_PER_GROUP):
        p = 0.7 * CLASS_P + 0.3 * rng.dirichlet(np.ones(len(CLASSES)))
        base_age = rng.uniform(25, 75)
        site_p = rng.dirichlet(np.full(len(SITES), 2.0))
        for _ in range(n):
            label = CLASSES[rng.choice(len(CLASSES), p=p)]
            age = base_age + AGE_SHIFT[label] + rng.normal(0, 2)
            age_str = "" if rng.random() < 0.02 else f"{age:.1f}"  # a few missing values
            site = SITES[rng.choice(len(SITES), p=site_p)]
            row = {"label": label, "patient_id": f"P{g + 1:03d}", "age": age_str, "site": site}
            rows.append(row)
    return [rows[i] for i in rng.permutation(len(rows))]


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="RNG seed (default: 0)")
    rng = np.random.default_rng(parser.parse_args().seed)
    for folder in ("images", "test_images"):
        shutil.rmtree(OUT / folder, ignore_errors=True)

    rows = train_rows(rng)
    for i, row in enumerate(rows):
        row["image_id"] = f"img_{i + 1:04d}"
        batch = f"batch{1 + i * N_BATCHES // len(rows)}"
        save_jpeg(make_image(rng, row["label"]), OUT / "images" / batch / f"{row['image_id']}.jpg")
    cols = ("image_id", "label", "patient_id", "age", "site")
    write_csv(OUT / "labels.csv", [{c: r[c] for c in cols} for r in rows])

    test = []
    test_labels = np.repeat(CLASSES, np.round(CLASS_P * N_TEST).astype(int))
    for i, label in enumerate(rng.permutation(test_labels).tolist()):
        test.append({"image_id": f"test_{i + 1:04d}", "label": label})
        save_jpeg(make_image(rng, label), OUT / "test_images" / f"{test[-1]['image_id']}.jpg")
    write_csv(OUT / "test_labels.csv", test)

    counts = {c: sum(r["label"] == c for r in rows) for c in CLASSES}
    print(f"wrote {len(rows)} train images {counts} and {N_TEST} test images to {OUT}")


if __name__ == "__main__":
    main()
