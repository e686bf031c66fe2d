"""Default run folders: ``runs/<YYYY-MM-DD>-<n>`` under the current folder, a new one for each
`tfrec train` without ``--out`` (never an existing one), and the newest one for `tfrec predict`
without ``--run``."""

from __future__ import annotations

import datetime
import os
import re

from tfrec_tools.errors import ConfigError

RUNS_ROOT = "runs"
_RUN_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})-(\d+)$")
_FINISHED = "model.json"  # written by a run that finished (see train.outputs.RESULT_FILES)


def new_run_dir(root: str = RUNS_ROOT, *, create: bool = True, today: str | None = None) -> str:
    """``root/<today>-<n>`` with n one more than any run of today's date; created at once
    (``create``) so two runs started together never share it. Without ``create`` (workers of a
    multi-worker run, where only the chief writes) the name alone."""
    date = today or datetime.date.today().isoformat()
    number = max((int(m.group(2)) for m in _runs(root) if m.group(1) == date), default=0) + 1
    while True:
        path = os.path.join(root, f"{date}-{number}")
        if not create and not os.path.exists(path):
            return path
        if create:
            os.makedirs(root, exist_ok=True)
            try:
                os.mkdir(path)
                return path
            except FileExistsError:
                pass
        number += 1


def latest_run_dir(root: str = RUNS_ROOT) -> str:
    """The newest finished run under ``root`` (by date, then number).

    Raises:
        ConfigError: there is none.
    """
    finished = [m for m in _runs(root) if os.path.exists(os.path.join(root, m.group(0), _FINISHED))]
    if not finished:
        raise ConfigError(
            f"no finished run under {root}/ (folders named like {root}/2026-01-31-1 holding "
            f"{_FINISHED}); pass --run RUN_DIR"
        )
    newest = max(finished, key=lambda m: (m.group(1), int(m.group(2))))
    return os.path.join(root, newest.group(0))


def _runs(root: str) -> list[re.Match]:
    if not os.path.isdir(root):
        return []
    return [m for m in map(_RUN_NAME.match, sorted(os.listdir(root))) if m]
