"""Writing planned shards: each shard is written under a temporary name and renamed to
``{name}{NN}-{count}.tfrec`` once complete, so no file ever states a wrong count."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import multiprocessing
import os
import queue as queue_lib
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass

from tfrec_tools import fs, naming
from tfrec_tools.builder.config import ImageConfig
from tfrec_tools.builder.images import (
    ImageError,
    StoredImage,
    prepare_image,
    prepare_sizes,
    read_image,
)
from tfrec_tools.builder.plan import ShardSpec
from tfrec_tools.builder.rows import Rejection, RowSpec
from tfrec_tools.errors import ResourceError
from tfrec_tools.index import index_bytes
from tfrec_tools.manifest import ShardEntry
from tfrec_tools.phash import HashRow
from tfrec_tools.records import RecordWriter, encode_example
from tfrec_tools.schema import (
    FOLD,
    HEIGHT,
    IMAGE,
    IMAGE_ID,
    WIDTH,
    LabelSpec,
    Schema,
)

Progress = Callable[[int], None]
_PROGRESS_EVERY = 16  # images per progress message from a worker process
# Errors of the machine, not of a file: they stop the build instead of rejecting rows.
MACHINE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EROFS", "ENOMEM", "EMFILE", "ENFILE", "EFBIG")
    if hasattr(errno, name)
)


@dataclass(frozen=True)
class ShardJob:
    """What every shard of one build shares; pickled once per task."""

    out: str
    name: str
    num_shards: int
    schema: Schema
    labels: tuple[LabelSpec, ...]
    value_keys: tuple[str, ...]  # record keys of RowSpec.values, in order
    image: ImageConfig


@dataclass(frozen=True)
class ShardResult:
    entry: ShardEntry
    rejected: tuple[Rejection, ...]
    # per record, in order: id, perceptual hash, sha256 of the image bytes; None in a state
    # folder written before builds hashed images (--resume writes such a shard again)
    hashes: tuple[HashRow, ...] | None = None


def save_result(state: str, result: ShardResult) -> None:
    """Record a finished shard in the build's state folder (what --resume trusts)."""
    data = {"entry": asdict(result.entry), "rejected": [asdict(r) for r in result.rejected]}
    if result.hashes is not None:
        data["hashes"] = [[h.image_id, h.phash, h.sha256] for h in result.hashes]
    path = fs.join(state, f"shard-{result.entry.index:06d}.json")
    fs.write_bytes_atomic(path, json.dumps(data).encode("utf-8"))


def load_results(state: str) -> dict[int, ShardResult]:
    """Results of shards whose file is complete (a result is saved only after the rename)."""
    results = {}
    for entry in fs.listdir(state):
        if entry.startswith("shard-") and entry.endswith(".json"):
            data = json.loads(fs.read_bytes(fs.join(state, entry)))
            shard_entry = ShardEntry(**data["entry"])
            result = ShardResult(
                shard_entry,
                tuple(Rejection(**r) for r in data["rejected"]),
                _hash_rows(data.get("hashes"), shard_entry.file),
            )
            results[result.entry.index] = result
    return results


def write_shard(spec: ShardSpec, job: ShardJob, progress: Progress = lambda n: None) -> ShardResult:
    """Write one shard and its record index; rows whose image cannot be stored become
    rejections.

    Raises:
        ResourceError: out of memory or disk space, or a read-only output (no row's fault).
    """
    return write_sizes(spec, (job,), progress)[0]


def write_sizes(
    spec: ShardSpec, jobs: Sequence[ShardJob], progress: Progress = lambda n: None
) -> tuple[ShardResult, ...]:
    """``write_shard`` once per job (one per size of a pass, alike but for ``out`` and the
    image size), each image read and decoded once; a row rejected at one size is rejected at
    all, so every size holds the same records.

    Raises:
        ResourceError: as ``write_shard``.
    """
    pid = os.getpid()
    partials = [
        fs.join(j.out, naming.partial_name(j.name, spec.index, j.num_shards, pid=pid)) for j in jobs
    ]
    finals: list[str] = []
    index_sums = []
    try:
        with contextlib.ExitStack() as stack:
            writers = [stack.enter_context(RecordWriter(p)) for p in partials]
            rejected, histograms, hashes = _write_records(writers, spec, jobs, progress)
        count = len(hashes[0])
        for job, partial, writer in zip(jobs, partials, writers):
            finals.append(
                fs.join(job.out, naming.shard_name(job.name, spec.index, job.num_shards, count))
            )
            index_sums.append(_seal(partial, finals[-1], writer.spans, job.out))
    except OSError as err:
        if err.errno not in MACHINE_ERRNOS:
            raise
        for partial, final in zip(partials, finals + [None] * len(partials)):
            _give_back(partial, final and naming.index_name(final))
        raise ResourceError(
            f"{err.filename or partials[0]}: {err.strerror}; make room (or write elsewhere), "
            "then finish the build with --resume (in place of --overwrite, if given)"
        ) from err
    named = _named_histograms(jobs[0].labels, histograms)
    return tuple(
        ShardResult(
            _entry(spec, final, count, named, index_sum),
            tuple(rejected),
            _hash_rows(rows, naming.base_name(final)),
        )
        for final, index_sum, rows in zip(finals, index_sums, hashes)
    )


def _seal(partial: str, final: str, spans: list[tuple[int, int]], out: str) -> str:
    """Give the complete shard ``partial`` its ``final`` name, its record index in place
    first (a shard never stays without its index); the sha256 of the index."""
    fs.sync(partial)  # the records are on disk before the name says the shard is complete
    data = index_bytes(spans)
    fs.write_bytes_atomic(naming.index_name(final), data)
    fs.rename(partial, final)
    fs.sync(out)
    return hashlib.sha256(data).hexdigest()


def _entry(spec: ShardSpec, final: str, count: int, histograms: dict, index_sum: str):
    return ShardEntry(
        naming.base_name(final),
        spec.index,
        spec.fold,
        count,
        fs.size(final),
        fs.sha256(final),
        histograms,
        index_file=naming.base_name(naming.index_name(final)),
        index_sha256=index_sum,
    )


def _hash_rows(hashes: list | None, shard: str) -> tuple[HashRow, ...] | None:
    """(image_id, phash, sha256) triples as the rows of the hashes sidecar for ``shard``."""
    if hashes is None:
        return None
    return tuple(HashRow(image_id, shard, phash, sha) for image_id, phash, sha in hashes)


def _give_back(partial: str, index: str | None) -> None:
    """Remove what a shard that could not be finished took (its index only while the shard
    has not taken its final name: a shard never stays without its index)."""
    with contextlib.suppress(OSError):
        if index and fs.exists(partial):
            fs.remove(index)
    with contextlib.suppress(OSError):
        fs.remove(partial)


def _write_records(
    writers: Sequence[RecordWriter], spec: ShardSpec, jobs: Sequence[ShardJob], progress: Progress
):
    """The records of ``spec`` through ``writers`` (one per job): (rejections, label
    histograms, and per job, per record its id, perceptual hash and sha256 of its image)."""
    rejected, histograms = [], [Counter() for _ in jobs[0].labels]
    hashes: list[list] = [[] for _ in jobs]
    for done, row in enumerate(spec.rows, start=1):
        try:
            stored = _prepare(read_image(row.path, jobs[0].image), [j.image for j in jobs])
        except ImageError as err:
            rejected.append(Rejection(row.row, row.image_id, row.path, err.reason, err.detail))
        except MemoryError:
            raise ResourceError(
                f"{row.path}: out of memory while preparing this image; pass fewer "
                "--workers or a smaller --max-pixels, then finish the build with --resume "
                "(in place of --overwrite, if given)"
            ) from None
        except OSError as err:
            if err.errno in MACHINE_ERRNOS:
                raise
            rejected.append(Rejection(row.row, row.image_id, row.path, "unreadable file", str(err)))
        else:
            for writer, job, image, rows in zip(writers, jobs, stored, hashes):
                writer.write(_example(job, spec, row, image))
                rows.append((row.image_id, image.phash, hashlib.sha256(image.data).hexdigest()))
            _count_labels(histograms, jobs[0].labels, row.values)
        if done % _PROGRESS_EVERY == 0 or done == len(spec.rows):
            progress(done % _PROGRESS_EVERY or _PROGRESS_EVERY)
    return rejected, histograms, hashes


def _prepare(data: bytes, images: list[ImageConfig]) -> tuple[StoredImage, ...]:
    """The image at each size; a single size through ``prepare_image`` itself (what
    benchmarks and tests replace to time or stop a build)."""
    if len(images) == 1:
        return (prepare_image(data, images[0]),)
    return prepare_sizes(data, images)


def _example(job: ShardJob, spec: ShardSpec, row: RowSpec, stored: StoredImage) -> bytes:
    record = {
        IMAGE: stored.data,
        IMAGE_ID: row.image_id,
        HEIGHT: stored.height,
        WIDTH: stored.width,
    }
    record.update(zip(job.value_keys, row.values))
    if spec.fold is not None:
        record[FOLD] = spec.fold
    return encode_example(job.schema, record)


def _count_labels(histograms: list[Counter], labels: tuple[LabelSpec, ...], values) -> None:
    """Add one record's labels: its class, or each of its tags (a multi-hot value)."""
    for histogram, spec, value in zip(histograms, labels, values):
        if spec.kind == "multilabel":
            histogram.update(i for i, hot in enumerate(value) if hot)
        else:
            histogram[value] += 1


def _named_histograms(labels, histograms) -> dict[str, dict[str, int]]:
    """Per classification label: class name -> records; per multi-label label: tag ->
    records holding it (regression labels have none)."""
    return {
        spec.name: {spec.classes[k]: n for k, n in sorted(h.items())}
        for spec, h in zip(labels, histograms)
        if spec.kind != "regression"
    }


class WorkerPool:
    """Worker processes for a build, started first so that they load TensorFlow (seconds)
    while this process reads the CSV and plans the shards. ``workers=1``: no processes."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._messages = None

    def __enter__(self) -> WorkerPool:
        if self.workers > 1:
            context = multiprocessing.get_context(_start_method())
            self._messages = context.Queue()
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self._messages,),
            )
            for _ in range(self.workers):  # the executor starts its processes on first use
                self._pool.submit(int)
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if self._pool is None:
            return
        if exc_type is not None:  # Ctrl-C or a fatal error: stop now, --resume redoes the rest
            for process in list(self._pool._processes.values()):  # 3.11 has no public way
                process.terminate()
        self._pool.shutdown(cancel_futures=True)

    def write(self, specs: Sequence[ShardSpec], jobs: tuple[ShardJob, ...], progress: Progress):
        """Write shards, one shard (at every size: one job per size) per task, in this
        process without workers. Each shard's results (one per job) come back as it finishes,
        in any order."""
        if self._pool is None or len(specs) == 1:
            for spec in specs:
                yield write_sizes(spec, jobs, progress)
            return
        pending: set[Future] = {self._pool.submit(_write_in_worker, s, jobs) for s in specs}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(self._messages, progress)
            for future in done:
                yield future.result()
        _drain(self._messages, progress)


_worker_queue = None


def _start_method() -> str:
    """fork (workers start in milliseconds, sharing the imports already made) while this
    process has not loaded TensorFlow, whose runtime threads do not survive a fork; else
    spawn (each worker starts a fresh interpreter)."""
    if "tensorflow" in sys.modules or "fork" not in multiprocessing.get_all_start_methods():
        return "spawn"
    return "fork"


def _init_worker(messages) -> None:
    """Ctrl-C reaches every process of the terminal's group: the workers leave it to the
    parent, which stops them (one message, no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _worker_queue
    _worker_queue = messages


def _write_in_worker(spec: ShardSpec, jobs: tuple[ShardJob, ...]) -> tuple[ShardResult, ...]:
    return write_sizes(spec, jobs, _worker_queue.put)


def _drain(messages, progress: Progress) -> None:
    while True:
        try:
            progress(messages.get_nowait())
        except queue_lib.Empty:
            return
