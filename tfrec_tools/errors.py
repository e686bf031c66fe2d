"""Typed exceptions: the library raises these, the CLI turns them into one-line messages."""

from __future__ import annotations


class TfrecError(Exception):
    """Base class of every error tfrec-tools raises on purpose."""


class ConfigError(TfrecError):
    """An option, or a combination of options, cannot work."""


class DataError(TfrecError):
    """The input data (CSV, image folder) cannot be used as given."""


class ShardError(TfrecError):
    """A shard file or its manifest is missing, damaged or inconsistent."""


class ClusterError(TfrecError):
    """Multi-worker training lost a worker, or could not reach one."""


class ResourceError(TfrecError):
    """The machine, not the data, failed: out of memory, disk space or quota, or a read-only
    file system. Nothing is rejected for it: the build stops (and ``--resume`` finishes it)."""
