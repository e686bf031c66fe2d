"""The model factory: registry, heads and inputs from a manifest, one-step fits whose logged
metric names match ``monitor_for``, tabular missing values, weights files, ImageNet weights
offline, and mixed precision. CPU, 32x32 images, tiny batches."""

from __future__ import annotations

import dataclasses
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import make_dataset
from tfrec_tools.builder.config import BuildConfig, ImageConfig
from tfrec_tools.builder.run import build
from tfrec_tools.errors import ConfigError
from tfrec_tools.manifest import read_manifest
from tfrec_tools.read.augment import PRESETS
from tfrec_tools.schema import LabelSpec
from tfrec_tools.train import models
from tfrec_tools.train.models import (
    HeadSpec,
    InputSpec,
    ModelConfig,
    available_models,
    build_model,
    compile_model,
    heads_from_manifest,
    inputs_from_manifest,
    monitor_for,
)
from tfrec_tools.train.schedules import ScheduleConfig

SIZE = (32, 32)
NAMES = [
    *(f"efficientnet_b{i}" for i in range(8)),
    *(f"efficientnet_v2_{v}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")),
    "resnet50",
    "small_cnn",
]
BINARY, MULTI, REGRESSION = (
    HeadSpec("sick", "binary"),
    HeadSpec("grade", "multiclass", 3),
    HeadSpec("bmi", "regression"),
)
TABULAR = InputSpec(SIZE, numeric=("age", "score"), categorical=(("site", 3),))


def images(n: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *SIZE, 3), dtype=np.uint8)


def labels(head: HeadSpec, n: int = 8) -> np.ndarray:
    """Unbalanced on purpose: a [batch] vs [batch, 1] broadcast would change the metrics."""
    if head.kind == "regression":
        return np.linspace(-1, 2, n).astype(np.float32)
    if head.kind == "binary":
        return (np.arange(n) % 4 == 0).astype(np.int64)
    return (np.arange(n) % 4 % head.num_classes).astype(np.int64)


def tabular_x(n: int = 8) -> dict[str, np.ndarray]:
    age = np.linspace(20, 80, n).astype(np.float32)
    age[1] = np.nan
    score = np.linspace(0, 1e5, n).astype(np.float32)  # raw scale: overflows float16
    site = (np.arange(n) % 3).astype(np.int64)
    site[2], site[3] = -1, 7  # missing, and a code outside the vocabulary
    return {"image": images(n), "age": age, "score": score, "site": site}


def batch_of(y) -> int:
    return len(next(iter(y.values()))) if isinstance(y, dict) else len(y)


def fit(model, heads, x, y, *, validate: bool = True, **compile_options):
    """One step on one batch; validation (the val_ names) on the same batch."""
    compile_model(model, heads, learning_rate=1e-3, **compile_options)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_of(y))
    history = model.fit(data, validation_data=data if validate else None, epochs=1, verbose=0)
    return history.history


# -- registry and config -------------------------------------------------------------------


def test_registry_lists_every_backbone_sorted():
    assert available_models() == sorted(NAMES)


def test_unknown_model_lists_the_choices():
    with pytest.raises(ConfigError) as err:
        ModelConfig(name="effnet")
    assert str(err.value) == f"unknown model 'effnet'. Choices: {', '.join(sorted(NAMES))}"


def test_small_cnn_has_no_imagenet_weights():
    with pytest.raises(ConfigError) as err:
        ModelConfig(name="small_cnn", weights="imagenet")
    assert str(err.value) == (
        "model 'small_cnn' has no pretrained weights: `weights` must be None or a path to a "
        ".weights.h5 file. Received: weights='imagenet'"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dropout": 1.0}, "`dropout` must be in [0, 1). Received: dropout=1.0"),
        ({"tabular_units": 0}, "`tabular_units` must be >= 1. Received: tabular_units=0"),
        (
            {"weights": "model.keras"},
            "`weights` must be 'imagenet', None, or a path to a .weights.h5 file (or to a "
            "keras.applications *_notop.h5 file). Received: weights='model.keras'",
        ),
    ],
)
def test_config_rejects_bad_options(options, message):
    with pytest.raises(ConfigError) as err:
        ModelConfig(**options)
    assert str(err.value) == message


def test_weights_none_string_means_none():
    assert ModelConfig(weights="none").weights is None


def test_every_backbone_carries_training_defaults_for_both_starts():
    for name in available_models():
        entry = models.get_backbone(name)
        assert entry.scratch.lr_max > entry.fine_tune.lr_max, name  # random weights: faster
        assert entry.scratch.schedule_config().lr_max == entry.scratch.lr_max
    # fine-tuning keeps the Kaggle TPU recipe: ScheduleConfig's own defaults
    assert models.FINE_TUNE.schedule_config() == ScheduleConfig()
    assert models.get_backbone("efficientnet_b7").fine_tune.batch_size == 8


def test_weights_choose_the_training_defaults(tmp_path):
    cnn = models.get_backbone("small_cnn")
    assert (ModelConfig().start, ModelConfig().training_defaults()) == ("scratch", cnn.scratch)
    tuned = ModelConfig(weights=str(tmp_path / "mine.weights.h5"))
    assert (tuned.start, tuned.training_defaults()) == ("fine-tune", cnn.fine_tune)
    imagenet = ModelConfig("efficientnet_b0", weights="imagenet")
    assert imagenet.training_defaults() == models.FINE_TUNE
    with pytest.raises(ConfigError, match=r"`schedule` must be one of .*Received: schedule='x'"):
        models.TrainingDefaults(1e-4, 1, "x", 16)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (("y", "ordinal", 1), "`kind` of head 'y' must be one of"),
        (("y", "multiclass", 1), "multiclass head 'y' needs `num_classes` >= 2"),
        (("y", "binary", 2), "binary head 'y' has one output: `num_classes` must be 1"),
        (("y", "multilabel", 0), "multilabel head 'y' needs `num_classes` (tags) >= 1"),
        (
            ("y", "multilabel", 3, 1.0),
            "`threshold` of head 'y' must be in (0, 1). Received: threshold=1.0",
        ),
    ],
)
def test_head_spec_is_checked(head, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        HeadSpec(*head)


def test_input_spec_is_checked():
    with pytest.raises(ConfigError, match="needs an image or at least one tabular feature"):
        InputSpec(None)
    with pytest.raises(ConfigError, match=r"not 'image'. Received: \['image'\]"):
        InputSpec(SIZE, numeric=("image",))
    with pytest.raises(ConfigError, match="head names must be distinct"):
        build_model(ModelConfig(), InputSpec(SIZE, numeric=("age",)), (HeadSpec("age", "binary"),))
    with pytest.raises(ConfigError, match='name of a layer of the model .The name "fusion_dense"'):
        build_model(ModelConfig(), TABULAR, (HeadSpec("fusion_dense", "binary"),))


# -- backbones -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["small_cnn", "efficientnet_b0", "efficientnet_v2_b0", "resnet50"])
def test_backbone_builds_and_runs_on_uint8(name):
    model = build_model(ModelConfig(name=name), InputSpec(SIZE), (BINARY,))
    assert model.input.dtype == "uint8" and model.input.name == "image"
    assert tuple(model.input.shape) == (None, *SIZE, 3)
    out = model(images(2), training=False).numpy()
    assert out.shape == (2, 1) and np.all((out >= 0) & (out <= 1))


def test_augmentation_in_the_model_acts_in_training_only_and_round_trips(tmp_path):
    config = ModelConfig(augment=PRESETS["standard"])
    model = build_model(config, TABULAR, (BINARY,))
    block = model.get_layer("augmentation")
    x = images(4)
    np.testing.assert_array_equal(block(x, training=False).numpy(), x.astype(np.float32))
    assert not np.array_equal(block(x, training=True).numpy(), x.astype(np.float32))
    # what model.json stores rebuilds the same model, and its weights load back
    again = ModelConfig(**dataclasses.asdict(config))
    assert again == config
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    twin = build_model(again, TABULAR, (BINARY,))
    twin.load_weights(path)
    inputs = {"image": x, **tabular_x(4)}
    np.testing.assert_allclose(
        twin(inputs, training=False).numpy(), model(inputs, training=False).numpy(), rtol=1e-6
    )


def test_every_registry_name_wires_its_keras_application(monkeypatch):
    """Cheap: each keras.applications constructor is replaced by a recorder (building all 17
    real backbones takes minutes on CPU; see the slow test below)."""
    calls = {}

    def recorder(function):
        def fake(**kwargs):
            calls[function] = kwargs
            inputs = keras.Input(kwargs["input_shape"])
            return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))

        return fake

    functions = {f"efficientnet_b{i}": f"EfficientNetB{i}" for i in range(8)}
    variants = ("b0", "b1", "b2", "b3", "s", "m", "l")
    functions |= {f"efficientnet_v2_{v}": f"EfficientNetV2{v.upper()}" for v in variants}
    functions["resnet50"] = "ResNet50"
    for function in functions.values():
        monkeypatch.setattr(keras.applications, function, recorder(function))
    expected = {"include_top": False, "weights": None, "input_shape": (*SIZE, 3), "pooling": "avg"}
    for name, function in functions.items():
        calls.clear()
        build_model(ModelConfig(name=name), InputSpec(SIZE), (BINARY,))
        assert calls == {function: expected}, name
    assert sorted(functions) == sorted(n for n in NAMES if n != "small_cnn")
    assert models.get_backbone("resnet50").preprocessing == "caffe"
    assert {models.get_backbone(n).preprocessing for n in NAMES if n != "resnet50"} == {"none"}


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TFREC_SLOW_TESTS"), reason="set TFREC_SLOW_TESTS=1")
@pytest.mark.parametrize("name", NAMES)
def test_every_registry_name_builds_for_real(name):
    model = build_model(ModelConfig(name=name), InputSpec(SIZE), (BINARY,))
    assert model(images(1), training=False).shape == (1, 1)


def test_preprocessing_matches_what_each_backbone_expects():
    x = images(2)
    resnet = build_model(ModelConfig(name="resnet50"), InputSpec(SIZE), (BINARY,))
    caffe = resnet.get_layer("image_preprocessing")(x).numpy()
    expected = keras.applications.resnet50.preprocess_input(x.astype(np.float32))
    np.testing.assert_allclose(caffe, expected, rtol=1e-6, atol=1e-4)
    small = build_model(ModelConfig(), InputSpec(SIZE), (BINARY,))
    raw = small.get_layer("image_preprocessing")(x).numpy()
    np.testing.assert_array_equal(raw, x.astype(np.float32))  # 0..255 floats into the backbone
    rescale = small.get_layer("small_cnn_backbone").get_layer("rescaling")
    assert rescale.scale == pytest.approx(1 / 255)


def test_image_smaller_than_the_backbone_accepts_is_refused():
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(name="resnet50"), InputSpec((16, 16)), (BINARY,))
    assert str(err.value) == (
        "`image_size` must be at least 32x32 for model 'resnet50'. Received: image_size=(16, 16)"
    )


# -- from the manifest ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    image_dir, csv_path = make_dataset(root, n=12, groups=6)
    config = BuildConfig(
        images=str(image_dir),
        labels_csv=str(csv_path),
        out=str(root / "shards"),
        image=ImageConfig(size=(40, 48)),
        shards=2,
        feature_cols=("age", "site"),
        workers=1,
    )
    return read_manifest(build(config).manifest_path)


def test_heads_and_inputs_from_a_real_build(manifest):
    assert heads_from_manifest(manifest) == (HeadSpec("label", "multiclass", 3),)
    assert inputs_from_manifest(manifest) == InputSpec(
        (40, 48), numeric=("age",), categorical=(("site", 2),)
    )
    assert inputs_from_manifest(manifest, image_size=(64, 64)).image_size == (64, 64)


def test_heads_from_manifest_binary_regression_and_one_class(manifest):
    two = LabelSpec("sick", "classification", ("no", "yes"))
    edited = dataclasses.replace(manifest, labels=(two, LabelSpec("bmi", "regression")))
    assert heads_from_manifest(edited) == (
        HeadSpec("sick", "binary"),
        HeadSpec("bmi", "regression"),
    )
    tags = LabelSpec("tags", "multilabel", ("a", "b", "c", "d"))
    assert heads_from_manifest(dataclasses.replace(manifest, labels=(tags,)), threshold=0.3) == (
        HeadSpec("tags", "multilabel", 4, threshold=0.3),
    )
    one = dataclasses.replace(manifest, labels=(LabelSpec("y", "classification", ("a",)),))
    with pytest.raises(ConfigError, match="label 'y' has 1 class"):
        heads_from_manifest(one)
    with pytest.raises(ConfigError, match="hold no labels"):
        heads_from_manifest(dataclasses.replace(manifest, labels=()))


def test_inputs_from_manifest_needs_a_size_when_images_keep_theirs(manifest):
    keep = dataclasses.replace(manifest, image={**manifest.image, "size": None})
    with pytest.raises(ConfigError, match="keep each image's own size"):
        inputs_from_manifest(keep)
    assert inputs_from_manifest(keep, image_size=(32, 32)).image_size == (32, 32)


# -- heads, metrics, fits ------------------------------------------------------------------


@pytest.mark.parametrize("head", [BINARY, MULTI, REGRESSION], ids=lambda h: h.kind)
def test_one_head_fits_and_logs_the_monitored_metric(head):
    model = build_model(ModelConfig(), InputSpec(SIZE), (head,))
    x, y = images(), labels(head)
    history = fit(model, (head,), x, y)
    monitor, mode = monitor_for((head,))
    assert monitor in history and monitor[4:] in history
    assert mode == ("min" if head.kind == "regression" else "max")
    # labels are [batch], outputs [batch, k]: the validation pass (after the step, on the
    # same batch) must log what numpy computes from the outputs
    p = model(x, training=False).numpy()
    if head.kind == "binary":
        bce = -np.mean(y * np.log(p[:, 0]) + (1 - y) * np.log(1 - p[:, 0]))
        assert history["val_loss"][0] == pytest.approx(bce, rel=1e-4)
        assert history["val_accuracy"][0] == pytest.approx(np.mean((p[:, 0] > 0.5) == y))
    elif head.kind == "multiclass":
        assert p.shape == (8, 3)
        assert history["val_accuracy"][0] == pytest.approx(np.mean(p.argmax(1) == y))
    else:
        rmse = np.sqrt(np.mean((p[:, 0] - y) ** 2))
        assert history["val_rmse"][0] == pytest.approx(rmse, rel=1e-4)


def test_a_multilabel_head_fits_and_logs_f1_at_its_threshold():
    head = HeadSpec("tags", "multilabel", 4, threshold=0.45)
    model = build_model(ModelConfig(), InputSpec(SIZE), (head,))
    x = images()
    y = (np.arange(32).reshape(8, 4) % 3 == 0).astype(np.int64)  # int64 multi-hot, as read
    history = fit(model, (head,), x, y)
    assert monitor_for((head,)) == ("val_f1_micro", "max")
    assert {"val_f1_micro", "val_f1_macro", "val_auc", "f1_micro"} <= set(history)
    p = model(x, training=False).numpy()
    assert p.shape == (8, 4) and ((p > 0) & (p < 1)).all()  # sigmoids, not a softmax
    predicted, truth = p > 0.45, y.astype(bool)
    tp = (predicted & truth).sum()
    f1 = 2 * tp / (predicted.sum() + truth.sum())
    assert history["val_f1_micro"][0] == pytest.approx(f1, abs=1e-5)
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert history["val_loss"][0] == pytest.approx(bce, rel=1e-4)


def test_multi_input_multi_output_fits_with_missing_values():
    heads = (BINARY, REGRESSION)
    model = build_model(ModelConfig(), TABULAR, heads)
    assert sorted(model.input) == ["age", "image", "score", "site"]
    assert model.input["age"].dtype == "float32" and model.input["site"].dtype == "int64"
    x = tabular_x()
    y = {"sick": labels(BINARY), "bmi": labels(REGRESSION)}
    history = fit(model, heads, x, y, loss_weights={"sick": 1.0, "bmi": 0.5})
    assert {"val_loss", "val_sick_auc", "val_sick_accuracy", "val_bmi_rmse"} <= set(history)
    assert monitor_for(heads) == ("val_loss", "min")
    weighted = history["val_sick_loss"][0] + 0.5 * history["val_bmi_loss"][0]
    assert history["val_loss"][0] == pytest.approx(weighted, rel=1e-5)  # loss_weights apply
    out = model(x, training=False)
    assert sorted(out) == ["bmi", "sick"] and tuple(out["sick"].shape) == (8, 1)
    assert all(np.all(np.isfinite(v.numpy())) for v in out.values())


def test_numeric_nan_becomes_zero_plus_indicator_and_bad_codes_get_the_extra_row():
    model = build_model(ModelConfig(), TABULAR, (BINARY,))
    age = np.array([30.0, np.nan, np.inf], np.float32)
    score = np.array([1.0, 2.0, np.nan], np.float32)
    columns = model.get_layer("numeric_columns")([age, score]).numpy()
    log = np.log1p
    expected = [[log(30), log(1), 0, 0], [0, log(2), 1, 0], [0, 0, 1, 1]]
    np.testing.assert_allclose(columns, expected, rtol=1e-6)
    signed = model.get_layer("numeric_columns")([np.array([-3.0], np.float32)] * 2).numpy()
    np.testing.assert_allclose(signed, [[-np.log1p(3), -np.log1p(3), 0, 0]], rtol=1e-6)
    index = model.get_layer("site_index")(np.array([0, 2, -1, 3, 99], np.int64)).numpy()
    np.testing.assert_array_equal(index, [0, 2, 3, 3, 3])
    assert model.get_layer("site_embedding").input_dim == 4


def test_unknown_loss_weight_head_is_refused():
    model = build_model(ModelConfig(), InputSpec(SIZE), (BINARY,))
    with pytest.raises(ConfigError, match=r"names unknown heads \['target'\]"):
        compile_model(model, (BINARY,), learning_rate=1e-3, loss_weights={"target": 2.0})


def test_wide_and_deep_adds_a_linear_part_to_an_mlp():
    spec = InputSpec(None, numeric=("age", "score"), categorical=(("site", 3),))
    model = build_model(ModelConfig(tabular_units=8), spec, (MULTI,))
    assert sorted(model.input) == ["age", "score", "site"]
    x = {k: v for k, v in tabular_x().items() if k != "image"}
    history = fit(model, (MULTI,), x, labels(MULTI), validate=False)
    assert "accuracy" in history and np.isfinite(history["loss"][0])
    parts = keras.Model(
        model.input, [model.get_layer("grade_wide").output, model.get_layer("grade_deep").output]
    )
    wide, deep = (p.numpy() for p in parts(x, training=False))
    np.testing.assert_allclose(
        model(x, training=False).numpy(), tf.nn.softmax(wide + deep).numpy(), rtol=1e-5, atol=1e-6
    )
    assert model.get_layer("grade_wide").input.shape[-1] == 4 + 4  # values+flags, one-hot(3+1)


# -- weights -------------------------------------------------------------------------------


def test_whole_model_weights_round_trip(tmp_path):
    heads = (BINARY, REGRESSION)
    model = build_model(ModelConfig(), TABULAR, heads)
    rng = np.random.default_rng(0)  # every array, BatchNorm statistics too, away from its init
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) for w in model.weights])
    path = str(tmp_path / "fold0.weights.h5")
    model.save_weights(path)
    loaded = build_model(ModelConfig(weights=path), TABULAR, heads)
    for saved, got in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(saved.numpy(), got.numpy())
    x = tabular_x()
    before, after = model(x, training=False), loaded(x, training=False)
    np.testing.assert_array_equal(before["sick"].numpy(), after["sick"].numpy())
    np.testing.assert_array_equal(before["bmi"].numpy(), after["bmi"].numpy())


def test_whole_model_saves_as_keras_file_without_lambda(tmp_path):
    """The custom layers (preprocessing, NaN handling, category index) are serializable."""
    model = build_model(ModelConfig(), TABULAR, (MULTI,))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = tabular_x()
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_importing_the_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, tfrec_tools.train.models as m; "
        "assert m.available_models(); print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_backbone_weights_file_loads_into_the_backbone_only(tmp_path):
    model = build_model(ModelConfig(), InputSpec(SIZE), (MULTI,))
    backbone = model.get_layer("small_cnn_backbone")
    path = str(tmp_path / "backbone.weights.h5")
    backbone.save_weights(path)
    loaded = build_model(ModelConfig(weights=path), InputSpec(SIZE), (MULTI,))
    for saved, got in zip(backbone.weights, loaded.get_layer("small_cnn_backbone").weights):
        np.testing.assert_array_equal(saved.numpy(), got.numpy())
    head_before, head_after = model.get_layer("grade").kernel, loaded.get_layer("grade").kernel
    assert not np.allclose(head_before.numpy(), head_after.numpy())  # heads start fresh


def test_weights_file_that_fits_nothing_or_is_missing(tmp_path):
    other = build_model(ModelConfig(), InputSpec(SIZE), (BINARY, REGRESSION))
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    with pytest.raises(ConfigError, match="fit neither the model"):
        build_model(ModelConfig(weights=path), TABULAR, (BINARY,))
    missing = str(tmp_path / "nope.weights.h5")
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(weights=missing), InputSpec(SIZE), (BINARY,))
    assert str(err.value) == f"`weights` file not found: {missing}"


def test_imagenet_download_failure_is_one_config_error():
    """This machine has no network: the real keras download fails. Skip if it ever works."""
    try:
        build_model(
            ModelConfig(name="efficientnet_b0", weights="imagenet"), InputSpec(SIZE), (BINARY,)
        )
    except ConfigError as err:
        message = str(err)
    else:
        pytest.skip("the imagenet weights downloaded: this machine has network access")
    assert message.startswith("could not download the imagenet weights of 'efficientnet_b0' (")
    assert message.endswith(
        "): pass --weights none, or --weights PATH to a local .weights.h5 file "
        "(download it on a machine with internet, e.g. from keras.applications)"
    )
    assert "\n" not in message


def test_efficientnet_imagenet_statistics_give_the_same_graph_and_outputs(tmp_path, monkeypatch):
    """keras' EfficientNetB0(weights="imagenet") adds a Rescaling the weights=None graph lacks.
    With a local stand-in for the download, ours (weights=None graph, folded statistics) must
    compute what keras' imagenet graph computes, also when loaded from the *_notop.h5 file."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    from keras.src.utils import file_utils

    shape = (*SIZE, 3)
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=shape)
    (norm,) = [layer for layer in source.layers if isinstance(layer, keras.layers.Normalization)]
    norm.adapt_mean.assign([0.485, 0.456, 0.406])
    norm.adapt_variance.assign(list(models.IMAGENET_STDDEV_RGB))  # what keras' file holds
    notop = str(tmp_path / "efficientnetb0_notop.h5")
    with h5py.File(notop, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, source)
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: notop)
    reference = keras.applications.EfficientNetB0(
        include_top=False, weights="imagenet", input_shape=shape, pooling="avg"
    )
    assert rescalings(reference) == 2  # the extra layer this test is about
    x = images(2).astype(np.float32)
    expected = stem(reference)(x, training=False).numpy()
    for weights in ("imagenet", notop):
        config = ModelConfig("efficientnet_b0", weights=weights)
        backbone = build_model(config, InputSpec(SIZE), (BINARY,)).get_layer("efficientnetb0")
        assert rescalings(backbone) == 1
        got = stem(backbone)(x, training=False).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def stem(backbone):
    """The first conv's output: a random-init EfficientNet's pooled output is ~1e-6 whatever
    the input, so the comparison is made where the input normalisation still shows."""
    return keras.Model(backbone.input, backbone.get_layer("stem_conv").output)


def rescalings(model) -> int:
    return sum(isinstance(layer, keras.layers.Rescaling) for layer in model.layers)


# -- mixed precision -----------------------------------------------------------------------


@pytest.fixture
def mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.usefixtures("mixed_precision")
def test_mixed_precision_outputs_are_float32():
    heads = (BINARY, MULTI)
    model = build_model(ModelConfig(), TABULAR, heads)
    assert model.get_layer("small_cnn_backbone").get_layer("block1_conv").compute_dtype == "float16"
    x = tabular_x()  # "score" reaches 1e5: inf in float16 unless normalised in float32
    out = model(x, training=False)
    assert {k: v.dtype for k, v in out.items()} == {"sick": tf.float32, "grade": tf.float32}
    assert all(np.all(np.isfinite(v.numpy())) for v in out.values())


# -- freezing the backbone -----------------------------------------------------------------


def test_freeze_backbone_sets_which_weights_train():
    config = ModelConfig(augment=PRESETS["standard"])  # a second nested model: augmentation
    model = build_model(config, InputSpec(SIZE), (MULTI,))
    backbone = models.freeze_backbone(model, frozen=True, freeze_batchnorm=False)
    assert backbone.name == "small_cnn_backbone"
    assert {v.path for v in model.trainable_weights} == {"grade/kernel", "grade/bias"}
    models.freeze_backbone(model, frozen=False, freeze_batchnorm=True)
    convolutions = {f"block{i}_conv/kernel" for i in range(1, 5)}
    assert {v.path for v in backbone.trainable_weights} == convolutions
    assert all(not layer.trainable for layer in backbone.layers if "_bn" in layer.name)
    models.freeze_backbone(model, frozen=False, freeze_batchnorm=False)
    assert len(backbone.trainable_weights) == 4 * 3  # kernels, BatchNorm gammas and betas


def test_a_tabular_model_has_no_backbone_to_freeze():
    model = build_model(ModelConfig(), dataclasses.replace(TABULAR, image_size=None), (BINARY,))
    with pytest.raises(ConfigError, match="has no image backbone to freeze"):
        models.freeze_backbone(model, frozen=True, freeze_batchnorm=True)
