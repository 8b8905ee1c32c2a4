"""What the Vertex adapter learns from the media bytes it receives: image sizes and MP4 dimensions
and duration (Veo does not report them), read from headers only, without decoding."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from domain.assets import sniff_mime

# Boxes that only contain other boxes, on the way from the file to a track's header.
_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"})


@dataclass(frozen=True)
class VideoInfo:
    width: int | None
    height: int | None
    duration_seconds: float | None


def image_size(data: bytes) -> tuple[int | None, int | None]:
    """(width, height) from the image header, or (None, None) if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except Exception:  # PIL raises many types for unreadable data
        return None, None


def image_mime(data: bytes, declared: str | None) -> str:
    """The image's real type from its signature (the declared one when unknown)."""
    sniffed = sniff_mime(data)
    if sniffed is not None and sniffed.startswith("image/"):
        return sniffed
    return declared or "application/octet-stream"


def probe_mp4(data: bytes) -> VideoInfo:
    """Width and height of the first video track (tkhd) and the movie duration (mvhd) of an MP4."""
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    try:
        for kind, payload in _walk(data, 0, len(data)):
            if kind == b"mvhd" and duration is None:
                duration = _mvhd_duration(payload)
            elif kind == b"tkhd" and width is None:
                size = _tkhd_size(payload)
                if size is not None and size[0] > 0 and size[1] > 0:
                    width, height = size
    except (struct.error, ValueError):
        pass
    return VideoInfo(width, height, duration)


def _walk(data: bytes, start: int, end: int) -> list[tuple[bytes, bytes]]:
    """Every leaf box under [start, end) that the probe needs, depth first, in file order."""
    found: list[tuple[bytes, bytes]] = []
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            break
        body_start, body_end = offset + header, offset + size
        if kind in _CONTAINERS:
            found.extend(_walk(data, body_start, body_end))
        elif kind in (b"mvhd", b"tkhd"):
            found.append((kind, data[body_start:body_end]))
        offset += size
    return found


def _mvhd_duration(payload: bytes) -> float | None:
    version = payload[0]
    if version == 1:
        timescale, duration = struct.unpack_from(">IQ", payload, 4 + 16)
    else:
        timescale, duration = struct.unpack_from(">II", payload, 4 + 8)
    return duration / timescale if timescale else None


def _tkhd_size(payload: bytes) -> tuple[int, int] | None:
    version = payload[0]
    # version/flags, times, track id, reserved, duration, reserved, layer..volume, matrix: then w, h.
    offset = 4 + (32 if version == 1 else 20) + 8 + 8 + 36
    if len(payload) < offset + 8:
        return None
    width, height = struct.unpack_from(">II", payload, offset)
    return round(width / 65536), round(height / 65536)
