"""A TensorFlow-free reader of the shards, for PyTorch and JAX: records found through the
index files (or a walk of the frames), decoded in plain Python, images by Pillow, samples of
numpy values. ``tfrec_tools.loader.torch`` wraps the datasets for PyTorch's DataLoader.

Importing this package, and reading with it, never imports TensorFlow.
"""

from __future__ import annotations

from tfrec_tools.loader.dataset import RecordDataset, RecordStream, decode_image, to_sample
from tfrec_tools.loader.example import decode_example
from tfrec_tools.loader.shares import Slot, share_records
from tfrec_tools.loader.source import Keys

__all__ = [
    "Keys",
    "RecordDataset",
    "RecordStream",
    "Slot",
    "decode_example",
    "decode_image",
    "share_records",
    "to_sample",
]
