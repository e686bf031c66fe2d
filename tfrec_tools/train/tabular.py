"""The tabular branch: numeric and categorical columns, and wide-and-deep when there is no image.

A numeric NaN (or +-inf) becomes 0 plus a 0/1 was-missing indicator column (values then go
through sign(x) * log1p(|x|) and BatchNorm); a categorical code -1 (or a code outside the
vocabulary) gets its own extra embedding row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfrec_tools.train.heads import ACTIVATIONS
from tfrec_tools.train.layers import custom_layers
from tfrec_tools.train.specs import HeadSpec, InputSpec

if TYPE_CHECKING:
    from tfrec_tools.train.models import ModelConfig

DEEP_BLOCKS = 2  # wide-and-deep: two Dense-BN-ReLU-Dropout blocks, the usual tabular MLP depth
MAX_EMBEDDING = 16  # categorical embeddings: fastai's 1.6 * n**0.56 rule, capped small


@dataclass(frozen=True)
class Tabular:
    """The tabular inputs as [batch, k] blocks: ``deep`` (numeric + embeddings) feeds MLPs,
    ``wide`` (numeric + one-hot categories) feeds the linear part of wide-and-deep."""

    deep: list[Any]
    wide: list[Any]


def tabular_columns(keras: Any, inputs: InputSpec, tensors: dict[str, Any]) -> Tabular:
    layers, custom = keras.layers, custom_layers()
    deep, wide = [], []
    if inputs.numeric:
        values = custom.NumericColumns(dtype="float32", name="numeric_columns")(
            [tensors[n] for n in inputs.numeric]
        )
        values = layers.BatchNormalization(name="numeric_norm")(values)
        deep.append(values)
        wide.append(values)
    for name, size in inputs.categorical:
        index = custom.CategoryIndex(size, name=f"{name}_index")(tensors[name])
        dim = min(MAX_EMBEDDING, max(2, round(1.6 * (size + 1) ** 0.56)))
        deep.append(layers.Embedding(size + 1, dim, name=f"{name}_embedding")(index))
        wide.append(
            layers.CategoryEncoding(size + 1, output_mode="one_hot", name=f"{name}_one_hot")(index)
        )
    return Tabular(deep, wide)


def wide_and_deep(
    keras: Any, config: ModelConfig, heads: tuple[HeadSpec, ...], tabular: Tabular
) -> dict[str, Any]:
    """Per head: activation(linear(wide inputs) + linear(deep MLP)), the functional-API
    equivalent of the Keras 2 WideDeepModel."""
    layers = keras.layers
    deep = concat(keras, tabular.deep, "deep_concat")
    for i in range(1, DEEP_BLOCKS + 1):
        deep = layers.Dense(config.tabular_units, use_bias=False, name=f"deep_dense{i}")(deep)
        deep = layers.BatchNormalization(name=f"deep_norm{i}")(deep)
        deep = layers.ReLU(name=f"deep_relu{i}")(deep)
        deep = layers.Dropout(config.dropout, name=f"deep_dropout{i}")(deep)
    wide = concat(keras, tabular.wide, "wide_concat")
    outputs = {}
    for head in heads:
        units = head.num_classes
        parts = [
            layers.Dense(units, dtype="float32", name=f"{head.name}_wide")(wide),
            layers.Dense(units, dtype="float32", name=f"{head.name}_deep")(deep),
        ]
        logits = layers.Add(dtype="float32", name=f"{head.name}_logits")(parts)
        outputs[head.name] = layers.Activation(
            ACTIVATIONS[head.kind], dtype="float32", name=head.name
        )(logits)
    return outputs


def concat(keras: Any, tensors: list[Any], name: str) -> Any:
    """One tensor stays as it is; several are concatenated by a layer called ``name``."""
    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name=name)(tensors)
