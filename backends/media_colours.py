"""Naming the colours that cover most of a picture (or of a video's middle frame), for tags."""

from __future__ import annotations

import asyncio
import io
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from backends.generators._mp4 import ffmpeg_exe
from backends.generators._vertex_media import probe_mp4

# A few reference shades per colour name; a pixel colour takes the name of the nearest one.
_COLOUR_NAMES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "red": ((214, 38, 44), (160, 20, 30), (240, 80, 70)),
    "orange": ((244, 138, 32), (230, 110, 20)),
    "yellow": ((244, 212, 48), (250, 240, 120), (212, 172, 52)),
    "green": ((46, 164, 76), (20, 100, 40), (140, 200, 90), (20, 148, 148)),
    "blue": ((38, 92, 214), (24, 34, 98), (40, 198, 218), (120, 170, 230)),
    "purple": ((128, 58, 186), (148, 88, 218), (80, 30, 110)),
    "pink": ((242, 128, 178), (206, 48, 158), (250, 190, 210)),
    "brown": ((128, 82, 48), (90, 56, 30), (170, 120, 80)),
    "black": ((16, 16, 20), (40, 40, 44)),
    "white": ((244, 244, 238), (222, 226, 230)),
    "gray": ((128, 128, 132), (90, 90, 94), (180, 180, 184)),
}
_REFERENCES = [(name, rgb) for name, shades in _COLOUR_NAMES.items() for rgb in shades]
_PALETTE_SIZE = 6
_MIN_SHARE = 0.12  # a colour must cover this much of the picture to be worth a tag
_MAX_COLOURS = 3
_SAMPLE_SIDE = 96  # colours are read from a thumbnail: cheap, and just as telling


def colour_name(rgb: tuple[int, int, int]) -> str:
    """The colour name nearest to `rgb` (weighted RGB distance, close enough to how eyes group them)."""
    r, g, b = rgb

    def distance(reference: tuple[int, int, int]) -> float:
        dr, dg, db = r - reference[0], g - reference[1], b - reference[2]
        return 2 * dr * dr + 4 * dg * dg + 3 * db * db

    return min(_REFERENCES, key=lambda item: distance(item[1]))[0]


def dominant_colours(image: Image.Image) -> list[str]:
    """Up to three colour names, most covering first, of colours covering a fair share of `image`."""
    sample = image.convert("RGB")
    sample.thumbnail((_SAMPLE_SIDE, _SAMPLE_SIDE))
    quantized = sample.quantize(colors=_PALETTE_SIZE, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    total = sample.width * sample.height
    shares: dict[str, int] = {}
    for count, index in quantized.getcolors(_PALETTE_SIZE) or []:
        at = 3 * int(index)  # type: ignore[arg-type]  # a palette image counts palette indexes
        rgb = (palette[at], palette[at + 1], palette[at + 2])
        name = colour_name(rgb)
        shares[name] = shares.get(name, 0) + count
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    return [name for name, count in ranked if count / total >= _MIN_SHARE][:_MAX_COLOURS]


def still_of(media: bytes, mime_type: str) -> Image.Image | None:
    """The picture to read colours from: the image itself, or a video's middle frame (else its first)."""
    kind = mime_type.split(";")[0].strip()
    if kind.startswith("image/"):
        image = Image.open(io.BytesIO(media))
        image.load()
        return image
    if kind == "video/mp4":
        return _video_frame(media)
    return None


def _video_frame(media: bytes) -> Image.Image | None:
    duration = probe_mp4(media).duration_seconds or 0.0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        path.write_bytes(media)
        for at in (duration / 2, 0.0):
            command = [
                ffmpeg_exe(),
                *("-hide_banner", "-loglevel", "error", "-ss", f"{at:.3f}", "-i", str(path)),
                *("-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"),
            ]
            done = subprocess.run(command, capture_output=True, timeout=30, check=False)
            if done.returncode == 0 and done.stdout:
                image = Image.open(io.BytesIO(done.stdout))
                image.load()
                return image
    return None


class ColourDescriber:
    """A `domain.ports.MediaDescriber` that only names colours: cheap enough for every upload.

    Videos are described by a frame only with `videos=True` (it writes the clip to a temporary
    file for ffmpeg to seek in; uploads do, bounded by the tagging timeout)."""

    def __init__(self, *, videos: bool = False) -> None:
        self._videos = videos

    async def describe(self, media: bytes, mime_type: str, prompt: str | None = None) -> list[str]:
        """The dominant colour names of the media (the prompt is not used)."""
        if not self._videos and not mime_type.startswith("image/"):
            return []
        still = await asyncio.to_thread(still_of, media, mime_type)
        return [] if still is None else await asyncio.to_thread(dominant_colours, still)
