"""`tfrec build`: image folder + labels CSV -> stratified, fold-assigned shards + manifest.

The names below load on first use (PEP 562), so importing ``tfrec_tools.builder.config`` (as
``tfrec build --help`` does) does not import pandas, numpy or PIL through ``builder.run``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BuildConfig": "tfrec_tools.builder.config",
    "BuildReport": "tfrec_tools.builder.run",
    "ImageConfig": "tfrec_tools.builder.config",
    "build": "tfrec_tools.builder.run",
    "parse_size": "tfrec_tools.builder.config",
    "plan_build": "tfrec_tools.builder.run",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfrec_tools.builder' has no attribute {name!r}")
