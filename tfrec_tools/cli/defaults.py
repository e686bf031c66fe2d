"""The defaults of `tfrec train` and `tfrec predict` that depend on what is on disk: the
shards folder, the set of a folder each command takes, the run folder and the output file."""

from __future__ import annotations

import os
from collections.abc import Callable

import click

from tfrec_tools.builder.config import DEFAULT_OUT


def shard_args(shards: tuple[str, ...]) -> tuple[str, ...]:
    """SHARDS as given; none given: ``./shards`` (where `tfrec build` writes by default)."""
    if shards:
        return shards
    if os.path.isdir(DEFAULT_OUT):
        return (DEFAULT_OUT,)
    command = click.get_current_context().info_name
    raise click.UsageError(
        f"no SHARDS given and no ./{DEFAULT_OUT} folder here: pass a shard folder, files or a "
        f"quoted glob, e.g. tfrec {command} {DEFAULT_OUT}/"
    )


def training_inputs(
    shards: tuple[str, ...], test: tuple[str, ...], say: Callable[[str], None]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(training shards, test shards). SHARDS that is one folder gives its labeled set, and,
    when --test is not given, the one unlabeled set beside it as the test set."""
    from tfrec_tools.shard_files import is_folder, pick_set, shard_sets

    if len(shards) != 1 or not is_folder(shards[0]):
        return shards, test
    sets = shard_sets(shards[0])
    chosen = pick_set(sets, "train", shards[0])
    say(f"training set: {chosen.describe()}")
    if not test:
        unlabeled = [s for s in sets if s.labeled is False]
        if len(unlabeled) == 1:
            test = unlabeled[0].files
            say(f"test set: {unlabeled[0].describe()} (--test to choose another)")
    return chosen.files, test


def run_dir_or_new(run_dir: str | None, say: Callable[[str], None]) -> str:
    """--out as given, else a new ``runs/<date>-<n>`` (named only, on the workers of a
    multi-worker run: the chief alone writes there)."""
    from tfrec_tools.runs import new_run_dir

    if run_dir:
        return run_dir
    path = new_run_dir(create="TF_CONFIG" not in os.environ)
    say(f"run folder: {path}")
    return path


def auto_lr_max(config, run_dir: str, say: Callable[[str], None]) -> float:
    """``--lr-max auto``: the LR range test's pick (per sample) for ``config`` (an
    LrFindConfig), its plot and points saved in ``RUN/lr-find/``.

    Raises:
        ConfigError: the loss never fell, so there is nothing to pick.
    """
    from tfrec_tools import fs
    from tfrec_tools.errors import ConfigError
    from tfrec_tools.train.lr_find import find_lr, save_lr_find

    say(f"--lr-max auto: LR range test on fold {config.fold} ({config.steps} steps)")
    result = find_lr(config)
    save_lr_find(result, fs.join(run_dir, "lr-find"))
    if result.suggestion is None:
        raise ConfigError(
            "--lr-max auto: the loss never fell during the LR range test (see "
            f"{fs.join(run_dir, 'lr-find')}); pass --lr-max yourself"
        )
    suggestion = result.suggestion
    say(f"--lr-max auto: {suggestion.lr_max:.3g} per sample (peak {suggestion.lr:.3g})")
    return suggestion.lr_max


def predict_inputs(
    shards: tuple[str, ...], run_dir: str | None, out: str | None, tta: int
) -> tuple[tuple[str, ...], str, str]:
    """(shards, run folder, output CSV): the unlabeled set of a folder, the newest run under
    ``runs/``, and ``predictions-<set>-tta<N>.csv`` in the run folder, or in --out when that
    is a folder."""
    from tfrec_tools import fs
    from tfrec_tools.runs import latest_run_dir
    from tfrec_tools.shard_files import is_folder, pick_set, shard_sets

    run_dir = run_dir or latest_run_dir()
    stem = "predictions"
    if len(shards) == 1 and is_folder(shards[0]):
        chosen = pick_set(shard_sets(shards[0]), "predict", shards[0])
        shards, stem = chosen.files, f"predictions-{chosen.name}" if chosen.name else stem
    name = f"{stem}-tta{tta}.csv"
    if out and fs.isdir(out):
        return shards, run_dir, fs.join(out, name)
    return shards, run_dir, out or os.path.join(run_dir, name)
