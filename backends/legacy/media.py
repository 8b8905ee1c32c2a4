"""Measuring imported media: image pixel size through Pillow, MP4 size and duration from its boxes."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

from domain.media import MediaShape


def probe_media(data: bytes, mime_type: str) -> MediaShape:
    """A `domain.migration.MediaProbe`: ValueError when the bytes cannot be read as `mime_type`."""
    if mime_type.startswith("image/"):
        return _image(data)
    if mime_type == "video/mp4":
        return _mp4(data)
    return MediaShape()


def _image(data: bytes) -> MediaShape:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(str(error) or "not an image") from None
    return MediaShape(int(width), int(height))


def _mp4(data: bytes) -> MediaShape:
    """Duration from `moov/mvhd`, pixel size from the first `moov/trak/tkhd` that has one."""
    width = height = None
    duration = None
    found_moov = False
    for kind, start, end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        found_moov = True
        for inner, body, stop in _boxes(data, start, end):
            if inner == b"mvhd":
                duration = _mvhd_duration(data[body:stop])
            elif inner == b"trak" and width is None:
                for leaf, leaf_body, leaf_stop in _boxes(data, body, stop):
                    if leaf == b"tkhd":
                        size = _tkhd_size(data[leaf_body:leaf_stop])
                        if size is not None:
                            width, height = size
    if not found_moov:
        raise ValueError("no moov box")
    return MediaShape(width, height, duration)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, box end) of each box between `start` and `end`."""
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if offset + 16 > end:
                raise ValueError("truncated box header")
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise ValueError(f"malformed {kind!r} box")
        yield kind, offset + header, offset + size
        offset += size


def _mvhd_duration(body: bytes) -> float | None:
    if not body:
        return None
    if body[0] == 1 and len(body) >= 32:
        timescale, duration = struct.unpack_from(">IQ", body, 20)
    elif len(body) >= 20:
        timescale, duration = struct.unpack_from(">II", body, 12)
    else:
        return None
    return round(duration / timescale, 3) if timescale else None


def _tkhd_size(body: bytes) -> tuple[int, int] | None:
    if len(body) < 8:
        return None
    width, height = struct.unpack_from(">II", body, len(body) - 8)  # 16.16 fixed point
    if not width or not height:
        return None  # an audio track
    return width >> 16, height >> 16
