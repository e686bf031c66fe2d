"""TrainConfig: every option of `tfrec train`, validated once and saved as config.json, and
``resolve_defaults``: the model's training defaults for the options left unset."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from tfrec_tools.errors import ConfigError
from tfrec_tools.read.augment import DEFAULT_AUGMENT, PRESETS, AugmentConfig, stored_augment
from tfrec_tools.read.pipeline import CACHE_MODES
from tfrec_tools.train.models import ModelConfig
from tfrec_tools.train.schedules import WARMUP_KINDS, ScheduleConfig
from tfrec_tools.train.specs import DEFAULT_THRESHOLD
from tfrec_tools.urls import check_url

# Where training images are augmented: in the tf.data pipeline on the host, or by Keras
# layers at the start of the model (on the accelerator; no cutout).
AUGMENT_ON = ("host", "model")
# The settings a model's TrainingDefaults fill, as TrainConfig paths (the keys of `sources`).
MODEL_DEFAULTS = ("batch_size", "schedule.kind", "schedule.lr_max", "schedule.warmup_epochs")
SEED_MAX = 2**32 - 1  # keras.utils.set_random_seed seeds NumPy, which takes 0..2**32-1
DESCRIPTION_MAX_BYTES = 200  # it names the report file, within the usual 255-byte limit


@dataclass(frozen=True)
class Resolved:
    """The schedule and batch size of a run, and where each setting came from."""

    schedule: ScheduleConfig
    batch_size: int
    sources: dict[str, str]  # "batch_size" / "schedule.<field>" -> "model default (...)" or how


def resolve_defaults(
    model: ModelConfig,
    given: Mapping[str, Any] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    epochs: int | None = None,
) -> Resolved:
    """The model's training defaults for its weights (``model.training_defaults()``: from
    scratch or fine-tuning), overridden by every value of ``given`` that is not None.

    Args:
        model: the model and its weights.
        given: "batch_size" and ScheduleConfig field names -> value; None keeps the default.
        labels: how each value of ``given`` was given, for ``sources`` (e.g. "--lr-max");
            default: its name.
        epochs: the run's epochs: the model's warmup (not a given one) is cut to a quarter of
            them at most, so a short run still trains at its peak (2 of 12 epochs stay 2;
            1 epoch gets none, where 2 warmup epochs would never leave ``lr_start``).

    Returns:
        A Resolved whose ``sources`` name, for the MODEL_DEFAULTS settings and every given
        one, "model default (scratch)", "model default (fine-tune)" or the label.

    Raises:
        ConfigError: a name in ``given`` that is no such setting, or an invalid value.
    """
    chosen = {k: v for k, v in (given or {}).items() if v is not None}
    allowed = ("batch_size", *(f.name for f in fields(ScheduleConfig)))
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        raise ConfigError(f"`given` must name settings among {allowed}. Received: {unknown}")
    defaults = model.training_defaults()
    sources = dict.fromkeys(MODEL_DEFAULTS, f"model default ({model.start})")
    for name in chosen:
        key = name if name == "batch_size" else f"schedule.{name}"
        sources[key] = (labels or {}).get(name, name)
    batch_size = chosen.pop("batch_size", defaults.batch_size)
    schedule = replace(defaults.schedule_config(), **chosen)
    if epochs is not None and "warmup_epochs" not in chosen and schedule.kind in WARMUP_KINDS:
        warmup = min(schedule.warmup_epochs, epochs // 4)
        if warmup < schedule.warmup_epochs:
            schedule = replace(schedule, warmup_epochs=warmup)
            sources["schedule.warmup_epochs"] += f", cut to {warmup} for {epochs} epochs"
    return Resolved(schedule, batch_size, sources)


@dataclass(frozen=True)
class TrainConfig:
    """A K-fold training run: shards in, fold models + OOF + submission + report out.

    ``schedule`` and ``batch_size`` left None take the model's training defaults for its
    weights (``resolve_defaults``); ``sources`` records where each of them came from.
    """

    shards: tuple[str, ...]  # training shards: files, folders or globs
    run_dir: str
    test: tuple[str, ...] = ()  # test shards to predict after each fold
    model: ModelConfig = field(default_factory=ModelConfig)
    schedule: ScheduleConfig | None = None  # None: the model's default
    image_size: tuple[int, int] | None = None  # None: the size stored in the manifest
    batch_size: int | None = None  # per replica (global: this x replicas); None: the model's
    epochs: int = 10
    # Progressive fine-tuning: the first N epochs train with the backbone frozen; 0: never
    freeze_epochs: int = 0
    steps_per_execution: int = 1  # batches per compiled call; TPU: 8-32 (see docs/tpu.md)
    folds: tuple[int, ...] | None = None  # the folds to run; None: all
    num_folds: int | None = None  # foreign shards (no folds stored): K-fold over files
    patience: int | None = None  # early stopping patience; None: no early stopping
    augment: AugmentConfig = PRESETS[DEFAULT_AUGMENT]  # training and TTA augmentation
    augment_on: str = "host"  # one of AUGMENT_ON
    tta: int = 1  # prediction passes; 1 = no augmentation at prediction
    # multi-label heads: a tag is predicted when its probability is above this (F1, CSVs)
    threshold: float = DEFAULT_THRESHOLD
    fold_weights: tuple[float, ...] | None = None  # test blend; None: equal
    loss_weights: tuple[tuple[str, float], ...] = ()  # multi-output: (label, weight)
    cache: str = "none"  # reader cache for training data: one of CACHE_MODES
    seed: int = 42
    deterministic: bool = False  # op determinism: slower, identical reruns on CPU
    mixed_precision: bool = False  # bfloat16 on TPU, float16 on GPU
    description: str = "run"  # goes into the report's file name
    report_dir: str | None = None  # None: RUN_DIR/reports
    overwrite: bool = False
    verbose: int = 2  # Keras fit verbosity: 2 = one line per epoch
    sources: dict[str, str] = field(default_factory=dict)  # see resolve_defaults

    def __post_init__(self) -> None:
        if not self.shards:
            raise ConfigError("`shards` must name at least one shard file, folder or glob")
        self._check_paths()
        if not 0 <= self.seed <= SEED_MAX:
            raise ConfigError(f"`seed` must be in 0..{SEED_MAX}. Received: seed={self.seed}")
        self._fill_model_defaults()
        self._place_augmentation()
        for name in ("batch_size", "epochs", "tta", "steps_per_execution"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        self._check_freeze_epochs()
        if self.num_folds is not None and self.num_folds < 2:
            raise ConfigError(f"`num_folds` must be >= 2. Received: num_folds={self.num_folds}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"`patience` must be >= 1. Received: patience={self.patience}")
        if self.cache not in CACHE_MODES:
            raise ConfigError(
                f"`cache` must be one of {CACHE_MODES}. Received: cache={self.cache!r}"
            )
        if self.fold_weights is not None and (
            min(self.fold_weights) < 0 or sum(self.fold_weights) <= 0
        ):
            raise ConfigError(
                f"`fold_weights` must be >= 0 with a positive sum. Received: {self.fold_weights}"
            )
        self._check_description()
        if not 0 < self.threshold < 1:
            raise ConfigError(
                f"`threshold` must be in (0, 1). Received: threshold={self.threshold}"
            )

    def _check_paths(self) -> None:
        for name in ("shards", "test"):
            for path in getattr(self, name):
                check_url(path, name)
        check_url(self.run_dir, "run_dir")
        check_url(self.report_dir, "report_dir")
        if self.model.weights != "imagenet":
            check_url(self.model.weights, "model.weights")

    def _check_description(self) -> None:
        text = self.description
        if (
            0 < len(text.encode("utf-8")) <= DESCRIPTION_MAX_BYTES
            and text.isprintable()
            and not any(c in text for c in "/\\")
        ):
            return
        shown = repr(text) if len(text) <= 60 else f"{text[:40]!r}... ({len(text)} characters)"
        raise ConfigError(
            f"`description` must be 1 to {DESCRIPTION_MAX_BYTES} bytes of printable characters "
            f"without / or \\ (it names the report file). Received: description={shown}"
        )

    def _check_freeze_epochs(self) -> None:
        if self.freeze_epochs < 0:
            raise ConfigError(
                f"`freeze_epochs` must be >= 0. Received: freeze_epochs={self.freeze_epochs}"
            )
        if self.freeze_epochs >= self.epochs:
            raise ConfigError(
                "`freeze_epochs` must be < `epochs`: at least one epoch must train the unfrozen "
                f"backbone. Received: freeze_epochs={self.freeze_epochs}, epochs={self.epochs}"
            )

    def _fill_model_defaults(self) -> None:
        """schedule / batch_size left None: the model's defaults, with their sources."""
        if self.schedule is not None and self.batch_size is not None:
            return
        resolved = resolve_defaults(self.model, epochs=self.epochs)
        filled = {"schedule": self.schedule is None, "batch_size": self.batch_size is None}
        sources = {
            key: source
            for key, source in resolved.sources.items()
            if filled[key.split(".")[0]] and key not in self.sources
        }
        object.__setattr__(self, "sources", {**self.sources, **sources})
        if filled["schedule"]:
            object.__setattr__(self, "schedule", resolved.schedule)
        if filled["batch_size"]:
            object.__setattr__(self, "batch_size", resolved.batch_size)

    def _place_augmentation(self) -> None:
        """``model.augment`` holds the Keras layers' settings: ``augment`` when augmenting in
        the model, else None."""
        if not isinstance(self.augment, AugmentConfig):
            raise ConfigError(
                "`augment` must be an AugmentConfig (read.augment.augment_config turns a preset "
                f"name or JSON file into one). Received: augment={self.augment!r}"
            )
        if self.augment_on not in AUGMENT_ON:
            raise ConfigError(
                f"`augment_on` must be one of {AUGMENT_ON}. "
                f"Received: augment_on={self.augment_on!r}"
            )
        in_model = self.augment if self.augment_on == "model" else None
        if self.model.augment not in (None, in_model):
            raise ConfigError(
                "`model.augment` must be None or equal `augment` with augment_on='model'; set "
                f"`augment` and `augment_on` instead. Received: augment_on={self.augment_on!r}"
            )
        object.__setattr__(self, "model", replace(self.model, augment=in_model))

    @property
    def host_augment(self) -> AugmentConfig:
        """What the tf.data reader applies to training images: ``augment`` on the host, none
        when the model's layers augment them."""
        return self.augment if self.augment_on == "host" else PRESETS["none"]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """A config.json, also one saved before the augmentation settings were stored (then
        ``augment`` is a preset name or path, and ``model.augment`` says where it ran)."""
        data = dict(data)
        data["model"] = ModelConfig(**data["model"])
        data["schedule"] = ScheduleConfig(**data["schedule"])
        data["augment"] = stored_augment(data["augment"], in_model=data["model"].augment)
        data.setdefault("augment_on", "host" if data["model"].augment is None else "model")
        for key in ("shards", "test", "folds", "fold_weights", "image_size"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        data["loss_weights"] = tuple(tuple(p) for p in data.get("loss_weights", ()))
        return cls(**data)
