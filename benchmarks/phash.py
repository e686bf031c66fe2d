"""Measure the cost of near-duplicate detection (issue 13, item 4).

Run from the repository root::

    .venv/bin/python benchmarks/phash.py                    # both parts
    .venv/bin/python benchmarks/phash.py --search 1000000   # the search on 1M hashes

1. Build overhead: CPU time (``time.process_time``, this process) of ``prepare_image`` over the
   same images with the perceptual hash and with it replaced by a constant, median of
   ``--repeats`` rotating runs. Two image sets: sample_data's 420 64x64 JPEGs stored at 256x256
   (the default --size; the hash is a larger share of a small image's cost), and ``--photos``
   photo-like 1024x768 JPEGs (q95) stored at 256x256. The build also reads, frames and writes
   each record: the ratio here is an upper bound on the end-to-end overhead.
2. Search: ``--search`` random 64-bit hashes plus 1000 planted copies 1-4 bits away from a
   random original; time of ``duplicates.near_pairs`` at distance 4, and whether every planted
   pair was found.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tfrec_tools.builder import images as images_module
from tfrec_tools.builder.config import ImageConfig
from tfrec_tools.duplicates import near_pairs

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
CONFIG = ImageConfig(size=(256, 256))


def photo(seed: int) -> bytes:
    """A smooth random 1024x768 picture with noise, as JPEG q95."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    pixels = np.asarray(coarse.resize((1024, 768), Image.Resampling.BICUBIC), dtype=np.int16)
    pixels = np.clip(pixels + rng.integers(-12, 13, pixels.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def cpu_seconds(datas: list[bytes], *, hashed: bool) -> float:
    real = images_module.image_hash
    images_module.image_hash = real if hashed else (lambda image: 0)
    try:
        start = time.process_time()
        for data in datas:
            images_module.prepare_image(data, CONFIG)
        return time.process_time() - start
    finally:
        images_module.image_hash = real


def overhead(name: str, datas: list[bytes], repeats: int) -> None:
    cpu_seconds(datas[:20], hashed=True)  # warm-up
    runs = {True: [], False: []}
    for k in range(repeats):
        for hashed in (k % 2 == 0, k % 2 == 1):
            runs[hashed].append(cpu_seconds(datas, hashed=hashed))
    with_hash, without = statistics.median(runs[True]), statistics.median(runs[False])
    print(
        f"{name}: {len(datas)} images, {without / len(datas) * 1e3:.2f} ms/img without hash, "
        f"{with_hash / len(datas) * 1e3:.2f} ms/img with; overhead "
        f"{(with_hash / without - 1) * 100:+.1f}%"
    )


def search(count: int, planted: int = 1000) -> None:
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, count, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    hashes ^= rng.integers(0, 2, count).astype(np.uint64)
    originals = rng.choice(count, planted, replace=False)
    copies = hashes[originals].copy()
    for k in range(planted):
        for bit in rng.choice(64, size=1 + k % 4, replace=False):
            copies[k] ^= np.uint64(1 << int(bit))
    everything = np.concatenate([hashes, copies])
    start = time.perf_counter()
    pairs = near_pairs(everything, 4)
    seconds = time.perf_counter() - start
    found = {tuple(p) for p in pairs.tolist()}
    hits = sum((int(o), count + k) in found for k, o in enumerate(originals))
    print(
        f"search: {count} random + {planted} planted hashes, distance 4: {seconds:.2f} s, "
        f"{len(pairs)} pairs, planted found {hits}/{planted}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--search", type=int, nargs="*", default=[100_000])
    args = parser.parse_args()
    sample = [p.read_bytes() for p in sorted(SAMPLE.glob("**/*.jpg"))]
    overhead("sample_data 64x64 -> 256x256", sample, args.repeats)
    overhead("photos 1024x768 -> 256x256", [photo(s) for s in range(args.photos)], args.repeats)
    for count in args.search:
        search(count)


if __name__ == "__main__":
    main()
