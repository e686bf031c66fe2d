from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tfrec_tools.errors import ConfigError
from tfrec_tools.train.lr_find import (
    BETA,
    LrFindConfig,
    LrFindResult,
    RangeRecorder,
    Suggestion,
    lr_range,
    range_note,
    require_suggestion,
    save_lr_find,
    suggest,
    suggestion_line,
    valley_index,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = 100


def recorded(losses, lrs=None) -> RangeRecorder:
    """A recorder fed ``losses`` until it says stop."""
    lrs = lr_range(1e-7, 10, len(losses)) if lrs is None else lrs
    recorder = RangeRecorder()
    for lr, loss in zip(lrs, losses):
        if recorder.record(lr, loss):
            break
    return recorder


def u_curve(*, noise: float = 0.0, seed: int = 0, second_dip: bool = False) -> np.ndarray:
    """Batch losses of a range test from 1e-7 to 10 in STEPS steps: flat at 2.3 up to 1e-4,
    falling to 0.3 at 3e-2, rising after it (with a second, shallower dip at ~1 if asked)."""
    x = np.log10(lr_range(1e-7, 10, STEPS))
    loss = np.where(x < -4, 2.3, 2.3 - 2.0 * (x + 4) / 2.5)
    rising = x > -1.5
    loss[rising] = 0.3 + 1.5 * (x[rising] + 1.5) ** 2
    if second_dip:
        loss -= 1.4 * np.exp(-(((x - 0.0) / 0.15) ** 2))
    return loss + noise * np.random.default_rng(seed).standard_normal(STEPS)


def smoothed_minimum_lr(recorder: RangeRecorder) -> float:
    return recorder.lrs[int(np.nanargmin(recorder.smoothed))]


# -- schedule and smoothing ------------------------------------------------------------------


def test_lr_range_grows_exponentially_from_start_to_end():
    lrs = lr_range(1e-7, 10, 101)
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(10)
    ratios = lrs[1:] / lrs[:-1]
    assert np.allclose(ratios, 10 ** (8 / 100))


def test_smoothing_is_a_bias_corrected_moving_average():
    recorder = recorded([1.0, 2.0, 3.0])
    first = 1.0  # (0.02 * 1) / (1 - 0.98)
    second = (BETA * 0.02 + 0.02 * 2) / (1 - BETA**2)
    third = (BETA * (BETA * 0.02 + 0.02 * 2) + 0.02 * 3) / (1 - BETA**3)
    assert recorder.smoothed == pytest.approx([first, second, third])
    assert recorder.losses == [1.0, 2.0, 3.0]


def test_a_constant_loss_stays_constant_after_bias_correction():
    assert recorded([0.7] * 20).smoothed == pytest.approx([0.7] * 20)


def test_the_test_stops_when_the_smoothed_loss_exceeds_four_times_its_best():
    losses = [1.0] * 20 + [1000.0] * 20
    recorder = recorded(losses)
    best = min(recorder.smoothed)
    assert recorder.stopped_early
    assert recorder.smoothed[-1] > 4 * best
    assert all(s <= 4 * best for s in recorder.smoothed[:-1])  # not one step earlier
    assert len(recorder.losses) < len(losses)


def test_the_test_runs_to_the_end_while_the_loss_stays_below_four_times_its_best():
    recorder = recorded([1.0, 0.5, 0.25, 0.5, 0.9])
    assert not recorder.stopped_early and len(recorder.losses) == 5


def test_a_lucky_first_batch_does_not_count_as_the_best_while_the_average_settles():
    losses = [0.1, 1.0, 1.0, 1.0]  # 4 x 0.1 would stop at the second batch
    assert recorded(losses).stopped_early
    recorder = RangeRecorder(settle=2)
    assert not any(recorder.record(1e-5, loss) for loss in losses)


def test_the_test_stops_on_a_nan_loss():
    recorder = recorded([1.0, 0.9, math.nan, 0.8])
    assert recorder.stopped_early and len(recorder.losses) == 3


# -- the suggestion rule ---------------------------------------------------------------------


def test_valley_index_is_fastais_midpoint_of_the_longest_decreasing_run():
    # 10 falling points: run of 10 ending at 9, taken to start at -1; -1 + 3 + 1 = 3
    assert valley_index(np.linspace(5, 1, 10)) == 3
    # flat, then 7 falling points (a run of 8 with the last flat one), then rising
    losses = [3.0] * 5 + [2.5, 2.0, 1.5, 1.0, 0.8, 0.6, 0.5] + [0.9, 2.0]
    assert valley_index(losses) == 6  # end 11, start 3; 3 + int(8/3) + int(8/3/2)
    assert valley_index([1.0]) is None


@pytest.mark.parametrize("seed", range(5))
def test_suggestion_on_a_u_shaped_curve_is_on_the_descending_part(seed):
    recorder = recorded(u_curve(noise=0.3, seed=seed))
    found = suggest(recorder.lrs, recorder.smoothed, global_batch=16, skip=STEPS // 10)
    assert found is not None
    assert 1e-4 < found.lr < smoothed_minimum_lr(recorder)
    slope = np.gradient(np.asarray(recorder.smoothed), np.log10(recorder.lrs))
    assert slope[found.index] < 0


def test_a_second_dip_after_the_minimum_does_not_move_the_suggestion_onto_it():
    recorder = recorded(u_curve(second_dip=True))
    found = suggest(recorder.lrs, recorder.smoothed, global_batch=1, skip=STEPS // 10)
    assert found.lr < smoothed_minimum_lr(recorder) / 10


def test_the_rule_skips_the_first_tenth_and_stops_at_the_first_nan():
    smoothed = [0.1] + [2.0, 1.5, 1.0, 0.5, math.nan, 0.01]
    lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    found = suggest(lrs, smoothed, global_batch=2, skip=1)  # the 0.1 is skipped
    assert found == Suggestion(lrs[1], 1, 2)  # run of 4 ending at index 3 of the slice


def test_no_suggestion_when_the_loss_never_falls():
    lrs = lr_range(1e-7, 10, 20)
    rising = np.linspace(1, 3, 20)
    assert suggest(lrs, rising, global_batch=8, skip=2) is None
    result = LrFindResult(
        LrFindConfig(("x",), steps=20), 8, tuple(lrs), tuple(rising), tuple(rising), False, None
    )
    with pytest.raises(ConfigError) as err:
        require_suggestion(result)
    assert str(err.value) == (
        "lr-find: the smoothed loss never fell over 20 steps (lr 1e-07 to 10): "
        "lower --lr-start, raise --steps, or raise --batch-size if the batch losses are noisy"
    )


def test_the_suggestion_is_converted_to_a_rate_per_sample_of_the_global_batch():
    suggestion = Suggestion(lr=2e-3, index=0, global_batch=24)
    assert suggestion.lr_max == pytest.approx(2e-3 / 24)
    assert suggestion_line(suggestion) == (
        "suggested --lr-max 8.3e-05 (peak 0.002 at global batch 24)"
    )


def test_range_note_when_the_loss_still_fell_at_lr_end():
    lrs = tuple(lr_range(1e-5, 1e-3, 10))
    falling = tuple(np.linspace(2, 1, 10))
    result = LrFindResult(LrFindConfig(("x",)), 4, lrs, falling, falling, False, None)
    assert range_note(result) == (
        "the loss was still falling at the last lr (0.001): raise --lr-end to see where it diverges"
    )
    diverged = LrFindResult(LrFindConfig(("x",)), 4, lrs, falling, falling, True, None)
    assert range_note(diverged) is None


# -- config and outputs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(steps=5), "`steps` must be >= 10. Received: steps=5"),
        (dict(lr_start=0.0), "`lr_start` must be > 0. Received: lr_start=0.0"),
        (dict(lr_end=1e-8), "`lr_end` must be > lr_start (1e-07). Received: lr_end=1e-08"),
        (dict(batch_size=0), "`batch_size` must be >= 1. Received: batch_size=0"),
        (dict(fold=-1), "`fold` must be >= 0. Received: fold=-1"),
        (dict(num_folds=1), "`num_folds` must be >= 2. Received: num_folds=1"),
        (dict(seed=-1), "`seed` must be in 0..4294967295. Received: seed=-1"),
    ],
)
def test_config_validation_messages(fields, message):
    with pytest.raises(ConfigError) as err:
        LrFindConfig(("shards/",), **fields)
    assert str(err.value) == message


def test_save_writes_the_plot_and_every_point_with_the_settings(tmp_path):
    recorder = recorded(u_curve(noise=0.1))
    recorder.losses[-1] = math.nan  # a diverged batch: null in the JSON, not NaN
    found = suggest(recorder.lrs, recorder.smoothed, global_batch=16, skip=STEPS // 10)
    config = LrFindConfig(("shards/",), steps=STEPS)
    result = LrFindResult(
        config,
        16,
        tuple(recorder.lrs),
        tuple(recorder.losses),
        tuple(recorder.smoothed),
        recorder.stopped_early,
        found,
    )
    png, data = save_lr_find(result, str(tmp_path / "new" / "folder"))
    with open(png, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC
    with open(data, encoding="utf-8") as handle:
        saved = json.load(handle)
    assert saved["lrs"] == pytest.approx(recorder.lrs)
    assert saved["losses"][-1] is None
    assert saved["smoothed"] == pytest.approx(recorder.smoothed)
    assert saved["suggestion"] == {
        "lr": found.lr,
        "index": found.index,
        "global_batch": 16,
        "rule": "valley",
        "lr_max": found.lr / 16,
    }
    assert saved["settings"]["steps"] == STEPS and saved["settings"]["model"]["name"] == "small_cnn"


def test_the_callback_sets_the_learning_rate_before_each_batch():
    import keras

    from tfrec_tools.train.lr_find import _range_callback

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-7), loss="mse")
    lrs = lr_range(1e-4, 1e-2, 12)
    recorder = RangeRecorder()
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, batch_size=8, epochs=12, callbacks=[_range_callback(lrs, recorder)], verbose=0)
    assert recorder.lrs == pytest.approx(lrs)
    assert float(model.optimizer.learning_rate) == pytest.approx(lrs[-1])
    assert len(recorder.losses) == 12 and all(math.isfinite(x) for x in recorder.losses)


def test_the_batch_defaults_to_the_one_train_uses_for_the_model():
    from tfrec_tools.train.models import ModelConfig

    scratch = LrFindConfig(shards=("s",), model=ModelConfig(name="small_cnn"))
    tuned = LrFindConfig(shards=("s",), model=ModelConfig(name="efficientnet_b0", weights="x.h5"))
    assert scratch.batch_size == ModelConfig(name="small_cnn").training_defaults().batch_size
    assert tuned.batch_size == 16 and LrFindConfig(shards=("s",), batch_size=4).batch_size == 4


def test_a_url_scheme_no_file_system_opens_is_refused():
    with pytest.raises(ConfigError, match="unsupported URL scheme 'foo' in shards='foo://x'"):
        LrFindConfig(("foo://x",))
