"""The Generator contract: every adapter in GENERATORS must pass this same suite.

The tests speak only the `domain.ports.Generator` Protocol. To add an adapter, add a factory to
GENERATORS that returns a fast instance of it (the suite asks for short clips and small counts).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import re
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
from PIL import Image

from backends.generators.local import LocalGenerator
from domain.errors import ErrorCode, StudioError
from domain.ports import (
    GenerationRequest,
    GenerationResult,
    Generator,
    InputMedia,
    JobKindName,
    MediaDescriber,
    Progress,
)
from tests.support.vertex_standin import shared_standin

GENERATORS: dict[str, Callable[[], Generator]] = {
    "local": lambda: LocalGenerator(speed=0.0),
    # google-genai against the Vertex AI stand-in started once for the test session.
    "vertex": lambda: shared_standin().generator(),
}

ASPECTS = {"1:1": 1.0, "3:4": 3 / 4, "4:3": 4 / 3, "9:16": 9 / 16, "16:9": 16 / 9}


@pytest.fixture(params=list(GENERATORS))
async def generator(request: pytest.FixtureRequest) -> AsyncIterator[Generator]:
    """Each registered Generator adapter in turn (closed afterwards if it holds connections)."""
    adapter = GENERATORS[request.param]()
    yield adapter
    close = getattr(adapter, "close", None)
    if close is not None:
        await close()


class Recorder:
    """A ProgressReporter that keeps every report and lets a test wait for one."""

    def __init__(self) -> None:
        self.reports: list[Progress] = []
        self._changed = asyncio.Condition()

    async def __call__(self, progress: Progress) -> None:
        async with self._changed:
            self.reports.append(progress)
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[list[Progress]], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self.reports))


async def run(
    generator: Generator, kind: JobKindName, prompt: str = "a lighthouse on a cliff", **kw: Any
) -> GenerationResult:
    params = kw.pop("parameters", {})
    return await generator.generate(
        GenerationRequest(kind, "test-model", prompt, parameters=params, **kw), Recorder()
    )


@dataclass
class Probe:
    duration: float
    video: str
    width: int
    height: int
    pix_fmt: str
    has_audio: bool


def probe(data: bytes) -> Probe:
    """What the bundled ffmpeg sees when it decodes `data` completely (an ffprobe stand-in)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        path.write_bytes(data)
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path), "-f", "null", "-"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stderr
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", out).groups()  # type: ignore[union-attr]
    video = re.search(r"Stream #0:\d.*?Video: (\w+).*?, (\w+)\(.*?, (\d+)x(\d+)", out)
    assert video, out
    return Probe(
        duration=int(h) * 3600 + int(m) * 60 + float(s),
        video=video.group(1),
        pix_fmt=video.group(2),
        width=int(video.group(3)),
        height=int(video.group(4)),
        has_audio=re.search(r"Stream #0:\d.*?Audio: aac", out) is not None,
    )


def solid_png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def test_adapter_satisfies_the_protocol(generator: Generator) -> None:
    assert isinstance(generator, Generator)


@pytest.mark.parametrize("aspect", sorted(ASPECTS))
async def test_image_is_a_png_with_the_requested_aspect_ratio(generator: Generator, aspect: str) -> None:
    result = await run(generator, "IMAGE", parameters={"aspect_ratio": aspect})

    [media] = result.media
    image = Image.open(io.BytesIO(media.data))
    assert (image.format, media.mime_type) == ("PNG", "image/png")
    assert (image.width, image.height) == (media.width, media.height)
    assert image.width / image.height == pytest.approx(ASPECTS[aspect], rel=0.02)
    assert result.units.get("images") == 1


async def test_image_count_is_honoured(generator: Generator) -> None:
    result = await run(generator, "IMAGE", parameters={"count": 3, "seed": 7})

    assert len(result.media) == 3
    assert len({m.data for m in result.media}) == 3
    assert result.units.get("images") == 3


async def test_same_seed_and_prompt_give_identical_images(generator: Generator) -> None:
    params = {"seed": 1234, "aspect_ratio": "16:9"}
    first = await run(generator, "IMAGE", "a red kite over dunes", parameters=params)
    again = await run(generator, "IMAGE", "a red kite over dunes", parameters=params)
    other = await run(generator, "IMAGE", "a red kite over dunes", parameters={**params, "seed": 1235})

    assert first.media[0].data == again.media[0].data
    assert first.media[0].data != other.media[0].data


@pytest.mark.parametrize(
    ("duration", "aspect", "audio"),
    [(3, "16:9", False), (2, "9:16", True)],
    ids=["landscape", "portrait+audio"],
)
async def test_video_is_a_playable_mp4_of_the_requested_duration(
    generator: Generator, duration: int, aspect: str, audio: bool
) -> None:
    params = {"duration_seconds": duration, "aspect_ratio": aspect, "generate_audio": audio}
    result = await run(generator, "VIDEO", "waves rolling onto a beach", parameters=params)

    [media] = result.media
    assert media.mime_type == "video/mp4"
    assert media.data[4:8] == b"ftyp"
    info = probe(media.data)
    assert (info.video, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.width, info.height) == (media.width, media.height)
    assert info.width / info.height == pytest.approx(ASPECTS[aspect], rel=0.02)
    assert info.duration == pytest.approx(duration, abs=0.1)
    assert media.duration_seconds == pytest.approx(duration, abs=0.1)
    assert info.has_audio is audio
    assert result.units.get("video_seconds") == duration


async def test_text_answers_within_the_token_limit(generator: Generator) -> None:
    params = {"max_output_tokens": 12, "temperature": 0.5, "system_prompt": "You are a helpful guide."}
    result = await run(generator, "TEXT", "Describe a walk through an autumn forest", parameters=params)

    [media] = result.media
    assert media.mime_type.startswith("text/plain")
    assert media.text and media.data.decode("utf-8") == media.text
    assert 0 < len(media.text.split()) <= 12
    assert 0 < result.units["output_tokens"] <= 12
    assert result.units["input_tokens"] > 0


async def test_upscale_enlarges_the_source_by_the_factor(generator: Generator) -> None:
    source = InputMedia(solid_png((30, 120, 200), (80, 60)), "image/png", asset_id="asset-1")
    result = await run(generator, "UPSCALE", "", parameters={"factor": 2}, source=source)

    [media] = result.media
    image = Image.open(io.BytesIO(media.data))
    assert (image.format, image.size) == ("PNG", (160, 120))
    assert (media.width, media.height) == (160, 120)
    assert result.units.get("images") == 1


async def test_upscale_without_a_source_is_bad_user_input(generator: Generator) -> None:
    with pytest.raises(StudioError) as caught:
        await run(generator, "UPSCALE", "", parameters={"factor": 2})

    assert caught.value.code is ErrorCode.BAD_USER_INPUT
    assert caught.value.details.get("field") == "assetId"


@pytest.mark.parametrize(
    ("kind", "params"),
    [("IMAGE", {}), ("VIDEO", {"duration_seconds": 1}), ("TEXT", {}), ("UPSCALE", {"factor": 2})],
)
async def test_progress_strictly_increases_to_one(
    generator: Generator, kind: JobKindName, params: dict[str, Any]
) -> None:
    source = InputMedia(solid_png((200, 80, 40)), "image/png") if kind == "UPSCALE" else None
    recorder = Recorder()
    await generator.generate(
        GenerationRequest(kind, "test-model", "a quiet harbour", parameters=params, source=source), recorder
    )

    fractions = [p.fraction for p in recorder.reports]
    assert len(fractions) >= 2
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert all(a < b for a, b in itertools.pairwise(fractions))
    assert fractions[-1] == 1.0
    assert all(p.stage for p in recorder.reports)


async def test_cancellation_stops_the_job_promptly(generator: Generator) -> None:
    recorder = Recorder()
    request = GenerationRequest("VIDEO", "test-model", "a slow sunrise", parameters={"duration_seconds": 8})
    task = asyncio.create_task(generator.generate(request, recorder))
    await recorder.wait_until(lambda reports: len(reports) >= 2)

    loop = asyncio.get_running_loop()
    cancelled_at = loop.time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert loop.time() - cancelled_at < 1.0
    reports_at_cancel = len(recorder.reports)
    await asyncio.sleep(0.2)
    assert len(recorder.reports) == reports_at_cancel


async def test_refused_prompt_is_content_blocked(generator: Generator) -> None:
    with pytest.raises(StudioError) as caught:
        await run(generator, "IMAGE", "a portrait [[blocked]] please")

    assert caught.value.code is ErrorCode.CONTENT_BLOCKED
    assert caught.value.retryable is False


class _Crashed(Exception):
    """The process running the generation died right after the operation id was stored."""


def _operations_started(generator: Generator) -> int:
    """Upstream video operations begun so far: the stand-in's predictLongRunning calls for Vertex."""
    if isinstance(generator, LocalGenerator):
        return generator.operations_started
    return shared_standin().count("predictLongRunning")


async def test_a_resumed_video_follows_its_operation_and_starts_no_other(generator: Generator) -> None:
    request = GenerationRequest(
        "VIDEO", "test-model", "a lantern drifting downstream", parameters={"duration_seconds": 1, "seed": 9}
    )
    before = _operations_started(generator)
    stored: list[str] = []

    async def crash_once_stored(progress: Progress) -> None:
        if progress.operation_id:
            stored.append(progress.operation_id)
            raise _Crashed

    with pytest.raises(_Crashed):
        await generator.generate(request, crash_once_stored)
    (operation,) = stored
    assert _operations_started(generator) == before + 1

    recorder = Recorder()
    result = await generator.generate(dataclasses.replace(request, operation_id=operation), recorder)

    [media] = result.media
    assert media.data[4:8] == b"ftyp"
    assert probe(media.data).duration == pytest.approx(1, abs=0.1)
    assert result.units.get("video_seconds") == 1
    assert _operations_started(generator) == before + 1, "resuming started a second (billed) operation"
    assert {p.operation_id for p in recorder.reports} <= {None, operation}
    fractions = [p.fraction for p in recorder.reports]
    assert all(a < b for a, b in itertools.pairwise(fractions)) and fractions[-1] == 1.0


# ---------------------------------------------------------------- describe (tags for new media)


def test_adapter_can_describe_media(generator: Generator) -> None:
    assert isinstance(generator, MediaDescriber)


async def test_describe_tags_an_image_with_its_subject_and_colour(generator: Generator) -> None:
    assert isinstance(generator, MediaDescriber)

    tags = await generator.describe(solid_png((200, 30, 40)), "image/png", "a fox in the snow")

    assert "fox" in tags and "red" in tags
    assert all(tag == tag.lower().strip() and 0 < len(tag) <= 40 for tag in tags)
    assert len(tags) == len(set(tags))


async def test_describe_tags_a_video_by_its_frames(generator: Generator) -> None:
    assert isinstance(generator, MediaDescriber)
    clip = await run(generator, "VIDEO", "a green meadow", parameters={"duration_seconds": 1})

    tags = await generator.describe(clip.media[0].data, "video/mp4", None)

    assert tags and set(tags) & {"green", "yellow", "blue", "brown", "gray", "white", "black", "orange"}
