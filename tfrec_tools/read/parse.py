"""What to parse and how to decode: record keys (from the manifest, given, or guessed), the
parse spec, and JPEG/PNG bytes -> a uint8 ``[H, W, 3]`` image of static shape.

Keys are resolved in this order:

1. explicit ``RecordKeys`` (checked against the manifest schema or the shards' first records);
2. the manifest beside the shards: ``image``, ``image_id``, its label and feature columns;
3. for foreign shards (no manifest), a guess from the first record of the first shard
   (``probe_schema``), made by ``record_keys.guess_key`` as `tfrec inspect` makes it: the image
   is the first bytes key among ``IMAGE_KEYS``, the id the first key among ``ID_KEYS`` (bytes
   or int64; None when there is none), the label the first numeric key among ``LABEL_KEYS``
   (at most one; no label means unlabeled).
   Tabular feature keys are never guessed. Every foreign shard's first record is then checked
   to hold the resolved keys, so a test shard mixed into a train set fails at construction.

Only the first record of each shard is checked. A record further in that lacks a key, or a
corrupt file, fails at iteration time with TensorFlow's own error (InvalidArgumentError,
DataLossError); ``tfrec inspect`` is the tool that reads every record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfrec_tools import schema as schema_module
from tfrec_tools.errors import ConfigError, ShardError
from tfrec_tools.manifest import Manifest
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.record_keys import IMAGE_KEYS, guess_key, probe_schema
from tfrec_tools.schema import FeatureSpec, Schema

if TYPE_CHECKING:
    import tensorflow as tf

IMAGE_INPUT = "image"  # the key of the image in a multi-input dict ``x``
CHANNELS = 3


@dataclass(frozen=True)
class RecordKeys:
    """The record keys to read: the encoded image, the id (None: the records have none), the
    label keys (empty: unlabeled) and the tabular feature keys (model inputs beside the image)."""

    image: str = schema_module.IMAGE
    id: str | None = schema_module.IMAGE_ID
    labels: tuple[str, ...] = ()
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = self.names
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"`keys` must name each record key once. Received twice: {repeated}")
        if IMAGE_INPUT in self.features:
            raise ConfigError(
                f"`keys.features` cannot hold {IMAGE_INPUT!r}: that name is taken by the image "
                f"in the model's input dict. Received: features={self.features}"
            )

    @property
    def names(self) -> tuple[str, ...]:
        ids = (self.id,) if self.id else ()
        return (self.image, *ids, *self.labels, *self.features)


@dataclass(frozen=True)
class RecordFormat:
    """Everything the pipeline needs to parse and decode records of one shard set."""

    keys: RecordKeys
    schema: Schema  # the specs of ``keys.names`` only, in that order
    image_format: str | None  # "jpeg" when the manifest says so; None: sniff PNG/JPEG/...
    stored_size: tuple[int, int] | None  # (h, w) every stored image has, when known
    size: tuple[int, int]  # (h, w) of the decoded images
    resize: bool  # False: images are checked to be `size`, never resized


def resolve_format(
    files: Sequence[str],
    manifest: Manifest | None = None,
    keys: RecordKeys | None = None,
    image_size: tuple[int, int] | None = None,
) -> RecordFormat:
    """The keys, parse schema and decode plan for ``files``.

    Args:
        files: shard paths (non-empty, as ``resolve_files`` returns them).
        manifest: the shards' manifest, or None for foreign shards.
        keys: explicit keys, or None to take them from the manifest or guess them.
        image_size: (h, w) to resize to; None keeps the stored size (from the manifest, else
            the size of the first image, which every other image must then have).

    Raises:
        ConfigError: an explicit key is missing from the shards.
        ShardError: no image key can be guessed, or a shard lacks a resolved key.
    """
    full, keys = _resolve_keys(files, manifest, keys)
    stored = _stored_size(manifest)
    if manifest is not None and stored is None and image_size is None:
        raise ConfigError(
            f"{files[0]}: the manifest stores images at their own sizes (fit='keep'), so a "
            "batch needs `image_size`. Received: image_size=None; pass image_size=(h, w)"
        )
    size = image_size or stored or probe_image_size(files[0], keys.image)
    return RecordFormat(
        keys=keys,
        schema=Schema(tuple(_spec(full, name) for name in keys.names)),
        image_format=_image_format(manifest),
        stored_size=stored,
        size=tuple(size),
        resize=image_size is not None,
    )


def _resolve_keys(
    files: Sequence[str], manifest: Manifest | None, keys: RecordKeys | None
) -> tuple[Schema, RecordKeys]:
    """The full schema of the records and the checked keys to read."""
    given = keys is not None
    if manifest is not None:
        keys = keys or keys_from_manifest(manifest)
        check_keys(keys, manifest.schema, files[0], given=given)
        return manifest.schema, keys
    full = probe_schema(files[0])
    keys = keys or guess_keys(full, files[0])
    check_keys(keys, full, files[0], given=given)
    # One small read per file (a round trip each on gs://): cheap next to a mixed-up set.
    for path in files[1:]:
        check_keys(keys, probe_schema(path), path, given=False)
    return full, keys


def keys_from_manifest(manifest: Manifest) -> RecordKeys:
    """Our own shards: ``image``, ``image_id``, every label and feature column."""
    return RecordKeys(
        image=schema_module.IMAGE,
        id=schema_module.IMAGE_ID,
        labels=tuple(label.name for label in manifest.labels),
        features=tuple(column.name for column in manifest.features),
    )


def guess_keys(schema: Schema, path: str) -> RecordKeys:
    """Keys of a foreign shard from the names of its first record (see the module docstring).

    Raises:
        ShardError: no bytes key has one of the ``IMAGE_KEYS`` names.
    """
    kinds = {spec.name: spec.dtype for spec in schema.features}
    image = guess_key("image", kinds)
    if image is None:
        raise ShardError(
            f"{path}: no image key found (looked for a bytes key named one of "
            f"{', '.join(IMAGE_KEYS)}; the shard has: {_listing(schema)}); "
            "name it with RecordKeys(image=...)"
        )
    label = guess_key("label", kinds)
    return RecordKeys(image=image, id=guess_key("id", kinds), labels=(label,) if label else ())


def check_keys(keys: RecordKeys, schema: Schema, where: str, *, given: bool) -> None:
    """Every key is in ``schema``, the image as bytes.

    Raises:
        ConfigError: when ``given`` (the caller named the keys), else ShardError.
    """
    error = ConfigError if given else ShardError
    kinds = {spec.name: spec.dtype for spec in schema.features}
    missing = [name for name in keys.names if name not in kinds]
    if missing:
        raise error(
            f"{where}: record key {missing[0]!r} not found (the shard has: {_listing(schema)})"
        )
    if kinds[keys.image] != "bytes":
        raise error(
            f"{where}: image key {keys.image!r} must hold bytes. "
            f"Received: {kinds[keys.image]} (the shard has: {_listing(schema)})"
        )


def probe_image_size(path: str, image_key: str) -> tuple[int, int]:
    """(h, w) of the image in the first record of ``path``.

    Raises:
        ShardError: the record cannot be read or its image cannot be decoded.
    """
    tf = import_tensorflow()
    spec = {image_key: tf.io.FixedLenFeature([], tf.string)}
    try:
        raw = next(iter(tf.data.TFRecordDataset(path).take(1)))
        data = tf.io.parse_single_example(raw, spec)[image_key]
        shape = tf.shape(tf.io.decode_image(data, channels=CHANNELS, expand_animations=False))
    except tf.errors.OpError as err:
        raise ShardError(f"{path}: cannot decode the first image ({err.message})") from err
    return int(shape[0]), int(shape[1])


def parse_spec(fmt: RecordFormat) -> dict[str, Any]:
    """The ``tf.io.parse_example`` spec of the keys to read: fixed-length features with the
    schema's shapes, so a multi-hot label (shape ``[tags]`` in the manifest) parses with the
    batch as one ``[batch, tags]`` int64 tensor."""
    return schema_module.parse_features(fmt.schema)


def parse_record(serialized: tf.Tensor, fmt: RecordFormat) -> dict[str, tf.Tensor]:
    """One serialized ``tf.train.Example`` -> ``{key: tensor}`` (for ``Dataset.map``)."""
    tf = import_tensorflow()
    return tf.io.parse_single_example(serialized, parse_spec(fmt))


def parse_batch(serialized: tf.Tensor, fmt: RecordFormat) -> dict[str, tf.Tensor]:
    """A vector of serialized examples -> ``{key: tensor [n, ...]}`` (for ``Dataset.map``)."""
    tf = import_tensorflow()
    return tf.io.parse_example(serialized, parse_spec(fmt))


def decode_image(data: tf.Tensor, fmt: RecordFormat) -> tf.Tensor:
    """Encoded bytes -> uint8 ``[h, w, 3]`` with the static shape ``fmt.size``.

    ``decode_jpeg`` when the manifest says JPEG (faster: no format sniffing), else
    ``decode_image`` (JPEG, PNG, GIF's first frame, BMP). Images are resized (bilinear,
    antialiased, rounded back to uint8) when ``fmt.resize`` and their size differs.
    """
    tf = import_tensorflow()
    if fmt.image_format == "jpeg":
        image = tf.io.decode_jpeg(data, channels=CHANNELS)
    else:
        image = tf.io.decode_image(data, channels=CHANNELS, expand_animations=False)
    height, width = fmt.size
    if fmt.resize and fmt.stored_size != fmt.size:
        image = _resize_if_needed(image, fmt.size, always=fmt.stored_size is not None)
    elif fmt.stored_size is None:
        image = _check_size(image, fmt.size)
    return tf.ensure_shape(image, [height, width, CHANNELS])


def _resize_if_needed(image: tf.Tensor, size: tuple[int, int], *, always: bool) -> tf.Tensor:
    tf = import_tensorflow()

    def resize() -> tf.Tensor:
        resized = tf.image.resize(image, size, method="bilinear", antialias=True)
        return tf.saturate_cast(tf.round(resized), tf.uint8)

    if always:
        return resize()
    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
    return tf.cond(same, lambda: image, resize)


def _check_size(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Foreign images with no size asked for must all have the first image's size."""
    tf = import_tensorflow()
    check = tf.debugging.assert_equal(
        tf.shape(image)[:2],
        tf.constant(size),
        message=(
            f"an image differs from the first image's size {size[0]}x{size[1]}; "
            "pass ReadConfig(image_size=(h, w)) to resize every image"
        ),
    )
    with tf.control_dependencies([check]):
        return tf.identity(image)


def _stored_size(manifest: Manifest | None) -> tuple[int, int] | None:
    size = manifest.image.get("size") if manifest else None
    return (int(size[0]), int(size[1])) if size else None


def _image_format(manifest: Manifest | None) -> str | None:
    return manifest.image.get("format") if manifest else None


def _spec(schema: Schema, name: str) -> FeatureSpec:
    return next(spec for spec in schema.features if spec.name == name)


def _listing(schema: Schema) -> str:
    return ", ".join(f"{spec.name} ({spec.dtype})" for spec in schema.features) or "no keys"
