"""The model's own Keras layers, serializable so a ``.keras`` file loads without Lambda."""

from __future__ import annotations

import functools
from typing import Any

from tfrec_tools.quiet import import_keras


@functools.cache
def custom_layers() -> Any:
    """The custom layers, defined on first use (they subclass keras.layers.Layer) and
    registered as serializable, so ``model.save(".keras")`` round-trips without Lambda."""
    from types import SimpleNamespace

    return SimpleNamespace(
        ImagePreprocessing=_image_preprocessing_class(),
        NumericColumns=_numeric_columns_class(),
        CategoryIndex=_category_index_class(),
    )


def _image_preprocessing_class() -> type:
    keras = import_keras()

    @keras.saving.register_keras_serializable(package="tfrec_tools")
    class ImagePreprocessing(keras.layers.Layer):
        """uint8 (or float) 0..255 pixels -> float32 as the backbone expects (PREPROCESSING)."""

        def __init__(self, mode: str = "none", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.mode = mode

        def call(self, images: Any) -> Any:
            x = keras.ops.cast(images, "float32")
            if self.mode == "none":
                return x
            return keras.applications.imagenet_utils.preprocess_input(x, mode=self.mode)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "mode": self.mode}

    return ImagePreprocessing


def _numeric_columns_class() -> type:
    keras = import_keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="tfrec_tools")
    class NumericColumns(keras.layers.Layer):
        """n float columns ``[batch]`` -> ``[batch, 2n]``: sign(x) * log1p(|x|) of the values
        with NaN/inf replaced by 0, then one 0/1 was-missing indicator per column. The log
        keeps any raw scale (ages, incomes) small without statistics of the data: the
        BatchNorm after it starts at mean 0 / variance 1, and float16 overflows at 65504."""

        def call(self, columns: list[Any]) -> Any:
            x = ops.stack([ops.reshape(ops.cast(c, "float32"), (-1,)) for c in columns], -1)
            missing = ops.logical_not(ops.isfinite(x))
            x = ops.where(missing, ops.zeros_like(x), x)
            squashed = ops.sign(x) * ops.log1p(ops.abs(x))
            return ops.concatenate([squashed, ops.cast(missing, "float32")], -1)

        def compute_output_shape(self, input_shapes: list[Any]) -> tuple:
            return (input_shapes[0][0], 2 * len(input_shapes))

    return NumericColumns


def _category_index_class() -> type:
    keras = import_keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="tfrec_tools")
    class CategoryIndex(keras.layers.Layer):
        """int codes ``[batch]`` -> int32 indices: code i -> i; missing (-1) or unknown
        (>= vocabulary_size) -> vocabulary_size, one extra row for "not known"."""

        def __init__(self, vocabulary_size: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.vocabulary_size = vocabulary_size

        def call(self, codes: Any) -> Any:
            codes = ops.reshape(ops.cast(codes, "int32"), (-1,))
            unknown = ops.logical_or(codes < 0, codes >= self.vocabulary_size)
            return ops.where(unknown, ops.full_like(codes, self.vocabulary_size), codes)

        def compute_output_shape(self, input_shape: Any) -> tuple:
            return (input_shape[0],)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "vocabulary_size": self.vocabulary_size}

    return CategoryIndex
