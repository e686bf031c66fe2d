"""tfrec-tools: image folder + CSV -> sharded TFRecords, and the Keras side that trains on them.

Heavy modules (TensorFlow, pandas) load on first use, so ``import tfrec_tools`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "build": "tfrec_tools.builder.run",
    "plan_build": "tfrec_tools.builder.run",
    "BuildConfig": "tfrec_tools.builder.config",
    "BuildReport": "tfrec_tools.builder.run",
    "ImageConfig": "tfrec_tools.builder.config",
    "count_data_items": "tfrec_tools.naming",
    "get_dataset": "tfrec_tools.read.pipeline",
    "ReadConfig": "tfrec_tools.read.pipeline",
    "RecordKeys": "tfrec_tools.read.parse",
    "AugmentConfig": "tfrec_tools.read.augment",
    "augment_config": "tfrec_tools.read.augment",
    "inspect_shards": "tfrec_tools.validate",
    "InspectConfig": "tfrec_tools.validate",
    "run_training": "tfrec_tools.train.run",
    "TrainConfig": "tfrec_tools.train.config",
    "ModelConfig": "tfrec_tools.train.models",
    "ScheduleConfig": "tfrec_tools.train.schedules",
    "predict": "tfrec_tools.train.predict",
    "read_manifest": "tfrec_tools.manifest",
    "Manifest": "tfrec_tools.manifest",
    "TfrecError": "tfrec_tools.errors",
    "ConfigError": "tfrec_tools.errors",
    "DataError": "tfrec_tools.errors",
    "ShardError": "tfrec_tools.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfrec_tools' has no attribute {name!r}")
