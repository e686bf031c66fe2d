"""Benchmark ``tfrec build --runner beam`` on Beam's DaskRunner against one local process.

Run from the repository root (needs ``pip install -e '.[dask]'``)::

    .venv/bin/python benchmarks/dask_build.py
    .venv/bin/python benchmarks/dask_build.py --n 300 --work /tmp/tfrec-dask   # a quick check

Steps:

1. Generate ``N`` smooth, noisy 500x375 JPEGs (q90) with ``labels.csv`` (``image_id, label,
   patient_id``), deterministically, into ``<work>/data-n<N>``; reused when already there.
2. Baseline: ``tfrec build ... --workers 1`` (one local process), wall-clock timed with its
   start-up.
3. Dask: a ``dask.distributed`` scheduler and ``--dask-workers`` single-thread workers on
   127.0.0.1 (each its own process, started before the clock starts, as a cluster would be),
   then ``tfrec build ... --runner beam --beam-option runner=DaskRunner --beam-option
   dask_client_address=...``, timed the same way. The workers import Beam and tfrec-tools as
   they start (``--preload``, as docs/scaling.md advises); with ``--no-preload`` they import
   them on their first shard, inside the timed build. Ratio = baseline time / Dask time. CPU
   seconds too (of the build process, and of each worker during the build), with the ratio
   they imply on an idle machine: the others' load on a shared machine changes wall-clock
   times far more than CPU times.
4. Byte identity: every file of the output folders (shards, manifest, rejected list) by SHA-256.
5. A worker killed mid-build: the same Dask build again, worker 0 killed (SIGKILL) once the
   first shard is complete; the build's exit code and whether its bytes still equal the baseline.

Results are printed and written to ``<work>/dask-results.json``. The machine's other load
changes wall-clock times: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dask_cluster import dask_cluster  # noqa: E402

SEED = 20240601
WIDTH, HEIGHT = 500, 375
JPEG_QUALITY = 90
OUT_SIZE = 256
SHARDS = 16
FOLDS = 4
CLASSES = 5
DEFAULT_WORK = ROOT / "benchmarks" / "_work"
TFREC = Path(sys.executable).parent / "tfrec"
# What docs/scaling.md has workers import as they start, so no build waits for it.
PRELOAD = ("apache_beam.runners.dask.dask_runner", "tfrec_tools.builder.beam")


def write_images(folder: Path, n: int) -> tuple[Path, Path]:
    """``n`` JPEGs and their labels CSV in ``folder`` (kept between runs)."""
    images, labels = folder / "images", folder / "labels.csv"
    if labels.exists():
        return images, labels
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        rng = np.random.default_rng([SEED, i])
        coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.BICUBIC))
        grain = rng.normal(0, 12, smooth.shape)
        pixels = np.clip(smooth + grain, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(images / f"img{i:05d}.jpg", quality=JPEG_QUALITY)
        rows.append((f"img{i:05d}", f"class{i % CLASSES}", f"p{i // 3:05d}"))
    with (folder / "labels.tmp").open("w", newline="") as f:
        csv.writer(f).writerows([("image_id", "label", "patient_id"), *rows])
    (folder / "labels.tmp").rename(labels)  # last: a half-made folder is made again
    return images, labels


def build_command(images: Path, labels: Path, out: Path, *extra: str) -> list[str]:
    return [
        str(TFREC), "build", str(images), str(labels), "--out", str(out),
        "--size", str(OUT_SIZE), "--shards", str(SHARDS), "--folds", str(FOLDS),
        "--group-col", "patient_id", "--overwrite", "--no-progress", *extra,
    ]  # fmt: skip


def killed_mid_build(command: list[str], out: Path, cluster, log: Path) -> dict:
    """Run ``command``, kill worker 0 once the first shard is complete; what came of it."""
    start = time.perf_counter()
    with log.open("wb") as output:
        build = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        while build.poll() is None and not list(out.glob("*.tfrec")):
            time.sleep(0.05)
        shards_when_killed = len(list(out.glob("*.tfrec")))
        cluster.workers[0].kill()
        code = build.wait()
    return {
        "seconds": time.perf_counter() - start,
        "exit_code": code,
        "shards_done_when_killed": shards_when_killed,
    }


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def run(work: Path, n: int, workers: int, preload: tuple[str, ...]) -> dict:
    images, labels = write_images(work / f"data-n{n}", n)
    outs = {name: work / name for name in ("local", "dask", "dask-killed")}
    for out in outs.values():
        shutil.rmtree(out, ignore_errors=True)  # the kill waits for this build's first shard
    local = build_command(images, labels, outs["local"], "--workers", "1")
    local_s, local_cpu = checked(local, work)
    with dask_cluster(work / "cluster", workers, preload) as cluster:
        beam = ("--runner", "beam", "--beam-option", "runner=DaskRunner",
                "--beam-option", f"dask_client_address={cluster.address}")  # fmt: skip
        before = worker_cpu(cluster)
        dask_s, client_cpu = checked(build_command(images, labels, outs["dask"], *beam), work)
        workers_cpu = [after - b for after, b in zip(worker_cpu(cluster), before)]
        tasks = cluster.tasks_per_worker()
        kill = killed_mid_build(
            build_command(images, labels, outs["dask-killed"], *beam),
            outs["dask-killed"],
            cluster,
            work / "dask-killed.log",
        )
    expected = digests(outs["local"])
    kill["identical"] = kill["exit_code"] == 0 and digests(outs["dask-killed"]) == expected
    return {
        "images": n,
        "dask_workers": workers,
        "preload": list(preload),
        "local_1_process_s": round(local_s, 2),
        "dask_s": round(dask_s, 2),
        "speedup": round(local_s / dask_s, 2),
        "cpu_s": {
            "local": round(local_cpu, 2),
            "dask_client": round(client_cpu, 2),
            "dask_workers": [round(c, 2) for c in workers_cpu],
        },
        # what an idle machine would give: the client's CPU time runs before and after the
        # workers', which run side by side
        "speedup_from_cpu": round(local_cpu / (client_cpu + max(workers_cpu)), 2),
        "identical": digests(outs["dask"]) == expected,
        "tasks_per_worker": list(tasks.values()),
        "worker_killed": kill,
        "load_average": os.getloadavg()[0],
    }


def checked(command: list[str], work: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds of a build that must succeed (output in ``work/<out>.log``)."""
    log = work / f"{Path(command[command.index('--out') + 1]).name}.log"
    start, cpu = time.perf_counter(), children_cpu()
    with log.open("wb") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    if code:
        raise SystemExit(f"{' '.join(command)} failed ({code}); see {log}")
    return time.perf_counter() - start, children_cpu() - cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker_cpu(cluster) -> list[float]:
    import psutil  # comes with distributed

    return [sum(psutil.Process(w.pid).cpu_times()[:2]) for w in cluster.workers]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1500, help="images (default 1500)")
    parser.add_argument("--dask-workers", type=int, default=2, help="single-thread workers")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder")
    parser.add_argument(
        "--no-preload", action="store_true", help="workers import Beam on their first shard"
    )
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results = run(work, args.n, args.dask_workers, () if args.no_preload else PRELOAD)
    (work / "dask-results.json").write_text(json.dumps(results, indent=2) + "\n")
    kill = results["worker_killed"]
    print(
        f"{results['images']} images {WIDTH}x{HEIGHT} -> {OUT_SIZE} px, {SHARDS} shards\n"
        f"local, 1 process:           {results['local_1_process_s']:7.2f} s\n"
        f"DaskRunner, {args.dask_workers} workers:      {results['dask_s']:7.2f} s  "
        f"({results['speedup']:.2f}x; single-thread workers, preload {results['preload']}, "
        f"tasks per worker {results['tasks_per_worker']})\n"
        f"CPU seconds: local {results['cpu_s']['local']}, Dask client "
        f"{results['cpu_s']['dask_client']} + workers {results['cpu_s']['dask_workers']} "
        f"(on an idle machine about {results['speedup_from_cpu']:.2f}x)\n"
        f"byte-identical:             {results['identical']}\n"
        f"worker killed mid-build:    exit {kill['exit_code']} after {kill['seconds']:.2f} s "
        f"({kill['shards_done_when_killed']} shards done at the kill), "
        f"byte-identical: {kill['identical']}\n"
        f"load average {results['load_average']:.1f}; results in {work / 'dask-results.json'}"
    )
    return 0 if results["identical"] and kill["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
