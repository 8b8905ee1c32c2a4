"""The old REST backend, read only: its bucket of JSON metadata and media, for `genmedia migrate`."""

from backends.legacy.bucket import LegacyBucket
from backends.legacy.media import probe_media

__all__ = ["LegacyBucket", "probe_media"]
