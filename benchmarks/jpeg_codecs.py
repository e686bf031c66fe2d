"""Measure the build's store step with Pillow, simplejpeg and OpenCV (issue 12, item 4).

Run from the repository root (simplejpeg and OpenCV are optional: missing ones are skipped)::

    .venv/bin/pip install simplejpeg opencv-python-headless
    .venv/bin/python benchmarks/jpeg_codecs.py --n 300
    .venv/bin/python benchmarks/jpeg_codecs.py --n 300 --e2e 1000    # + whole tfrec build

Named ``jpeg_codecs.py``, not ``codecs.py``: a script's folder comes first on ``sys.path`` and
``codecs`` is a standard-library module.

Steps:

1. The images of ``benchmarks/build.py`` (photo-like 1024x1024 JPEGs, q95), read into memory.
2. Per store step, CPU time (``time.process_time``, one thread) over all images, in this
   process, after an untimed warm-up, repeated ``--repeats`` times in a rotating order; the
   median is reported:
   ``pillow`` is today's ``prepare_image``; ``simplejpeg`` decodes with DCT scaling
   (``min_height``/``min_width``), resizes with Pillow's LANCZOS when the scaled size is not the
   target yet and encodes with simplejpeg (q95, 4:2:0 like Pillow); ``opencv`` decodes with
   ``IMREAD_REDUCED_COLOR_2/4/8``, resizes with ``INTER_AREA`` and encodes with ``imencode``
   (q95, its default 4:2:0). The two prototypes keep today's checks (Pillow reads the header:
   format, mode, size, EXIF orientation) and hand every other image to ``prepare_image``.
   Decode-only and encode-only rows show where the time goes.
3. Quality: PSNR of each output (decoded by Pillow) against the naive baseline of
   ``benchmarks/build.py`` (full-resolution Pillow decode, LANCZOS, JPEG q95), and against its
   pixels before that JPEG encode.
4. Determinism: the bytes of every repeat are compared, and a child process computes the same
   outputs again; SHA-256 of all outputs must match.
5. ``--e2e N``: ``tfrec build`` of ``N`` images (``--size 256``, as ``benchmarks/build.py``)
   with today's store step and with the simplejpeg prototype patched into the workers (they
   are forked from the patched process), alternating, ``--repeats`` times each; wall and CPU
   time of the whole process tree, and whether the shards' bytes are stable.

Results are printed and written to ``<work>/codecs-results.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import build  # benchmarks/build.py: the dataset, the baseline's settings, the build runner
import numpy as np
from PIL import Image

from tfrec_tools.builder.config import ImageConfig
from tfrec_tools.builder.images import (
    EXIF_ORIENTATION,
    ImageError,
    StoredImage,
    _open,
    _target_wh,
    prepare_image,
)

REPEATS = 3
WARM_UP = 10  # images each store step prepares before it is timed
TARGET_SPEEDUP = 1.2
PER_IMAGE_NEEDED = 1.25  # the store step is most, not all, of a build's CPU time
RESULTS_NAME = "codecs-results.json"
_REDUCED = (8, 4, 2)  # OpenCV's IMREAD_REDUCED_COLOR_<f>


# ----------------------------------------------------------------------------- store steps


def _fast_path(data: bytes, config: ImageConfig) -> tuple[int, int] | None:
    """(width, height) when today's rules reduce to decode, resize, encode: an upright RGB
    JPEG not already at the target size; else None (the image goes to ``prepare_image``)."""
    try:
        image = _open(data, config)
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - prepare_image reports it
        return None
    if image.format != "JPEG" or image.mode != "RGB" or orientation != 1:
        return None
    if config.fit != "resize" or image.size == _target_wh(config):
        return None
    return image.size


def _lanczos(pixels: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    if pixels.shape[1::-1] == target:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize(target, Image.Resampling.LANCZOS))


def simplejpeg_decode(data: bytes, config: ImageConfig) -> np.ndarray:
    import simplejpeg

    target_w, target_h = _target_wh(config)
    pixels = simplejpeg.decode_jpeg(data, min_width=target_w, min_height=target_h)
    return _lanczos(pixels, (target_w, target_h))


def simplejpeg_encode(pixels: np.ndarray, config: ImageConfig) -> bytes:
    import simplejpeg

    return simplejpeg.encode_jpeg(pixels, quality=config.quality, colorsubsampling="420")


def fit_simplejpeg(data: bytes, size: tuple[int, int], config: ImageConfig) -> bytes:
    return simplejpeg_encode(simplejpeg_decode(data, config), config)


def _reduced_flag(cv2: Any, size: tuple[int, int], target: tuple[int, int]) -> int:
    for factor in _REDUCED:  # libjpeg's scaled size is the ceiling of size / factor
        if all(-(-side // factor) >= want for side, want in zip(size, target)):
            return getattr(cv2, f"IMREAD_REDUCED_COLOR_{factor}")
    return cv2.IMREAD_COLOR


def fit_opencv(data: bytes, size: tuple[int, int], config: ImageConfig) -> bytes:
    import cv2

    target = _target_wh(config)
    flag = _reduced_flag(cv2, size, target) | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if pixels.shape[1::-1] != target:
        pixels = cv2.resize(pixels, target, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, config.quality])
    if not ok:
        raise ImageError("unreadable image", "OpenCV could not encode it")
    return encoded.tobytes()


FITS = {"simplejpeg": fit_simplejpeg, "opencv": fit_opencv}


def store_with(name: str, data: bytes, config: ImageConfig) -> StoredImage:
    """``prepare_image``, except that ``name`` decodes, fits and encodes the fast-path JPEGs."""
    size = _fast_path(data, config) if name in FITS else None
    if size is None:
        return prepare_image(data, config)
    target_w, target_h = _target_wh(config)
    return StoredImage(FITS[name](data, size, config), target_h, target_w)


STORES = ("pillow", *FITS)


def stored_bytes(name: str, data: bytes, config: ImageConfig) -> bytes:
    return store_with(name, data, config).data


def available(names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The store steps whose library imports here; the others with the reason."""
    modules = {"simplejpeg": "simplejpeg", "opencv": "cv2"}
    usable, skipped = [], {}
    for name in names:
        try:
            if name in modules:
                __import__(modules[name])
            usable.append(name)
        except ImportError as err:
            skipped[name] = f"not installed ({err})"
    if "opencv" in usable:
        import cv2

        cv2.setNumThreads(1)  # one core per worker, as in the build
    return usable, skipped


# ----------------------------------------------------------------------------- where time goes


def pillow_decode(data: bytes, config: ImageConfig) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", _target_wh(config))
    return _lanczos(np.asarray(image.convert("RGB")), _target_wh(config))


def pillow_encode(pixels: np.ndarray, config: ImageConfig) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=config.quality)
    return buffer.getvalue()


def header_check(data: bytes, config: ImageConfig) -> bool:
    return _fast_path(data, config) is not None


# ----------------------------------------------------------------------------- measuring


def cpu_seconds(step: Callable[[Any, ImageConfig], Any], inputs: Sequence, config: ImageConfig):
    """(CPU seconds, outputs) of ``step`` over ``inputs``, in this thread."""
    start = time.process_time()
    outputs = [step(item, config) for item in inputs]
    return time.process_time() - start, outputs


def measure_stores(
    names: list[str], images: list[bytes], config: ImageConfig, repeats: int
) -> dict[str, dict[str, Any]]:
    """Median CPU time per store step; whether every repeat gave the same bytes."""
    times: dict[str, list[float]] = {name: [] for name in names}
    first: dict[str, list[bytes]] = {}
    stable = dict.fromkeys(names, True)
    for name in names:  # untimed: first calls load plugins and fill caches (worth ~0.3x here)
        cpu_seconds(partial(stored_bytes, name), images[:WARM_UP], config)
    for repeat in range(repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            seconds, outputs = cpu_seconds(partial(stored_bytes, name), images, config)
            times[name].append(seconds)
            stable[name] &= first.setdefault(name, outputs) == outputs
    return {
        name: {
            "cpu_s_runs": times[name],
            "images_per_cpu_s": len(images) / statistics.median(times[name]),
            "same_bytes_every_repeat": stable[name],
            "outputs": first[name],
        }
        for name in names
    }


def measure_parts(names: list[str], images: list[bytes], config: ImageConfig, repeats: int):
    """Median CPU ms per image of the header check, each library's decode and its encode."""
    pixels = [pillow_decode(data, config) for data in images]
    parts: dict[str, tuple[Callable, Sequence]] = {
        "header check (Pillow open + EXIF)": (header_check, images),
        "Pillow decode (draft) + fit": (pillow_decode, images),
        "Pillow encode": (pillow_encode, pixels),
    }
    if "simplejpeg" in names:
        parts["simplejpeg decode (DCT scaling) + fit"] = (simplejpeg_decode, images)
        parts["simplejpeg encode"] = (simplejpeg_encode, pixels)
    return {
        label: 1000 * statistics.median(
            cpu_seconds(step, inputs, config)[0] for _ in range(repeats)
        ) / len(inputs)
        for label, (step, inputs) in parts.items()
    }  # fmt: skip


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def naive_pixels(data: bytes, config: ImageConfig) -> np.ndarray:
    """The naive converter's image before its JPEG encode: full decode, LANCZOS."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return np.asarray(image.resize(_target_wh(config), Image.Resampling.LANCZOS))


def quality(outputs: dict[str, list[bytes]], images: list[bytes], config: ImageConfig) -> dict:
    """Mean and minimum PSNR of each store's output vs the naive baseline (record and pixels)."""
    pixels = [naive_pixels(data, config) for data in images]
    records = [decode(pillow_encode(p, config)) for p in pixels]
    result = {}
    for name, encoded in outputs.items():
        decoded = [decode(data) for data in encoded]
        vs_record = [psnr(d, r) for d, r in zip(decoded, records)]
        vs_pixels = [psnr(d, p) for d, p in zip(decoded, pixels)]
        result[name] = {
            "psnr_vs_baseline_record_db": float(np.mean(vs_record)),
            "psnr_vs_baseline_record_min_db": float(np.min(vs_record)),
            "psnr_vs_baseline_pixels_db": float(np.mean(vs_pixels)),
            "identical_to_pillow": encoded == outputs["pillow"],
            "mean_bytes": float(np.mean([len(d) for d in encoded])),
        }
    return result


def digest(outputs: list[bytes]) -> str:
    sha = hashlib.sha256()
    for data in outputs:
        sha.update(hashlib.sha256(data).digest())
    return sha.hexdigest()


def load_images(images_dir: Path, n: int) -> list[bytes]:
    return [(images_dir / build.image_name(i)).read_bytes() for i in range(n)]


def child_digests(args: argparse.Namespace, names: list[str], size: int) -> dict[str, str]:
    """The digests of every store's outputs computed again in a fresh process."""
    cmd = [sys.executable, __file__, "--digests", "--n", str(args.n), "--work", str(args.work)]
    cmd += ["--sizes", str(size), "--stores", ",".join(names)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


# ----------------------------------------------------------------------------- whole build


def patched_tfrec(store: str, argv: list[str]) -> int:
    """Run the tfrec CLI with the workers' store step replaced by ``store`` (fork inherits it)."""
    from tfrec_tools.builder import write
    from tfrec_tools.cli import main

    if store != "pillow":
        write.prepare_image = partial(store_with, store)
    return main.main(args=argv, prog_name="tfrec")  # exits with the command's code


def shard_digest(out_dir: Path) -> str:
    return digest([path.read_bytes() for path in build.record_files(out_dir)])


def run_e2e(args: argparse.Namespace, stores: list[str]) -> dict[str, Any]:
    """Whole builds, the store steps alternating; medians of wall and CPU time."""
    images_dir, labels_csv = build.ensure_dataset(args.work, args.e2e, args.workers)
    runs: dict[str, list[dict]] = {store: [] for store in stores}
    for repeat in range(args.repeats):
        for store in stores:
            out_dir = args.work / f"out-codecs-{store}-n{args.e2e}"
            cmd = build.tfrec_command(Path("x"), images_dir, labels_csv, out_dir, args.workers)
            cmd[:1] = [sys.executable, __file__, "--as-tfrec", store]
            print(f"  tfrec build, {store} store step, run {repeat + 1}/{args.repeats}")
            result = build.run_monitored(cmd, out_dir.with_name(out_dir.name + ".log"))
            if result["returncode"] != 0:
                raise SystemExit(f"tfrec build with {store} failed: see {out_dir}.log")
            runs[store].append({**result, "shards_sha256": shard_digest(out_dir)})
    summary, pillow_sha = {}, runs["pillow"][0]["shards_sha256"]
    for store, results in runs.items():
        summary[store] = {
            "runs": results,
            "seconds": statistics.median(r["seconds"] for r in results),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in results),
            "same_shards_every_run": len({r["shards_sha256"] for r in results}) == 1,
            "shards_equal_pillow": results[0]["shards_sha256"] == pillow_sha,
        }
    return {"n": args.e2e, "workers": args.workers, "stores": summary}


# ----------------------------------------------------------------------------- report


def fmt(value: float, spec: str = ".1f") -> str:
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


def print_size(size: int, result: dict[str, Any]) -> None:
    base = result["stores"]["pillow"]["images_per_cpu_s"]
    print(f"\n1024 -> {size} px, q95, {result['n']} images, median of {result['repeats']}:")
    rows = []
    for name, store in result["stores"].items():
        q = result["quality"][name]
        rows.append((
            name,
            fmt(store["images_per_cpu_s"]),
            fmt(store["images_per_cpu_s"] / base, ".2f") + "x",
            fmt(q["psnr_vs_baseline_record_db"], ".2f"),
            fmt(q["psnr_vs_baseline_record_min_db"], ".2f"),
            fmt(q["psnr_vs_baseline_pixels_db"], ".2f"),
            str(store["same_bytes_every_repeat"]),
            str(result["same_bytes_other_process"][name]),
            str(q["identical_to_pillow"]),
        ))  # fmt: skip
    header = ("store", "img/CPU-s", "vs pillow", "PSNR rec", "min", "PSNR pix", "repeat=",
              "process=", "=pillow")  # fmt: skip
    build.print_table(rows, header)
    for label, ms in result["parts_cpu_ms"].items():
        print(f"  {label}: {ms:.3f} CPU ms/image")
    for name, store in result["stores"].items():
        ratio, db = store["images_per_cpu_s"] / base, result["quality"][name]
        db = db["psnr_vs_baseline_record_db"]
        ok = ratio >= PER_IMAGE_NEEDED and db >= build.TARGET_PSNR_DB and store["deterministic"]
        if name != "pillow":
            print(f"  {name}: {ratio:.2f}x per image (>= {PER_IMAGE_NEEDED}x needed), "
                  f"{db:.2f} dB (>= {build.TARGET_PSNR_DB:g}): {build.verdict(ok)}")  # fmt: skip


def print_e2e(e2e: dict[str, Any]) -> None:
    stores = e2e["stores"]
    base = stores["pillow"]
    print(f"\ntfrec build, {e2e['n']} images, --workers {e2e['workers']}, medians:")
    rows = [
        (
            name,
            fmt(s["seconds"], ".2f"),
            fmt(base["seconds"] / s["seconds"], ".2f") + "x",
            fmt(s["cpu_seconds"], ".2f"),
            fmt(base["cpu_seconds"] / s["cpu_seconds"], ".2f") + "x",
            str(s["same_shards_every_run"]),
            str(s["shards_equal_pillow"]),
        )
        for name, s in stores.items()
    ]
    build.print_table(
        rows, ("store", "wall s", "speed-up", "CPU s", "CPU speed-up", "stable", "=pillow")
    )
    for name, s in stores.items():
        ratio = base["cpu_seconds"] / s["cpu_seconds"]
        if name != "pillow":
            ok = ratio >= TARGET_SPEEDUP
            print(f"{name}: whole build {ratio:.2f}x per CPU-second (>= {TARGET_SPEEDUP}x): "
                  f"{build.verdict(ok)}")  # fmt: skip


def json_ready(results: dict[str, Any]) -> dict[str, Any]:
    for result in results["sizes"].values():
        for store in result["stores"].values():
            store.pop("outputs", None)
    return build.json_safe(results)


# ----------------------------------------------------------------------------- driver


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="images per store-step measurement")
    parser.add_argument("--sizes", default="256,224", help="target sides, comma-separated")
    parser.add_argument("--stores", default=",".join(STORES), help="store steps to measure")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs of each (median)")
    parser.add_argument("--e2e", type=int, default=0, help="also time tfrec build on N images")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--work", type=Path, default=build.DEFAULT_WORK, help="work folder")
    parser.add_argument("--digests", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure_size(args: argparse.Namespace, names: list[str], images: list[bytes], size: int):
    config = ImageConfig(size=(size, size), quality=build.JPEG_QUALITY)
    stores = measure_stores(names, images, config, args.repeats)
    outputs = {name: stores[name]["outputs"] for name in names}
    here = {name: digest(outputs[name]) for name in names}
    there = child_digests(args, names, size)
    result = {
        "n": len(images),
        "repeats": args.repeats,
        "stores": stores,
        "parts_cpu_ms": measure_parts(names, images, config, args.repeats),
        "quality": quality(outputs, images, config),
        "same_bytes_other_process": {name: here[name] == there[name] for name in names},
    }
    for name in names:
        store = result["stores"][name]
        store["deterministic"] = store["same_bytes_every_repeat"] and here[name] == there[name]
    return result


def print_digests(args: argparse.Namespace) -> int:
    """Child mode: the digests of every store's outputs, as one JSON line."""
    names, _ = available(args.stores.split(","))
    images = load_images(build.dataset_paths(args.work, args.n)[0], args.n)
    config = ImageConfig(size=(int(args.sizes),) * 2, quality=build.JPEG_QUALITY)
    print(json.dumps({n: digest([stored_bytes(n, d, config) for d in images]) for n in names}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--as-tfrec"]:
        return patched_tfrec(sys.argv[2], sys.argv[3:])
    args = parse_args(argv)
    args.work = args.work.resolve()
    if args.digests:
        return print_digests(args)
    names, skipped = available(["pillow", *(s for s in args.stores.split(",") if s != "pillow")])
    results: dict[str, Any] = {"machine": build.machine_info(), "skipped": skipped, "sizes": {}}
    images = load_images(build.ensure_dataset(args.work, args.n, args.workers)[0], args.n)
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"measuring the store step at {size} px: {', '.join(names)}")
        results["sizes"][size] = measure_size(args, names, images, size)
    if args.e2e:
        results["e2e"] = run_e2e(args, [n for n in ("pillow", "simplejpeg") if n in names])
    results["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    m = results["machine"]
    print(f"\n{m['cpu_model']}, {m['cpus_usable']} CPUs usable, load {m['loadavg_1m_at_start']}"
          f" at start, {results['loadavg_at_end']} at end")  # fmt: skip
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    for size, result in results["sizes"].items():
        print_size(size, result)
    if "e2e" in results:
        print_e2e(results["e2e"])
    out_json = args.work / RESULTS_NAME
    out_json.write_text(json.dumps(json_ready(results), indent=2) + "\n")
    print(f"\nresults written to {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
