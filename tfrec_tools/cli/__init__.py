"""The `tfrec` command. Subcommands load lazily so `tfrec --help` never imports TensorFlow."""

from __future__ import annotations

import importlib
import logging
import os

import click

from tfrec_tools import __version__
from tfrec_tools.errors import TfrecError

# name -> "module:attribute" of each subcommand
COMMANDS = {
    "augment-preview": "tfrec_tools.cli.augment_preview:augment_preview_command",
    "build": "tfrec_tools.cli.build:build_command",
    "diff": "tfrec_tools.cli.diff:diff_command",
    "index": "tfrec_tools.cli.index:index_command",
    "inspect": "tfrec_tools.cli.inspect:inspect_command",
    "kaggle-metadata": "tfrec_tools.cli.kaggle:kaggle_metadata_command",
    "lr-find": "tfrec_tools.cli.lr_find:lr_find_command",
    "lr-plot": "tfrec_tools.cli.lr_plot:lr_plot_command",
    "predict": "tfrec_tools.cli.train:predict_command",
    "train": "tfrec_tools.cli.train:train_command",
}
# A command may store a hint here (``click.get_current_context().meta[INTERRUPT_HINT]``): Ctrl-C
# then prints it after "Interrupted." (e.g. how to finish the interrupted work).
INTERRUPT_HINT = "tfrec.interrupt_hint"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs (or its help is shown),
    and turns library errors into one-line ``Error: ...`` messages with exit code 1: the
    library's typed errors, and as a last resort what the system raises (OSError, UnicodeError,
    MemoryError). Ctrl-C prints "Interrupted." and exits with 130."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TfrecError as err:
            raise click.ClickException(str(err)) from err
        except (OSError, UnicodeError, MemoryError) as err:
            raise click.ClickException(_one_line(err)) from err
        except KeyboardInterrupt:
            hint = ctx.meta.get(INTERRUPT_HINT)
            click.echo(f"Interrupted. {hint}" if hint else "Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)


def _one_line(err: OSError | UnicodeError | MemoryError) -> str:
    """What the system said, with the path(s) it names, on one line."""
    if isinstance(err, MemoryError):
        return "out of memory: lower --batch-size (train, predict), --size (train) or --workers"
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, OSError) and err.strerror:
        paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
        text = f"{' -> '.join(paths)}: {err.strerror}" if paths else err.strerror
    return text


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="tfrec")
@click.option("-v", "--verbose", is_flag=True, help="Log what the library does (INFO level).")
def main(verbose: bool) -> None:
    """Image folder + CSV -> sharded TFRecords, and the Keras side that trains on them.

    Example: tfrec build images/ labels.csv --out shards/ --size 256 --folds 5
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
