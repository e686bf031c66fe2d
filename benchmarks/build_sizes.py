"""Several sizes in one pass (``tfrec build --size 256,384,512``) against one build per size.

Run from the repository root::

    .venv/bin/python benchmarks/build_sizes.py --n 1000 --sizes 256,384,512

Steps, on the photo-like 1024x1024 JPEGs of ``benchmarks/build.py`` (made or reused there):

1. Three single-size builds (``--size 256``, then 384, then 512) and one pass of the three
   sizes, each ``tfrec build`` in a subprocess with the same options, in the same run: CPU
   seconds (user + sys of the whole process tree; the ratio that matters on a shared machine)
   and wall seconds. The four builds take turns ``--rounds`` times; the median is reported.
2. The pass holds the same records at every size: ids, folds and shard files compared.
3. Quality per size: mean PSNR over a sample of images of each output (the pass's and the
   single-size build's) against the naive conversion at that size (full decode, LANCZOS
   resize, JPEG q95, as ``build.py``'s baseline): the pass drafts every size at the scale its
   largest size needs, so its smaller sizes come from more pixels than a build of one size.

Results go to ``<work>/build-sizes-results.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import build  # benchmarks/build.py: the dataset, the build runner, record reading, PSNR
import numpy as np
from PIL import Image

PSNR_SAMPLE = 100
RESULTS_NAME = "build-sizes-results.json"


def command(args: argparse.Namespace, size: str, out: Path) -> list[str]:
    images, labels = build.dataset_paths(args.work, args.n)
    return [
        str(args.tfrec), "build", str(images), str(labels), "--out", str(out), "--size", size,
        "--shards", str(build.SHARDS), "--folds", str(build.FOLDS), "--label-col", "label",
        "--id-col", "image_id", "--group-col", "patient_id", "--overwrite",
        "--workers", str(args.workers), "--no-progress",
    ]  # fmt: skip


def timed(args: argparse.Namespace, size: str, out: Path) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)
    log = out.with_name(out.name + ".log")
    result = build.run_monitored(command(args, size, out), log)
    if result["returncode"] != 0:
        raise SystemExit(f"tfrec build --size {size} failed; log {log}")
    return {"cpu_seconds": result["cpu_seconds"], "seconds": result["seconds"]}


def naive(path: Path, side: int) -> np.ndarray:
    """The reference at ``side``: full decode, LANCZOS, JPEG q95, decoded again."""
    image = Image.open(path).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=build.JPEG_QUALITY)
    return np.asarray(Image.open(buffer).convert("RGB"))


def mean_psnr(records: dict[str, bytes], images: Path, side: int, sample: list[str]) -> float:
    values = [
        build.psnr(build.decode(records[i]), naive(images / f"{i}.jpg", side)) for i in sample
    ]
    return float(np.mean(values))


def same_records(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys()


def quality(args: argparse.Namespace, sizes: list[str], outs: dict[str, Path]) -> dict:
    images, _ = build.dataset_paths(args.work, args.n)
    result, ids = {}, None
    for size in sizes:
        single, _ = build.read_records(outs[size])
        passed, _ = build.read_records(outs["pass"] / size)
        ids = ids or sorted(single)
        rng = np.random.default_rng(build.SEED)
        sample = list(rng.choice(ids, size=min(PSNR_SAMPLE, len(ids)), replace=False))
        shards = sorted(p.name for p in (outs["pass"] / size).glob("*.tfrec"))
        result[size] = {
            "records": len(passed),
            "same_ids_as_single": same_records(single, passed),
            "shards": shards,
            "psnr_single_db": mean_psnr(single, images, int(size), sample),
            "psnr_pass_db": mean_psnr(passed, images, int(size), sample),
        }
    first = result[sizes[0]]["shards"]
    result["same_shards_at_every_size"] = all(result[s]["shards"] == first for s in sizes)
    return result


def folds_agree(outs: dict[str, Path], sizes: list[str]) -> bool:
    """Every size of the pass: the same id in the same fold (and shard)."""
    import tensorflow as tf

    seen = []
    for size in sizes:
        places = {}
        for path in sorted((outs["pass"] / size).glob("*.tfrec")):
            for raw in tf.data.TFRecordDataset(str(path)):
                example = tf.train.Example.FromString(raw.numpy()).features.feature
                places[example["image_id"].bytes_list.value[0]] = (
                    path.name,
                    example["fold"].int64_list.value[0],
                )
        seen.append(places)
    return all(places == seen[0] for places in seen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--sizes", default="256,384,512", help="square sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=1, help="timings per build (median)")
    parser.add_argument("--work", type=Path, default=build.DEFAULT_WORK)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tfrec", type=Path, default=Path(sys.executable).with_name("tfrec"))
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    sizes = [s.strip() for s in args.sizes.split(",")]
    build.ensure_dataset(args.work, args.n, args.workers)
    outs = {s: args.work / f"out-size{s}-n{args.n}" for s in sizes}
    outs["pass"] = args.work / f"out-pass-n{args.n}"
    runs: dict[str, list[dict[str, float]]] = {key: [] for key in outs}
    for round_ in range(args.rounds):
        for key, out in outs.items():
            print(f"round {round_ + 1}: --size {args.sizes if key == 'pass' else key}")
            runs[key].append(timed(args, args.sizes if key == "pass" else key, out))
    median = {
        key: {m: statistics.median(r[m] for r in rs) for m in ("cpu_seconds", "seconds")}
        for key, rs in runs.items()
    }
    separate = {m: sum(median[s][m] for s in sizes) for m in ("cpu_seconds", "seconds")}
    results = {
        "machine": build.machine_info(),
        "n": args.n,
        "sizes": sizes,
        "workers": args.workers,
        "rounds": args.rounds,
        "median": median,
        "separate_total": separate,
        "speedup_cpu": separate["cpu_seconds"] / median["pass"]["cpu_seconds"],
        "speedup_wall": separate["seconds"] / median["pass"]["seconds"],
        "same_folds_at_every_size": folds_agree(outs, sizes),
        "quality": quality(args, sizes, outs),
    }
    report(results)
    path = args.work / RESULTS_NAME
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {path}")
    return 0


def report(results: dict[str, Any]) -> None:
    median, sizes = results["median"], results["sizes"]
    print(f"\nN={results['n']} 1024px JPEGs, --workers {results['workers']}")
    rows = {f"--size {key}": median[key] for key in sizes}
    rows[f"--size {','.join(sizes)}"] = median["pass"]
    rows["three builds"] = results["separate_total"]
    for label, m in rows.items():
        print(f"  {label:<24} CPU {m['cpu_seconds']:7.1f} s  wall {m['seconds']:6.1f} s")
    cpu, wall = results["speedup_cpu"], results["speedup_wall"]
    print(f"  speed-up of the pass: {cpu:.2f}x CPU, {wall:.2f}x wall")
    print(f"  same ids, shards and folds at every size: {results['same_folds_at_every_size']}")
    for size in sizes:
        q = results["quality"][size]
        print(
            f"  {size}: PSNR vs naive {q['psnr_pass_db']:.2f} dB (pass), "
            f"{q['psnr_single_db']:.2f} dB (single-size build); "
            f"same ids as the single-size build: {q['same_ids_as_single']}"
        )


if __name__ == "__main__":
    sys.exit(main())
