"""`tfrec inspect`: check any set of shards (ours or foreign) before spending TPU hours on it.

Scans every record once: counts vs file names, schema consistency, CRC/truncation, label
distribution per shard and fold (classes, or each tag of a multi-hot label), duplicate ids,
groups that cross folds, identical images under different ids, leftovers of interrupted
builds, and every difference from the manifest.
"""

from tfrec_tools.validate.grid import grid_tiles
from tfrec_tools.validate.inspection import inspect_shards
from tfrec_tools.validate.report import FileReport, InspectConfig, InspectReport

__all__ = ["FileReport", "InspectConfig", "InspectReport", "grid_tiles", "inspect_shards"]
