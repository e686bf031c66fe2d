"""Where a model's starting weights come from: ImageNet downloads and weights files."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from tfrec_tools import fs
from tfrec_tools.errors import ConfigError
from tfrec_tools.train.backbones import fold_imagenet_std
from tfrec_tools.train.registry import Backbone

logger = logging.getLogger(__name__)

WEIGHTS_SUFFIXES = (".weights.h5", ".h5")
DOWNLOAD_HINT = (
    "pass --weights none, or --weights PATH to a local .weights.h5 file "
    "(download it on a machine with internet, e.g. from keras.applications)"
)


def imagenet_backbone(entry: Backbone, shape: tuple[int, int, int]) -> Any:
    """``entry``'s backbone with ImageNet weights; a failed download becomes one ConfigError."""
    try:
        return entry.build(shape, "imagenet")
    except Exception as err:  # keras.utils.get_file raises a bare Exception("URL fetch ...")
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ConfigError(
            f"could not download the imagenet weights of {entry.name!r} ({reason}): "
            + DOWNLOAD_HINT
        ) from err


def load_weights(model: Any, backbone: Any, path: str) -> None:
    """Load ``path`` into the whole model or into the backbone, whichever its arrays fit."""
    if not fs.exists(path):
        raise ConfigError(f"`weights` file not found: {path}")
    with _local_copy(path) as local:
        target = _weights_target(model, backbone, local, path)
        try:
            target.load_weights(local)
        except (ValueError, OSError, KeyError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"`weights` file {path} could not be loaded: {first}") from err
    if backbone is not None:
        fold_imagenet_std(backbone)
    logger.info("loaded %s into %s", path, "the model" if target is model else "the backbone")


def _weights_target(model: Any, backbone: Any, local: str, path: str) -> Any:
    if not path.endswith(".weights.h5"):  # keras.applications' legacy *_notop.h5 files
        if backbone is None:
            raise ConfigError(f"`weights` file {path}: a tabular-only model needs a .weights.h5")
        return backbone
    stored = _stored_shapes(local)
    if stored == _shapes(model):
        return model
    if backbone is not None and stored == _shapes(backbone):
        return backbone
    expected = f"{len(model.weights)} arrays"
    if backbone is not None:
        expected += f", or {len(backbone.weights)} for backbone {backbone.name!r}"
    raise ConfigError(
        f"`weights` file {path} holds {len(stored)} arrays that fit neither the model "
        f"({expected}): it was saved from another model, or with other heads or inputs"
    )


def _shapes(model: Any) -> list[tuple[int, ...]]:
    return sorted(tuple(int(d) for d in w.shape) for w in model.weights)


def _stored_shapes(path: str) -> list[tuple[int, ...]]:
    """The shapes of the layer arrays of a Keras 3 .weights.h5 file (not the optimizer's)."""
    import h5py

    shapes: list[tuple[int, ...]] = []
    with h5py.File(path, "r") as handle:
        if "layers" in handle:
            handle["layers"].visititems(
                lambda _, obj: (
                    shapes.append(tuple(obj.shape)) if isinstance(obj, h5py.Dataset) else None
                )
            )
    return sorted(shapes)


@contextlib.contextmanager
def _local_copy(path: str) -> Iterator[str]:
    """h5py reads local files only: a gs:// file is copied to a temporary folder first."""
    if not fs.is_remote(path):
        yield path
        return
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, os.path.basename(path))
        with open(local, "wb") as handle:
            handle.write(fs.read_bytes(path))
        yield local
