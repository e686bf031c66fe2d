"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.helpers import make_dataset  # noqa: E402


@pytest.fixture
def dataset(tmp_path: Path):
    return make_dataset(tmp_path)
