"""A dask.distributed cluster on 127.0.0.1 for tests and benchmarks/dask_build.py: a scheduler
and single-thread workers, each its own process, on free ports, killed on the way out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60  # two cold interpreters importing dask on a busy 2-core machine


@dataclass
class DaskCluster:
    address: str  # tcp://127.0.0.1:PORT of the scheduler
    workers: list[subprocess.Popen]

    def tasks_per_worker(self) -> dict[str, int]:
        """How many tasks each live worker has run since it started."""
        from distributed import Client

        with Client(self.address, timeout=START_TIMEOUT_S) as client:
            return client.run(lambda dask_worker: dask_worker.state.executed_count)


@contextmanager
def dask_cluster(
    folder: Path, workers: int = 2, preload: tuple[str, ...] = ()
) -> Iterator[DaskCluster]:
    """Start the cluster (logs in ``folder``; each worker imports the modules ``preload``
    names as it starts), yield it, kill every process, even on failure."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)  # the address of an earlier cluster
    processes: list[subprocess.Popen] = []
    try:
        processes.append(
            _start(folder, "scheduler", "--port", "0", "--scheduler-file", str(scheduler_file))
        )
        address = _address(scheduler_file, processes[0])
        options = [address, "--nthreads", "1", "--no-nanny"]
        options += [arg for module in preload for arg in ("--preload", module)]
        for i in range(workers):
            processes.append(_start(folder, f"worker{i}", *options))
        _wait_for_workers(address, workers)
        yield DaskCluster(address, processes[1:])
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()


def _start(folder: Path, name: str, *args: str) -> subprocess.Popen:
    module = "dask_scheduler" if name == "scheduler" else "dask_worker"
    command = [sys.executable, "-m", f"distributed.cli.{module}", *args]
    command += ["--host", "127.0.0.1", "--no-dashboard"]
    env = os.environ | {"DASK_TEMPORARY_DIRECTORY": str(folder / name)}  # scratch space
    with (folder / f"{name}.log").open("wb") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _address(scheduler_file: Path, scheduler: subprocess.Popen) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and scheduler.poll() is None:
        try:
            return json.loads(scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):  # not written yet, or half written
            time.sleep(0.1)
    raise RuntimeError(f"the dask scheduler did not start; see {scheduler_file.parent}")


def _wait_for_workers(address: str, workers: int) -> None:
    from distributed import Client

    with Client(address, timeout=START_TIMEOUT_S) as client:
        client.wait_for_workers(workers, timeout=START_TIMEOUT_S)
