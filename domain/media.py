"""Measuring media: what a probe (Pillow for images, the MP4 boxes for videos) reads from the bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class MediaShape:
    """What a probe measured: pixel size, and a video's duration; None where unknown."""

    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


class MediaProbe(Protocol):
    """Measures image or video bytes of a known type; raises ValueError when they cannot be read."""

    def __call__(self, data: bytes, mime_type: str) -> MediaShape: ...
