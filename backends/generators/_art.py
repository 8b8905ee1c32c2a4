"""Procedural pictures for the local generator: prompt-derived palettes and numpy-drawn art.

Everything here is pure and synchronous (callers run it in a thread); the same inputs and
the same numpy random generator give the same pixels.
"""

from __future__ import annotations

import colorsys
import io

import numpy as np
from PIL import Image, ImageOps

from ._prompt import keywords, stable_int, words

# Colour words a prompt may name; later AI tagging reads dominant colours, so a named colour
# must end up covering most of the picture.
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 38, 44),
    "blue": (38, 92, 214),
    "green": (46, 164, 76),
    "orange": (244, 138, 32),
    "purple": (128, 58, 186),
    "yellow": (244, 212, 48),
    "black": (16, 16, 20),
    "white": (244, 244, 238),
    "pink": (242, 128, 178),
    "teal": (20, 148, 148),
    "brown": (128, 82, 48),
    "gray": (128, 128, 132),
    "grey": (128, 128, 132),
    "gold": (212, 172, 52),
    "cyan": (40, 198, 218),
    "magenta": (206, 48, 158),
    "navy": (24, 34, 98),
    "violet": (148, 88, 218),
}

Float = np.float32
_LUT_SIZE = 1024
_BAYER = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], dtype=Float) + 0.5) / 16


def named_colours(prompt: str, negative_prompt: str | None = None) -> list[str]:
    """Colour words the prompt names (and the negative prompt does not), in order."""
    banned = set(words(negative_prompt))
    found: dict[str, None] = {}
    for word in words(prompt):
        if word in NAMED_COLOURS and word not in banned:
            found.setdefault(word, None)
    return list(found)


def palette_for(prompt: str, negative_prompt: str | None = None) -> np.ndarray:
    """3-6 RGB colours in 0..1, shape (k, 3): named colours and their shades, else hashed hues."""
    named = named_colours(prompt, negative_prompt)
    if named:
        colours: list[tuple[float, float, float]] = []
        for name in named[:3]:
            base = np.array(NAMED_COLOURS[name], dtype=Float) / 255.0
            # Light and dark shades of the same hue keep the named colour dominant.
            colours += [tuple(base), tuple(shade(base, 0.14)), tuple(shade(base, -0.14))]
        return np.array(colours[:6], dtype=Float)
    key = stable_int("palette", keywords(prompt) or prompt)
    hue = (key % 360) / 360.0
    # Mostly analogous hues with one gentle offset: harmonious rather than clashing triads.
    offsets = [(0.0, 0.05, -0.05, 0.1, 0.5), (0.0, 0.08, 0.16, -0.06, 0.58), (0.0, -0.07, 0.07, 0.13, 0.45)]
    scheme = offsets[(key >> 9) % 3]
    sat = 0.4 + ((key >> 12) % 35) / 100.0
    val = 0.62 + ((key >> 20) % 30) / 100.0
    out = [
        colorsys.hsv_to_rgb((hue + offset) % 1.0, min(1.0, sat + 0.08 * (i % 2)), val - 0.1 * (i == 2))
        for i, offset in enumerate(scheme)
    ]
    return np.array(out, dtype=Float)


def shade(colour: np.ndarray, amount: float) -> np.ndarray:
    """Mix towards white (amount > 0) or black (amount < 0)."""
    target = 1.0 if amount > 0 else 0.0
    return colour + (target - colour) * abs(amount)


def gradient_lut(stops: np.ndarray, size: int = _LUT_SIZE) -> np.ndarray:
    """A (size, 3) float32 table interpolating smoothly through the `stops` colours."""
    pos = np.linspace(0.0, 1.0, len(stops))
    t = np.linspace(0.0, 1.0, size)
    return np.stack([np.interp(t, pos, stops[:, c]) for c in range(3)], axis=1).astype(Float)


def render(width: int, height: int, palette: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one landscape-like picture: a warped sky gradient, a sun, bokeh, layered ridges and a
    vignette, all in the palette's colours; returns (height, width, 3) uint8."""
    long_side = float(max(width, height))
    xs = (np.arange(width, dtype=Float) + 0.5) / long_side
    ys = (np.arange(height, dtype=Float) + 0.5) / long_side
    bottom = float(ys[-1])

    # Sky: a gradient along a near-vertical direction, warped by separable low-frequency waves.
    theta = np.pi / 2 + rng.uniform(-0.5, 0.5)
    t = xs[None, :] * Float(np.cos(theta)) + ys[:, None] * Float(np.sin(theta))
    fx, fy, px, py = rng.uniform(0.5, 1.6), rng.uniform(0.5, 1.6), rng.uniform(0, 6.3), rng.uniform(0, 6.3)
    t += (
        Float(0.12)
        * np.sin(Float(2 * np.pi * fx) * xs + Float(px))[None, :]
        * np.cos(Float(2 * np.pi * fy) * ys + Float(py))[:, None]
    )
    t -= t.min()
    t *= Float((_LUT_SIZE - 1) / max(float(t.max()), 1e-6))
    order = rng.permutation(len(palette))
    sky = np.array([shade(palette[i], 0.12) for i in order[:3]], dtype=Float)
    img = gradient_lut(sky)[t.astype(np.intp)]

    sun = shade(palette[order[-1]], 0.45)
    sx, sy = rng.uniform(0.15, 0.85) * width / long_side, rng.uniform(0.12, 0.4) * bottom
    _orb(img, xs, ys, sx, sy, rng.uniform(0.18, 0.3), shade(sun, 0.3), 0.25, soft=1.0)
    _orb(img, xs, ys, sx, sy, rng.uniform(0.05, 0.11), sun, 0.95, soft=0.08)
    for _ in range(int(rng.integers(3, 7))):
        colour = shade(palette[int(rng.integers(len(palette)))], 0.3)
        cx, cy = rng.uniform(0, width / long_side), rng.uniform(0, 0.6 * bottom)
        _orb(img, xs, ys, cx, cy, rng.uniform(0.015, 0.06), colour, rng.uniform(0.2, 0.45), soft=0.3)
    if rng.random() < 0.6:
        _ribbon(img, xs, ys, rng, shade(palette[int(rng.integers(len(palette)))], 0.5), bottom * 0.45)

    # Ridges from far (light, hazy) to near (darker): atmospheric perspective reads as depth.
    layers = int(rng.integers(2, 5))
    for i in range(layers):
        depth = (i + 1) / layers
        horizon = bottom * (0.5 + 0.38 * depth * rng.uniform(0.75, 1.0))
        colour = shade(palette[order[(i + 1) % len(palette)]], -0.08 - 0.27 * depth)
        _ridge(img, xs, ys, rng, horizon, colour, 0.97)

    # A mild vignette: depth without turning a "white" prompt grey at the corners.
    cx, cy = (xs[0] + xs[-1]) / 2, (ys[0] + ys[-1]) / 2
    img *= (Float(1.0) - Float(0.2) * ((xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2))[..., None]
    img *= Float(255.0)
    # Ordered dithering hides gradient banding; unlike random grain its 4x4 period keeps PNGs small.
    img += np.tile(_BAYER, (height // 4 + 1, width // 4 + 1))[:height, :width, None]
    out: np.ndarray = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _ridge(
    img: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    rng: np.random.Generator,
    horizon: float,
    colour: np.ndarray,
    opacity: float,
) -> None:
    line = np.full_like(xs, Float(horizon))
    for scale in (0.09, 0.04, 0.015):
        freq, phase = rng.uniform(0.6, 2.0) / scale * 0.08, rng.uniform(0, 6.3)
        line += Float(scale * rng.uniform(0.5, 1.0)) * np.sin(Float(2 * np.pi * freq) * xs + Float(phase))
    y0 = int(np.searchsorted(ys, float(line.min()) - 0.01))
    if y0 >= len(ys):
        return
    # One pixel of anti-aliasing on the edge; everything below the ridge line is filled.
    pixel = Float(1.0 / max(len(xs), len(ys)))
    alpha = np.clip((ys[y0:, None] - line[None, :]) / pixel + Float(0.5), 0.0, 1.0) * Float(opacity)
    region = img[y0:]
    region += (colour.astype(Float) - region) * alpha[..., None]


def _orb(
    img: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    cx: float,
    cy: float,
    radius: float,
    colour: np.ndarray,
    opacity: float,
    *,
    soft: float = 0.45,
) -> None:
    # Only the orb's bounding box is touched: full-frame work per shape would blow the time budget.
    x0, x1 = np.searchsorted(xs, [cx - radius, cx + radius])
    y0, y1 = np.searchsorted(ys, [cy - radius, cy + radius])
    if x1 <= x0 or y1 <= y0:
        return
    d = np.sqrt((xs[None, x0:x1] - Float(cx)) ** 2 + (ys[y0:y1, None] - Float(cy)) ** 2) / Float(radius)
    alpha = np.clip((Float(1.0) - d) / Float(soft), 0.0, 1.0) * Float(opacity)
    region = img[y0:y1, x0:x1]
    region += (colour.astype(Float) - region) * alpha[..., None]


def _ribbon(
    img: np.ndarray, xs: np.ndarray, ys: np.ndarray, rng: np.random.Generator, colour: np.ndarray, top: float
) -> None:
    base, amp = rng.uniform(0.05, max(top, 0.1)), rng.uniform(0.02, 0.08)
    freq, phase, width = rng.uniform(0.5, 2.0), rng.uniform(0, 6.3), rng.uniform(0.002, 0.006)
    centre = Float(base) + Float(amp) * np.sin(Float(2 * np.pi * freq) * xs + Float(phase))
    y0, y1 = np.searchsorted(ys, [float(centre.min()) - 3 * width, float(centre.max()) + 3 * width])
    if y1 <= y0:
        return
    d = np.abs(ys[y0:y1, None] - centre[None, :]) / Float(width)
    alpha = np.clip(Float(1.0) - d / Float(3.0), 0.0, 1.0) ** 2 * Float(rng.uniform(0.25, 0.5))
    region = img[y0:y1]
    region += (colour.astype(Float) - region) * alpha[..., None]


def decode_image(data: bytes, *, keep_alpha: bool = False) -> Image.Image:
    """Decode PNG/JPEG/WebP bytes into RGB (or RGBA if asked and present), upright per EXIF."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        upright = ImageOps.exif_transpose(opened)
        alpha = keep_alpha and ("A" in upright.getbands() or "transparency" in upright.info)
        return upright.convert("RGBA" if alpha else "RGB")


def cover_fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop `image` to exactly width x height (like CSS `object-fit: cover`)."""
    scale = max(width / image.width, height / image.height)
    crop_w, crop_h = width / scale, height / scale
    left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    return image.resize((width, height), Image.Resampling.BILINEAR, box=box)


def blend_reference(pixels: np.ndarray, reference: Image.Image, amount: float = 0.2) -> np.ndarray:
    """Mix `amount` of the reference image into `pixels` (both RGB, same size after fitting)."""
    height, width = pixels.shape[:2]
    ref = np.asarray(cover_fit(reference, width, height), dtype=Float)
    mixed = pixels.astype(Float) * Float(1 - amount) + ref * Float(amount)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an RGB or RGBA uint8 array (fast compression: latency matters more than size here)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def seeded_rng(*parts: object) -> np.random.Generator:
    """A numpy generator whose stream depends only on `parts`."""
    return np.random.default_rng(stable_int("rng", *parts))
