"""tfrec_tools.read.augment_ops: shapes inside Dataset.map, seeding, geometry on non-square
images, colour and cutout."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from tests.read.test_augment import OFF, SINGLE_OPS
from tfrec_tools.errors import ConfigError, DataError
from tfrec_tools.read.augment import FILL_MODES, PRESETS, AugmentConfig
from tfrec_tools.read.augment_ops import (
    Affine,
    affine_transform,
    augment_image,
    random_affine,
    transform_vector,
)


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def run_augment(image: np.ndarray, config: AugmentConfig, seed=(1, 2)) -> np.ndarray:
    return augment_image(tf.constant(image), config, tf.constant(seed, tf.int64)).numpy()


# ---- shapes, dtypes and seeding ------------------------------------------------------------


@pytest.mark.parametrize("name", SINGLE_OPS)
def test_every_op_keeps_dtype_and_shape_inside_dataset_map(name):
    config = SINGLE_OPS[name]
    assert config.enabled
    sizes = [(24, 40), (36, 20), (32, 32)]  # unknown static sizes: the decode path's case
    dataset = tf.data.Dataset.from_generator(
        lambda: (noise(h, w, i) for i, (h, w) in enumerate(sizes)),
        output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    )
    mapped = dataset.enumerate().map(lambda i, x: augment_image(x, config, tf.stack([i, i])))
    assert mapped.element_spec == tf.TensorSpec([None, None, 3], tf.uint8)
    assert [tuple(x.shape) for x in mapped.as_numpy_iterator()] == [(h, w, 3) for h, w in sizes]
    static = tf.data.Dataset.from_tensors(noise(24, 40)).map(
        lambda x: augment_image(x, config, tf.constant([3, 4], tf.int32))
    )
    assert static.element_spec == tf.TensorSpec([24, 40, 3], tf.uint8)


def test_same_seed_same_output_in_eager_and_graph_mode():
    image, config = noise(24, 40), PRESETS["standard"]
    eager = run_augment(image, config, (7, 9))
    graph = next(
        tf.data.Dataset.from_tensors(image)
        .map(lambda x: augment_image(x, config, tf.constant([7, 9], tf.int32)))
        .as_numpy_iterator()
    )
    np.testing.assert_array_equal(eager, run_augment(image, config, (7, 9)))
    np.testing.assert_array_equal(eager, graph)


def test_different_seeds_give_different_outputs():
    image, config = noise(24, 40), PRESETS["standard"]
    outputs = [run_augment(image, config, (0, i)).tobytes() for i in range(6)]
    assert len(set(outputs)) == 6


def test_switching_one_op_on_leaves_the_draws_of_the_others_alone():
    image = noise(24, 40)
    alone = run_augment(image, SINGLE_OPS["flip_up_down"], (5, 5))
    with_brightness = replace(SINGLE_OPS["flip_up_down"], brightness=1e-9)
    np.testing.assert_array_equal(alone, run_augment(image, with_brightness, (5, 5)))


def test_disabled_config_returns_the_image_unchanged():
    image = noise(20, 30)
    assert not AugmentConfig(fill_mode="wrap", cutout_count=4).enabled
    np.testing.assert_array_equal(run_augment(image, AugmentConfig(cutout_count=4)), image)


def test_bad_image_or_seed_raise_typed_errors():
    with pytest.raises(DataError) as info:
        augment_image(tf.zeros([8, 8, 3], tf.float32), OFF, tf.constant([1, 2]))
    assert str(info.value) == (
        "`image` must be a uint8 tensor of shape [H, W, 3]. "
        "Received: dtype=float32, shape=(8, 8, 3)"
    )
    with pytest.raises(ConfigError, match=r"`seed` must be an int32 or int64 tensor of shape"):
        augment_image(tf.zeros([8, 8, 3], tf.uint8), SINGLE_OPS["hue"], tf.constant([1, 2, 3]))


# ---- flips and geometry --------------------------------------------------------------------


def test_flip_left_right_mirrors_the_image_or_leaves_it():
    image = noise(20, 30)
    outcomes = []
    for i in range(12):
        out = run_augment(image, SINGLE_OPS["flip_left_right"], (i, 0))
        if np.array_equal(out, image):
            outcomes.append("kept")
        else:
            np.testing.assert_array_equal(out, image[:, ::-1])
            outcomes.append("mirrored")
    assert set(outcomes) == {"kept", "mirrored"}


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_flips_folded_into_the_affine_equal_flipping_first(fill_mode):
    """augment_image mirrors the gather's source indices; the result must be pixel for pixel
    tf.image's stateless flips (same seed slots) followed by the affine transform."""
    config = replace(OFF, flip_left_right=True, flip_up_down=True, rotation=15.0, shift=0.1)
    config = replace(config, fill_mode=fill_mode)
    image = noise(21, 34)
    outcomes = set()
    for i in range(12):
        seed = tf.constant((i, 7), tf.int64)
        seeds = tf.random.experimental.stateless_split(seed, num=8)  # the _SLOTS order
        flipped = tf.image.stateless_random_flip_left_right(tf.constant(image), seeds[0])
        flipped = tf.image.stateless_random_flip_up_down(flipped, seeds[1])
        expected = affine_transform(flipped, random_affine(config, seeds[2]), fill_mode=fill_mode)
        np.testing.assert_array_equal(augment_image(tf.constant(image), config, seed), expected)
        outcomes.add(
            tuple(
                np.array_equal(flipped.numpy()[::a, ::b], image) for a in (-1, 1) for b in (-1, 1)
            )
        )
    assert len(outcomes) == 4  # every combination of the two flips happened


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_identity_affine_is_the_identity(fill_mode):
    image = noise(20, 33)
    np.testing.assert_array_equal(affine_transform(image, Affine(), fill_mode=fill_mode), image)
    zero = random_affine(OFF, tf.constant([4, 2], tf.int64))  # every std 0: identity draws
    np.testing.assert_array_equal(affine_transform(image, zero, fill_mode=fill_mode), image)


def test_shift_moves_a_bright_pixel_down_and_left_on_a_non_square_image():
    image = np.zeros((20, 32, 3), np.uint8)
    image[5, 10] = 255
    out = affine_transform(image, Affine(shift_y=0.25, shift_x=-0.125), fill_mode="constant")
    assert np.argwhere(out.numpy()[..., 0] == 255).tolist() == [[10, 6]]  # +5 rows, -4 cols


def test_positive_rotation_turns_counter_clockwise():
    image = np.zeros((21, 21, 3), np.uint8)
    image[10, 16] = 255  # right of the centre (10, 10)
    out = affine_transform(image, Affine(rotation=90.0), fill_mode="constant")
    assert np.argwhere(out.numpy()[..., 0] == 255).tolist() == [[4, 10]]  # above the centre


@pytest.mark.parametrize(
    ("fill_mode", "left_columns"),
    [
        ("constant", lambda img: np.zeros_like(img[:, :8])),
        ("nearest", lambda img: np.repeat(img[:, :1], 8, axis=1)),
        ("reflect", lambda img: img[:, 7::-1]),
        ("wrap", lambda img: img[:, -8:]),
    ],
)
def test_fill_modes_fill_the_uncovered_side(fill_mode, left_columns):
    image = noise(20, 32)
    out = affine_transform(image, Affine(shift_x=0.25), fill_mode=fill_mode).numpy()
    np.testing.assert_array_equal(out[:, 8:], image[:, :-8])
    np.testing.assert_array_equal(out[:, :8], left_columns(image))


def test_random_shift_moves_along_the_right_axes():
    """std 0.2 of a 20 x 48 image: |dy| <= 8 rows, |dx| <= 19 cols; a row/column mix-up would
    cap |dx| at 8."""
    image = np.zeros((20, 48, 3), np.uint8)
    image[10, 24] = 255
    moves = []
    for i in range(30):
        out = run_augment(image, replace(OFF, shift=0.2, fill_mode="constant"), (i, 1))
        found = np.argwhere(out[..., 0] == 255)
        if len(found):
            (row, col), *_ = found
            moves.append((row - 10, col - 24))
    assert len(moves) >= 25
    assert max(abs(dy) for dy, _ in moves) <= 8
    assert max(abs(dx) for _, dx in moves) > 8


@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "reflect"])
def test_gather_matches_image_projective_transform(fill_mode):
    """Same matrix, nearest sampling: TF's own op must agree pixel for pixel. (Its "wrap"
    wraps with period size - 1, so it is checked by the shift test above instead.)"""
    image = noise(24, 40)
    config = AugmentConfig(rotation=20, shear=8, zoom=0.2, shift=0.1)
    for i in range(5):
        affine = random_affine(config, tf.constant([i, 7], tf.int64))
        ours = affine_transform(image, affine, fill_mode=fill_mode)
        theirs = tf.raw_ops.ImageProjectiveTransformV3(
            images=image[None],
            transforms=transform_vector(affine, 24, 40)[None],
            output_shape=[24, 40],
            fill_value=0.0,
            interpolation="NEAREST",
            fill_mode=fill_mode.upper(),
        )[0]
        assert np.mean(np.all(ours.numpy() == theirs.numpy(), axis=-1)) > 0.99


# ---- colour and cutout ---------------------------------------------------------------------


def test_neutral_colour_ranges_round_trip_within_one_level():
    image = noise(16, 24)
    config = replace(OFF, saturation=(1.0, 1.0), contrast=(1.0, 1.0))
    out = run_augment(image, config).astype(int)
    assert np.abs(out - image).max() <= 1


def test_saturation_zero_is_the_luma_grey_and_keeps_the_grey_level():
    image = noise(16, 24)
    grey = run_augment(image, replace(OFF, saturation=(0.0, 0.0))).astype(float)
    luma = image.astype(float) @ [0.299, 0.587, 0.114]
    for channel in range(3):
        assert np.abs(grey[..., channel] - luma).max() <= 0.5 + 1e-3
    strong = run_augment(image, replace(OFF, saturation=(2.0, 2.0))).astype(float)
    inside = np.all((strong > 0) & (strong < 255), axis=-1)  # not clipped
    assert np.abs((strong @ [0.299, 0.587, 0.114]) - luma)[inside].max() <= 1.0


def test_contrast_scales_each_channel_about_its_mean():
    image = noise(16, 24).astype(np.uint8) // 2 + 64  # 64..191: no clipping at 1.5x
    for factor in (0.5, 1.5):
        out = run_augment(image, replace(OFF, contrast=(factor, factor))).astype(float)
        mean = image.reshape(-1, 3).mean(axis=0)
        expected = mean + factor * (image - mean)
        assert np.abs(out - expected).max() <= 0.5 + 1e-3


def test_brightness_shifts_every_pixel_by_one_delta():
    image = np.full((16, 24, 3), 128, np.uint8)
    image[:, :12] = 100
    deltas = set()
    for i in range(8):
        shift = run_augment(image, SINGLE_OPS["brightness"], (i, 3)).astype(int) - image
        assert len(np.unique(shift)) == 1  # one delta for the whole image
        deltas.add(int(shift[0, 0, 0]))
    assert len(deltas) > 1 and max(abs(d) for d in deltas) <= 26  # 0.1 * 255, rounded


def test_cutout_with_probability_1_zeroes_the_expected_fraction():
    """3 squares of side 10 on 40 x 40, centres uniform: 15.5% zeroed on average (by simulation
    of the same rule), at most 3 * 100 / 1600."""
    image = np.full((40, 40, 3), 200, np.uint8)
    config = replace(OFF, cutout_count=3, cutout_size=0.25, cutout_probability=1.0)
    fractions = []
    for i in range(20):
        out = run_augment(image, config, (i, 9))
        zero = np.all(out == 0, axis=-1)
        assert np.all(zero | np.all(out == 200, axis=-1))  # whole pixels, nothing else touched
        fractions.append(zero.mean())
    assert min(fractions) > 0 and max(fractions) <= 3 * 100 / 1600
    assert 0.12 < np.mean(fractions) < 0.19


def test_cutout_squares_use_the_shorter_side_and_the_probability():
    image = np.full((20, 60, 3), 200, np.uint8)
    one = replace(OFF, cutout_count=1, cutout_size=0.5, cutout_probability=1.0)
    zeroed = [np.all(run_augment(image, one, (i, 0)) == 0, axis=-1) for i in range(10)]
    assert max(z.sum() for z in zeroed) == 100  # a 10 x 10 square when fully inside
    half = replace(one, cutout_probability=0.5)
    touched = [(run_augment(image, half, (i, 0)) == 0).any() for i in range(30)]
    assert 5 < sum(touched) < 25
