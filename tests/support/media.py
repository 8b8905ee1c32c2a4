"""Real media files for upload tests: images made with Pillow, a short MP4 made with the bundled ffmpeg."""

from __future__ import annotations

import functools
import io
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


def image_bytes(mime_type: str, width: int = 48, height: int = 32) -> bytes:
    """A small gradient image, so compressed formats have something to compress."""
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 5 % 256, y * 7 % 256, (x + y) % 256) for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, FORMATS[mime_type])
    return out.getvalue()


@functools.cache
def mp4_bytes(width: int = 64, height: int = 48, seconds: int = 1, colour: str | None = None) -> bytes:
    """A short H.264 MP4 (`moov` first): ffmpeg's test pattern, or one solid `colour`."""
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory(prefix="genmedia-test-") as folder:
        target = Path(folder) / "clip.mp4"
        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                *("-hide_banner", "-loglevel", "error", "-f", "lavfi"),
                *(
                    "-i",
                    f"{f'color=c={colour}:' if colour else 'testsrc='}size={width}x{height}:rate=10:duration={seconds}",
                ),
                *("-pix_fmt", "yuv420p", "-c:v", "libx264", "-movflags", "+faststart", str(target)),
            ],
            check=True,
            timeout=60,
        )
        return target.read_bytes()
