"""BuildConfig: every option of `tfrec build`, validated once."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from tfrec_tools.errors import ConfigError

FITS = ("resize", "crop", "pad", "keep")
EXISTING = ("error", "overwrite", "resume")
RUNNERS = ("local", "beam")
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold
MIN_AUTO_SHARDS = 16  # enough files to spread over 8 TPU cores or many workers


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
    out: str
    labels_csv: str | None = None
    name: str = "train"
    image: ImageConfig = field(default_factory=lambda: ImageConfig(size=(256, 256)))
    shards: int | None = None  # None: from shard_size_mb, at least MIN_AUTO_SHARDS
    shard_size_mb: float = 100.0  # ~100-200 MB per file reads well from GCS and local disk
    folds: int = 0  # 0: no folds
    id_col: str | None = None  # None: the first of ID_CANDIDATES the CSV has
    label_cols: tuple[str, ...] | None = None  # None: 'label' or 'target' if present
    group_col: str | None = None
    feature_cols: tuple[str, ...] = ()
    vocab_from: str | None = None  # a manifest whose categorical vocabularies to reuse
    seed: int = 42
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    existing: str = "error"
    runner: str = "local"  # local: a process pool; beam: an Apache Beam pipeline
    beam_options: tuple[str, ...] = ()  # KEY=VALUE pipeline options for --runner beam

    def __post_init__(self) -> None:
        self._check_name()
        if self.shards is not None and self.shards < 1:
            raise ConfigError(f"`shards` must be >= 1. Received: shards={self.shards}")
        if self.shard_size_mb <= 0:
            raise ConfigError(f"`shard_size_mb` must be > 0. Received: {self.shard_size_mb}")
        if self.folds == 1 or self.folds < 0:
            raise ConfigError(f"`folds` must be 0 (none) or >= 2. Received: folds={self.folds}")
        if self.folds and self.shards is not None and self.shards % self.folds:
            raise ConfigError(
                f"`folds` must divide `shards` so each shard is one fold. Received: "
                f"shards={self.shards}, folds={self.folds}; try --shards "
                f"{round_up(self.shards, self.folds)}"
            )
        if self.workers < 1:
            raise ConfigError(f"`workers` must be >= 1. Received: workers={self.workers}")
        if self.runner not in RUNNERS:
            raise ConfigError(f"`runner` must be one of {RUNNERS}. Received: {self.runner!r}")
        if self.beam_options and self.runner != "beam":
            raise ConfigError("--beam-option needs --runner beam")
        if self.existing not in EXISTING:
            raise ConfigError(f"`existing` must be one of {EXISTING}. Received: {self.existing!r}")
        if self.labels_csv is None and (self.folds or self.group_col or self.feature_cols):
            raise ConfigError("--folds, --group-col and --feature-col need a labels CSV")

    def _check_name(self) -> None:
        if not self.name or any(c in self.name for c in "/\\") or self.name[-1].isdigit():
            raise ConfigError(
                "`name` must be non-empty, hold no '/' and not end with a digit (the shard "
                f"index follows it). Received: name={self.name!r}"
            )

    def to_json(self) -> dict[str, Any]:
        """The options that decide the output (not where or how it is written)."""
        data = asdict(self)
        for key in ("out", "workers", "existing", "runner", "beam_options"):
            data.pop(key)
        return data


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


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
