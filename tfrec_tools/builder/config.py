"""BuildConfig: every option of `tfrec build`, validated once."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tfrec_tools import fs, naming
from tfrec_tools.errors import ConfigError
from tfrec_tools.urls import check_url

FITS = ("resize", "crop", "pad", "keep")
EXISTING = ("error", "overwrite", "resume")
RUNNERS = ("local", "beam")
# Where labels come from: auto (a CSV if given, else class folders when every image sits in
# one level of subfolders, else none), csv, folders (the top folder's name), or none.
LABEL_SOURCES = ("auto", "csv", "folders", "none")
DEFAULT_OUT = "shards"  # beside where the command runs; printed in the summary
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold
# A build's name starts its file names; its longest, "NAME.manifest.json.<pid>.partial", then
# stays under the 255-byte limit of common file systems.
NAME_MAX_BYTES = 200
PATH_FIELDS = ("images", "out", "labels_csv", "vocab_from")


@dataclass(frozen=True)
class ImageConfig:
    """How each image is turned into stored JPEG bytes."""

    size: tuple[int, int] | None = None  # (height, width); None only with fit="keep"
    fit: str = "resize"
    quality: int = 95  # the usual Kaggle choice: visually lossless, ~2x smaller than q100
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ConfigError(f"`fit` must be one of {', '.join(FITS)}. Received: fit={self.fit!r}")
        if (self.size is None) != (self.fit == "keep"):
            raise ConfigError(
                "`size` is required, except with fit='keep', which takes none. Received: "
                f"size={self.size}, fit={self.fit!r}"
            )
        if self.size is not None and min(self.size) < 1:
            raise ConfigError(f"`size` must be positive. Received: size={self.size}")
        if not 1 <= self.quality <= 100:
            raise ConfigError(f"`quality` must be in 1..100. Received: quality={self.quality}")
        if self.max_pixels < 1:
            raise ConfigError(f"`max_pixels` must be >= 1. Received: max_pixels={self.max_pixels}")


@dataclass(frozen=True)
class BuildConfig:
    """Everything `tfrec build` needs; built once from CLI options or API arguments."""

    images: str
    out: str = DEFAULT_OUT
    labels_csv: str | None = None
    name: str | None = None  # None: "train" for a labeled build, "test" for an unlabeled one
    image: ImageConfig = field(default_factory=lambda: ImageConfig(size=(256, 256)))
    shards: int | None = None  # None: chosen by builder.layout from size, folds and records
    shard_size_mb: float = 100.0  # ~100-200 MB per file reads well from GCS and local disk
    folds: int | None = None  # None: 5 for a labeled build (or what --shards allows), else 0
    id_col: str | None = None  # None: the first of ID_CANDIDATES the CSV has
    label_cols: tuple[str, ...] | None = None  # None: 'label' or 'target' if present
    labels_from: str = "auto"  # one of LABEL_SOURCES
    label_key: str | None = None  # record key of the (single) label; None: its column name
    multi_label: bool = False  # label cells hold tag sets, stored as multi-hot vectors
    label_sep: str = " "  # between the tags of a cell; " " splits on any run of whitespace
    group_col: str | None = None
    feature_cols: tuple[str, ...] = ()
    vocab_from: str | None = None  # a manifest whose categorical vocabularies to reuse
    seed: int = 42
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    existing: str = "error"
    runner: str = "local"  # local: a process pool; beam: an Apache Beam pipeline
    beam_options: tuple[str, ...] = ()  # KEY=VALUE pipeline options for --runner beam
    # Several sizes in one pass (--size 256,384): one complete build per size, in
    # out/<naming.size_folder(size)>, each image decoded once (``sized_configs``); image.size
    # is one of them. Empty: a build of image.size alone, in out.
    sizes: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        self._check_name()
        self._check_sizes()
        for name in PATH_FIELDS:
            check_url(getattr(self, name), name)
        if self.seed < 0:
            raise ConfigError(f"`seed` must be >= 0. Received: seed={self.seed}")
        if self.shards is not None and self.shards < 1:
            raise ConfigError(f"`shards` must be >= 1. Received: shards={self.shards}")
        if self.shard_size_mb <= 0:
            raise ConfigError(f"`shard_size_mb` must be > 0. Received: {self.shard_size_mb}")
        if self.folds is not None and (self.folds == 1 or self.folds < 0):
            raise ConfigError(f"`folds` must be 0 (none) or >= 2. Received: folds={self.folds}")
        if self.folds and self.shards is not None and self.shards % self.folds:
            raise ConfigError(
                f"`folds` must divide `shards` so each shard is one fold. Received: "
                f"shards={self.shards}, folds={self.folds}; {_nearest(self.shards, self.folds)}"
            )
        if self.workers < 1:
            raise ConfigError(f"`workers` must be >= 1. Received: workers={self.workers}")
        if self.runner not in RUNNERS:
            raise ConfigError(f"`runner` must be one of {RUNNERS}. Received: {self.runner!r}")
        if self.beam_options and self.runner != "beam":
            raise ConfigError("--beam-option needs --runner beam")
        if self.existing not in EXISTING:
            raise ConfigError(f"`existing` must be one of {EXISTING}. Received: {self.existing!r}")
        self._check_labels()

    def _check_labels(self) -> None:
        if self.labels_from not in LABEL_SOURCES:
            raise ConfigError(
                f"`labels_from` must be one of {', '.join(LABEL_SOURCES)}. "
                f"Received: labels_from={self.labels_from!r}"
            )
        if self.labels_csv is None and (self.group_col or self.feature_cols):
            raise ConfigError("--group-col and --feature-col need a labels CSV")
        if self.labels_csv is not None and self.labels_from in ("folders", "none"):
            raise ConfigError(
                f"--labels-from {self.labels_from} takes no LABELS_CSV; drop the CSV, or drop "
                "--labels-from to take the labels from the CSV"
            )
        if self.labels_csv is None and self.labels_from == "csv":
            raise ConfigError("--labels-from csv needs a LABELS_CSV argument")
        if self.labels_from == "none" and self.folds:
            raise ConfigError(
                "--folds needs labels, and this build has none (no LABELS_CSV, no class "
                "folders, or --labels-from none)"
            )
        self._check_tags()
        if self.label_key is not None and self.label_cols and len(self.label_cols) > 1:
            raise ConfigError(
                "--label-key names the record key of a single label; with several --label-col "
                "the keys are the column names (rename the columns in the CSV)"
            )

    def _check_tags(self) -> None:
        if not self.label_sep:
            raise ConfigError(f"`label_sep` must not be empty. Received: {self.label_sep!r}")
        if self.label_sep != " " and not self.multi_label:
            raise ConfigError("--label-sep separates the tags of --multi-label: add --multi-label")
        if self.multi_label and self.labels_csv is None:
            raise ConfigError(
                "--multi-label reads tag sets from a label column of a LABELS_CSV; class "
                "folders give one class per image: pass a CSV"
            )

    def _check_sizes(self) -> None:
        if not self.sizes:
            return
        if len(set(self.sizes)) < max(2, len(self.sizes)):
            raise ConfigError(
                "`sizes` must list 2 or more distinct sizes (a single size is `image.size`). "
                f"Received: sizes={self.sizes}"
            )
        if self.image.size not in self.sizes:
            raise ConfigError(
                f"`image.size` must be one of `sizes`. Received: size={self.image.size}, "
                f"sizes={self.sizes}"
            )

    def _check_name(self) -> None:
        if self.name is None or _plain_name(self.name):
            return
        name = self.name
        shown = repr(name) if len(name) <= 60 else f"{name[:40]!r}... ({len(name)} characters)"
        raise ConfigError(
            f"`name` must be 1 to {NAME_MAX_BYTES} bytes of printable characters without "
            "* ? [ ] / \\ or '..', not start with '.' (a hidden file) and not end with a digit "
            f"(the shard index follows it). Received: name={shown}"
        )

    def to_json(self) -> dict[str, Any]:
        """The options that decide the output (not where or how it is written)."""
        data = asdict(self)
        for key in ("out", "workers", "existing", "runner", "beam_options"):
            data.pop(key)
        if not self.sizes:
            data.pop("sizes")  # a single-size build's options as they were before passes
        return data


def sized_configs(config: BuildConfig) -> tuple[BuildConfig, ...]:
    """The build of each size of a pass, in ``out/<size>`` (``naming.size_folder``), in the
    order of ``sizes``; ``(config,)`` for a build of one size."""
    return tuple(
        replace(
            config,
            out=fs.join(config.out, naming.size_folder(size)),
            image=replace(config.image, size=size),
        )
        for size in config.sizes
    ) or (config,)


def _plain_name(name: str) -> bool:
    """A name that globs, hides or breaks no file name it starts (see ``_check_name``)."""
    return (
        0 < len(name.encode("utf-8")) <= NAME_MAX_BYTES
        and name.isprintable()
        and not any(c in name for c in "*?[]/\\")
        and ".." not in name
        and not name.startswith(".")
        and not name[-1].isdigit()
    )


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _nearest(shards: int, folds: int) -> str:
    """The valid choices next to an invalid (shards, folds) pair."""
    lower, upper = shards - shards % folds, round_up(shards, folds)
    counts = " or ".join(str(n) for n in (lower, upper) if n >= folds)
    divisors = [k for k in range(2, shards + 1) if shards % k == 0 and k <= 10]
    choice = f"try --shards {counts}"
    if divisors:
        choice += f", or --folds {' or '.join(map(str, divisors))} with --shards {shards}"
    return choice


def parse_size(text: str) -> tuple[int, int]:
    """``'256'`` -> (256, 256); ``'256x384'`` -> (256, 384) as (height, width)."""
    parts = text.lower().split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2) or min(numbers) < 1:
        raise ConfigError(
            f"`size` must look like 256 or 256x384 (height x width). Received: {text!r}"
        )
    return (numbers[0], numbers[-1])


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """``'256,384x512'`` -> ((256, 256), (384, 512)): one or more sizes, comma-separated."""
    sizes = tuple(parse_size(part.strip()) for part in text.split(","))
    for size in sizes:
        if sizes.count(size) > 1:
            raise ConfigError(f"`size` lists {naming.size_folder(size)} twice. Received: {text!r}")
    return sizes
