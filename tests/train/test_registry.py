"""The backbone registry: its names, training defaults per model, and no TensorFlow on import."""

from __future__ import annotations

from tests.train.tiny_models import NAMES
from tfrec_tools.train import registry
from tfrec_tools.train.registry import available_models
from tfrec_tools.train.schedules import ScheduleConfig


def test_registry_lists_every_backbone_sorted():
    assert available_models() == sorted(NAMES)


def test_every_backbone_carries_training_defaults_for_both_starts():
    for name in available_models():
        entry = registry.get_backbone(name)
        assert entry.scratch.lr_max > entry.fine_tune.lr_max, name  # random weights: faster
        assert entry.scratch.schedule_config().lr_max == entry.scratch.lr_max
    # fine-tuning keeps the Kaggle TPU recipe: ScheduleConfig's own defaults
    assert registry.FINE_TUNE.schedule_config() == ScheduleConfig()
    assert registry.get_backbone("efficientnet_b7").fine_tune.batch_size == 8


def test_importing_the_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, tfrec_tools.train.models, tfrec_tools.train.registry as m; "
        "assert m.available_models(); print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False"], result.stderr
