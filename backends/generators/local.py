"""The offline, procedural stand-in for Google's models: real PNG, MP4 and text, with realistic
progress, latency scaled by `speed` (GENMEDIA_LOCAL_SPEED) and injected failures."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import numpy as np
from PIL import Image

from domain.errors import ErrorCode, StudioError, bad_input
from domain.ports import GeneratedMedia, GenerationRequest, GenerationResult, ProgressReporter

from . import _art, _audio, _tags, _text, _video
from ._mp4 import Mp4Encoder
from ._pacing import Pacer
from ._params import (
    bool_param,
    choice_param,
    decode_media,
    float_param,
    int_param,
    optional_int,
    optional_str,
)
from ._prompt import count_tokens, stable_int

BLOCK_MARKER = "[[blocked]]"
IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "3:4": (768, 1024),
    "4:3": (1024, 768),
    "9:16": (576, 1024),
    "16:9": (1024, 576),
}
VIDEO_SIZES: dict[str, tuple[int, int]] = {"16:9": (640, 360), "9:16": (360, 640)}
MAX_UPSCALE_SIDE = 8192

# Seconds each kind takes at speed 1 (the job is stretched to this; real compute is far less).
_IMAGE_SECONDS, _EXTRA_IMAGE_SECONDS = 1.5, 0.25
_VIDEO_BASE_SECONDS, _VIDEO_SECONDS_PER_SECOND = 4.0, 0.25
_TEXT_SECONDS, _UPSCALE_SECONDS = 1.0, 1.0

# A local "operation" is its seed and start time (Unix ms): resuming it renders the same clip, with
# progress as far along as the time since that start says, and starts nothing new.
_OPERATION_PREFIX = "local-video"

_Handler = Callable[[GenerationRequest, ProgressReporter, float | None], Awaitable[GenerationResult]]


class LocalGenerator:
    """A `Generator` that needs no network: procedural images, videos, text and upscales.

    `speed` divides the simulated latency (0 = instant), `fail_rate` is the probability of an
    injected UPSTREAM_UNAVAILABLE, `rng_seed` makes those draws (and unseeded outputs) repeatable.
    """

    def __init__(self, *, speed: float = 1.0, fail_rate: float = 0.0, rng_seed: int | None = None) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        if not 0.0 <= fail_rate <= 1.0:
            raise ValueError("fail_rate must be within 0..1")
        self._speed = speed
        self._fail_rate = fail_rate
        self._rng = random.Random(rng_seed)
        self.operations_started = 0  # video operations begun (not resumed) by this instance

    async def generate(self, request: GenerationRequest, report: ProgressReporter) -> GenerationResult:
        """Generate the media `request` asks for, calling `report` as work advances."""
        if BLOCK_MARKER in request.prompt:
            raise StudioError(
                ErrorCode.CONTENT_BLOCKED, "The prompt was refused by the safety filter.", retryable=False
            )
        handlers: dict[str, _Handler] = {
            "IMAGE": self._image,
            "VIDEO": self._video,
            "TEXT": self._text,
            "UPSCALE": self._upscale,
        }
        handler = handlers.get(request.kind)
        if handler is None:
            raise bad_input("kind", f"unknown generation kind {request.kind!r}")
        # Drawn for every job, so a seeded instance fails on the same jobs whatever their kinds.
        roll, fail_point = self._rng.random(), self._rng.uniform(0.2, 0.7)
        fail_at = fail_point if roll < self._fail_rate else None
        return await handler(request, report, fail_at)

    async def describe(self, media: bytes, mime_type: str, prompt: str | None = None) -> list[str]:
        """Tags for `media`: the prompt's key words and the media's dominant colour names."""
        return await asyncio.to_thread(_tags.local_tags, media, mime_type, prompt)

    def _pacer(
        self,
        report: ProgressReporter,
        seconds_at_speed_1: float,
        fail_at: float | None,
        elapsed: float = 0.0,
    ) -> Pacer:
        planned = seconds_at_speed_1 / self._speed if self._speed > 0 else 0.0
        return Pacer(report, planned, fail_at, elapsed=elapsed)

    def _seed(self, seed: int | None) -> int:
        return seed if seed is not None else self._rng.getrandbits(63)

    async def _image(
        self, request: GenerationRequest, report: ProgressReporter, fail_at: float | None
    ) -> GenerationResult:
        params = request.parameters
        aspect = choice_param(params, "aspect_ratio", "1:1", IMAGE_SIZES, "aspectRatio")
        count = int_param(params, "count", 1, 1, 4, "count")
        seed = self._seed(optional_int(params, "seed", "seed"))
        width, height = IMAGE_SIZES[aspect]
        pacer = self._pacer(report, _IMAGE_SECONDS + _EXTRA_IMAGE_SECONDS * (count - 1), fail_at)

        await pacer.step(0.0, "starting")
        first_ref = request.references[0] if request.references else None
        reference = await asyncio.to_thread(decode_media, first_ref, "referenceAssetIds")
        palette = _art.palette_for(request.prompt, request.negative_prompt)
        await pacer.step(0.05, "generating", "composing the scene")
        media = []
        for index in range(count):
            rng = _art.seeded_rng(request.prompt, request.negative_prompt, seed, index, aspect)
            pixels = await asyncio.to_thread(_draw_image, width, height, palette, rng, reference)
            await pacer.step(
                0.05 + 0.85 * (index + 0.6) / count, "generating", f"image {index + 1} of {count}"
            )
            data = await asyncio.to_thread(_art.encode_png, pixels)
            await pacer.step(0.05 + 0.85 * (index + 1) / count, "encoding", f"image {index + 1} of {count}")
            media.append(GeneratedMedia(data, "image/png", width, height))
        await pacer.step(1.0, "finishing")
        return GenerationResult(media, {"images": count})

    async def _video(
        self, request: GenerationRequest, report: ProgressReporter, fail_at: float | None
    ) -> GenerationResult:
        params = request.parameters
        duration = int_param(params, "duration_seconds", 8, 1, 60, "durationSeconds")
        aspect = choice_param(params, "aspect_ratio", "16:9", VIDEO_SIZES, "aspectRatio")
        with_audio = bool_param(params, "generate_audio", "generateAudio")
        resumed = _parse_operation(request.operation_id)
        if resumed is not None:
            seed, started_ms = resumed
            elapsed = max(0.0, time.time() - started_ms / 1000)
        else:
            seed, started_ms, elapsed = self._seed(optional_int(params, "seed", "seed")), None, 0.0
        width, height = VIDEO_SIZES[aspect]
        frame_count = duration * _video.FPS
        planned = _VIDEO_BASE_SECONDS + _VIDEO_SECONDS_PER_SECOND * duration
        pacer = self._pacer(report, planned, fail_at, elapsed)

        operation = None
        if started_ms is None:
            self.operations_started += 1
            operation = f"{_OPERATION_PREFIX}:{seed}:{round(time.time() * 1000)}"
        await pacer.step(0.0, "starting", operation_id=operation)
        first, last, reference = await asyncio.gather(
            asyncio.to_thread(decode_media, request.first_frame, "firstFrameAssetId"),
            asyncio.to_thread(decode_media, request.last_frame, "lastFrameAssetId"),
            asyncio.to_thread(
                decode_media, request.references[0] if request.references else None, "referenceAssetIds"
            ),
        )
        palette = _art.palette_for(request.prompt, request.negative_prompt)
        rng = _art.seeded_rng("video", request.prompt, request.negative_prompt, seed, aspect, duration)
        animator = await asyncio.to_thread(
            _video.FrameAnimator,
            width,
            height,
            frame_count,
            palette,
            rng,
            first=first,
            last=last,
            reference=reference,
        )
        pcm = None
        if with_audio:
            audio_rng = _art.seeded_rng("audio", request.prompt, seed)
            pcm = await asyncio.to_thread(_audio.soundtrack, float(duration), audio_rng)
        await pacer.step(0.04, "generating", "planning the shots")

        # At least ten chunks so short clips still report often; about a second of video each.
        chunks = max(10, duration)
        async with Mp4Encoder(width, height, _video.FPS, pcm) as encoder:
            for chunk in range(chunks):
                lo, hi = chunk * frame_count // chunks, (chunk + 1) * frame_count // chunks
                await encoder.write(await asyncio.to_thread(animator.frames, lo, hi))
                await pacer.step(
                    0.04 + 0.86 * (chunk + 1) / chunks, "generating", f"frame {hi} of {frame_count}"
                )
            await pacer.step(0.93, "encoding")
            data = await encoder.finish()
        await pacer.step(1.0, "finishing")
        media = GeneratedMedia(data, "video/mp4", width, height, float(duration))
        return GenerationResult([media], {"video_seconds": duration})

    async def _text(
        self, request: GenerationRequest, report: ProgressReporter, fail_at: float | None
    ) -> GenerationResult:
        params = request.parameters
        temperature = float_param(params, "temperature", 0.7, 0.0, 2.0, "temperature")
        max_tokens = int_param(params, "max_output_tokens", 1024, 1, 1_000_000, "maxOutputTokens")
        system_prompt = optional_str(params, "system_prompt", "systemPrompt")
        seed = optional_int(params, "seed", "seed")
        pacer = self._pacer(report, _TEXT_SECONDS, fail_at)

        await pacer.step(0.0, "starting")
        # Greedy decoding (temperature 0) is repeatable even without a seed, as with real models.
        if seed is None and temperature > 0:
            seed = self._rng.getrandbits(63)
        rng = random.Random(stable_int("text", request.prompt, system_prompt, seed, temperature))
        text = _text.compose(request.prompt, system_prompt, temperature, max_tokens, rng)
        for fraction in (0.3, 0.6, 0.85):
            await pacer.step(fraction, "generating")
        await pacer.step(1.0, "finishing")
        media = GeneratedMedia(text.encode("utf-8"), "text/plain; charset=utf-8", text=text)
        units = {"input_tokens": count_tokens(system_prompt) + count_tokens(request.prompt)}
        units["output_tokens"] = count_tokens(text)
        return GenerationResult([media], units)

    async def _upscale(
        self, request: GenerationRequest, report: ProgressReporter, fail_at: float | None
    ) -> GenerationResult:
        factor = int_param(request.parameters, "factor", 2, 2, 4, "factor")
        if factor not in (2, 4):
            raise bad_input("factor", "factor must be 2 or 4")
        if request.source is None:
            raise bad_input("assetId", "an upscale needs a source image")
        pacer = self._pacer(report, _UPSCALE_SECONDS, fail_at)

        await pacer.step(0.0, "starting")
        source = await asyncio.to_thread(decode_media, request.source, "assetId", keep_alpha=True)
        assert source is not None
        await pacer.step(0.2, "generating", "reading the source")
        upscaled = await asyncio.to_thread(_enlarge, source, factor)
        await pacer.step(0.7, "generating", f"{upscaled.width}x{upscaled.height}")
        data = await asyncio.to_thread(_art.encode_png, np.asarray(upscaled))
        await pacer.step(0.9, "encoding")
        await pacer.step(1.0, "finishing")
        return GenerationResult(
            [GeneratedMedia(data, "image/png", upscaled.width, upscaled.height)], {"images": 1}
        )


def _parse_operation(operation_id: str | None) -> tuple[int, int] | None:
    """(seed, start in Unix ms) of a local operation id; None for no id or another generator's."""
    if not operation_id:
        return None
    parts = operation_id.split(":")
    if len(parts) != 3 or parts[0] != _OPERATION_PREFIX:
        return None
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None


def _draw_image(
    width: int, height: int, palette: np.ndarray, rng: np.random.Generator, reference: Image.Image | None
) -> np.ndarray:
    pixels = _art.render(width, height, palette, rng)
    return _art.blend_reference(pixels, reference) if reference is not None else pixels


def _enlarge(image: Image.Image, factor: int) -> Image.Image:
    # Capped on the long side: a 4x of a large photo would otherwise need gigabytes.
    ratio = min(float(factor), MAX_UPSCALE_SIDE / max(image.width, image.height))
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    return image.resize(size, Image.Resampling.LANCZOS)
