"""Measuring uploaded media strictly: an image must decode completely, an MP4 must have its boxes."""

from __future__ import annotations

import io

from backends.legacy.media import probe_media
from domain.media import MediaShape

MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold, should it be switched off
_PILLOW_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


def inspect_media(data: bytes, mime_type: str) -> MediaShape:
    """A `domain.migration.MediaProbe` that decodes every pixel of an image, so a truncated or
    corrupt file is refused (ValueError) instead of being measured from its header alone.

    MP4: pixel size and duration from `moov` (no decoding; a file cut before its `moov` fails).
    """
    expected = _PILLOW_FORMATS.get(mime_type)
    if expected is None:
        return probe_media(data, mime_type)
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != expected:
                raise ValueError(f"the bytes are {image.format}, not {expected}")
            # A few compressed megabytes can claim billions of pixels: refuse before decoding them.
            if image.width * image.height > (Image.MAX_IMAGE_PIXELS or MAX_PIXELS):
                raise ValueError(f"the image has more than {Image.MAX_IMAGE_PIXELS or MAX_PIXELS} pixels")
            image.load()
            width, height = image.size
    except ValueError:
        raise
    except Exception as error:  # Pillow raises many types: OSError, SyntaxError, DecompressionBombError
        raise ValueError(str(error) or "not a readable image") from None
    return MediaShape(int(width), int(height))
