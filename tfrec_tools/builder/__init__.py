"""`tfrec build`: image folder + labels CSV -> stratified, fold-assigned shards + manifest."""

from tfrec_tools.builder.config import BuildConfig, ImageConfig, parse_size
from tfrec_tools.builder.run import BuildReport, build

__all__ = ["BuildConfig", "BuildReport", "ImageConfig", "build", "parse_size"]
