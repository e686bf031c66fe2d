"""TrainConfig: every option of `tfrec train`, validated once and saved as config.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tfrec_tools.errors import ConfigError
from tfrec_tools.train.models import ModelConfig
from tfrec_tools.train.schedules import ScheduleConfig

CACHES = ("none", "encoded", "decoded")


@dataclass(frozen=True)
class TrainConfig:
    """A K-fold training run: shards in, fold models + OOF + submission + report out."""

    shards: tuple[str, ...]  # training shards: files, folders or globs
    run_dir: str
    test: tuple[str, ...] = ()  # test shards to predict after each fold
    model: ModelConfig = field(default_factory=ModelConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    image_size: tuple[int, int] | None = None  # None: the size stored in the manifest
    batch_size: int = 16  # per replica: the global batch is this x replicas
    epochs: int = 10
    folds: tuple[int, ...] | None = None  # the folds to run; None: all
    num_folds: int | None = None  # foreign shards (no folds stored): K-fold over files
    patience: int | None = None  # early stopping patience; None: no early stopping
    augment: str = "standard"  # a preset name or an AugmentConfig JSON file
    tta: int = 1  # prediction passes; 1 = no augmentation at prediction
    fold_weights: tuple[float, ...] | None = None  # test blend; None: equal
    loss_weights: tuple[tuple[str, float], ...] = ()  # multi-output: (label, weight)
    cache: str = "none"  # reader cache for training data: none, encoded or decoded
    seed: int = 42
    deterministic: bool = False  # op determinism: slower, identical reruns on CPU
    mixed_precision: bool = False  # bfloat16 on TPU, float16 on GPU
    description: str = "run"  # goes into the report's file name
    report_dir: str | None = None  # None: RUN_DIR/reports
    overwrite: bool = False
    verbose: int = 2  # Keras fit verbosity: 2 = one line per epoch

    def __post_init__(self) -> None:
        if not self.shards:
            raise ConfigError("`shards` must name at least one shard file, folder or glob")
        for name in ("batch_size", "epochs", "tta"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        if self.num_folds is not None and self.num_folds < 2:
            raise ConfigError(f"`num_folds` must be >= 2. Received: num_folds={self.num_folds}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"`patience` must be >= 1. Received: patience={self.patience}")
        if self.cache not in CACHES:
            raise ConfigError(f"`cache` must be one of {CACHES}. Received: cache={self.cache!r}")
        if self.fold_weights is not None and (
            min(self.fold_weights) < 0 or sum(self.fold_weights) <= 0
        ):
            raise ConfigError(
                f"`fold_weights` must be >= 0 with a positive sum. Received: {self.fold_weights}"
            )
        if any(c in self.description for c in "/\\"):
            raise ConfigError(f"`description` must hold no '/'. Received: {self.description!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        data["model"] = ModelConfig(**data["model"])
        data["schedule"] = ScheduleConfig(**data["schedule"])
        for key in ("shards", "test", "folds", "fold_weights", "image_size"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        data["loss_weights"] = tuple(tuple(p) for p in data.get("loss_weights", ()))
        return cls(**data)
