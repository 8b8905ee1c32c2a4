"""Procedural video frames for the local generator: a slow camera move over a rendered still,
drifting light orbs, and crossfades from a first frame and into a last frame."""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import _art

FPS = 24
_MARGIN = 1.3  # the still is this much larger than the frame, so the camera has room to move
_BILINEAR = Image.Resampling.BILINEAR


def _smoothstep(edge0: float, edge1: float, x: float) -> float:
    if edge1 <= edge0:
        return 1.0 if x >= edge1 else 0.0
    t = min(1.0, max(0.0, (x - edge0) / (edge1 - edge0)))
    return t * t * (3 - 2 * t)


class FrameAnimator:
    """Renders the frames of one clip as raw RGB24 bytes; deterministic for a given random generator."""

    def __init__(
        self,
        width: int,
        height: int,
        frame_count: int,
        palette: np.ndarray,
        rng: np.random.Generator,
        *,
        first: Image.Image | None = None,
        last: Image.Image | None = None,
        reference: Image.Image | None = None,
    ) -> None:
        self.width, self.height, self.frame_count = width, height, frame_count
        still = _art.render(round(width * _MARGIN), round(height * _MARGIN), palette, rng)
        if reference is not None:
            still = _art.blend_reference(still, reference)
        self._still = Image.fromarray(still)
        self._first = _art.cover_fit(first, width, height) if first is not None else None
        self._last = _art.cover_fit(last, width, height) if last is not None else None
        # Camera path: zoom in a little while panning across the still, direction from the seed.
        self._pan = rng.uniform(-1.0, 1.0, size=2)
        self._zoom = (rng.uniform(0.84, 0.9), rng.uniform(0.7, 0.78))
        self._orbs = [
            (
                rng.uniform(0, width),
                rng.uniform(0, height * 0.7),
                rng.uniform(-0.4, 0.4) * width,
                rng.uniform(-0.15, 0.15) * height,
                rng.uniform(0.03, 0.08) * max(width, height),
                _art.shade(palette[int(rng.integers(len(palette)))], 0.5) * 255.0,
                rng.uniform(0.15, 0.35),
            )
            for _ in range(int(rng.integers(4, 8)))
        ]

    def frames(self, start: int, stop: int) -> bytes:
        """Frames `start` (inclusive) to `stop` (exclusive), concatenated as rgb24."""
        return b"".join(self._frame(i) for i in range(start, stop))

    def _frame(self, index: int) -> bytes:
        p = index / max(1, self.frame_count - 1)
        frame = self._camera(p)
        # The first frame holds briefly then dissolves; the last one fades in and holds to the end.
        hold = 0.0
        if self._first is not None and (w := 1.0 - _smoothstep(0.12, 0.45, p)) > 0:
            frame, hold = Image.blend(frame, _drift(self._first, p / 0.45), w), w
        if self._last is not None and (w := _smoothstep(0.55, 0.88, p)) > 0:
            frame, hold = Image.blend(frame, _drift(self._last, (1 - p) / 0.45), w), max(hold, w)
        pixels = np.array(frame)
        if hold < 1.0:
            self._draw_orbs(pixels, p, 1.0 - hold)
        return pixels.tobytes()

    def _camera(self, p: float) -> Image.Image:
        sw, sh = self._still.size
        zoom = self._zoom[0] + (self._zoom[1] - self._zoom[0]) * p
        bw, bh = sw * zoom, sh * zoom
        cx = sw / 2 + self._pan[0] * (p - 0.5) * (sw - bw)
        cy = sh / 2 + self._pan[1] * (p - 0.5) * (sh - bh)
        box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
        return self._still.resize((self.width, self.height), _BILINEAR, box=box)

    def _draw_orbs(self, pixels: np.ndarray, p: float, strength: float) -> None:
        height, width = pixels.shape[:2]
        for x, y, dx, dy, radius, colour, opacity in self._orbs:
            cx, cy = x + dx * p, y + dy * p
            x0, x1 = max(0, int(cx - radius)), min(width, int(cx + radius) + 1)
            y0, y1 = max(0, int(cy - radius)), min(height, int(cy + radius) + 1)
            if x1 <= x0 or y1 <= y0:
                continue
            xs = np.arange(x0, x1, dtype=np.float32) - np.float32(cx)
            ys = np.arange(y0, y1, dtype=np.float32) - np.float32(cy)
            d = np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2) / np.float32(radius)
            alpha = (np.clip(1.0 - d, 0.0, 1.0) ** 2 * np.float32(opacity * strength))[..., None]
            region = pixels[y0:y1, x0:x1].astype(np.float32)
            region += (colour.astype(np.float32) - region) * alpha
            pixels[y0:y1, x0:x1] = region.astype(np.uint8)


def _drift(image: Image.Image, t: float) -> Image.Image:
    """`image` with a gentle zoom: exactly itself at t=0, 6% closer by t=1 (callers run t either way)."""
    t = min(1.0, max(0.0, t))
    if t == 0:
        return image
    inset = 0.03 * t
    w, h = image.size
    box = (w * inset, h * inset, w * (1 - inset), h * (1 - inset))
    return image.resize(image.size, _BILINEAR, box=box)
