"""Behaviour only the local generator has: injected faults, pacing, frame control, colours."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from backends.generators import _pacing
from backends.generators.local import LocalGenerator
from domain.errors import ErrorCode, StudioError
from domain.ports import GenerationRequest, GenerationResult, InputMedia, JobKindName, Progress

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


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
    generator: LocalGenerator,
    kind: JobKindName,
    prompt: str = "a garden",
    recorder: Recorder | None = None,
    **kw: Any,
) -> GenerationResult:
    params = kw.pop("parameters", {})
    request = GenerationRequest(kind, "local", prompt, parameters=params, **kw)
    return await generator.generate(request, recorder or Recorder())


def png(colour: tuple[int, ...], size: tuple[int, int] = (64, 48), mode: str = "RGB") -> InputMedia:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "PNG")
    return InputMedia(buf.getvalue(), "image/png")


def mean_rgb(data: bytes) -> np.ndarray:
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
    mean: np.ndarray = pixels.reshape(-1, 3).mean(axis=0)
    return mean


def decode_frames(mp4: bytes, width: int, height: int) -> np.ndarray:
    """All frames of an MP4 as an (n, h, w, 3) uint8 array, decoded by the bundled ffmpeg."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        path.write_bytes(mp4)
        cmd = [FFMPEG, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        raw = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
    frames: np.ndarray = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    return frames


def ffmpeg_children() -> list[int]:
    """Live ffmpeg processes started by this test process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"ffmpeg" in cmdline:
            found.append(int(entry.name))
    return found


async def test_fail_rate_one_raises_upstream_unavailable_partway() -> None:
    recorder = Recorder()
    with pytest.raises(StudioError) as caught:
        await run(LocalGenerator(speed=0, fail_rate=1.0, rng_seed=1), "IMAGE", recorder=recorder)

    assert caught.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert caught.value.retryable is True
    assert recorder.reports and recorder.reports[-1].fraction < 1.0


async def test_seeded_fault_injection_repeats() -> None:
    async def outcomes(generator: LocalGenerator) -> list[bool]:
        results = []
        for _ in range(8):
            try:
                await run(generator, "TEXT")
                results.append(True)
            except StudioError:
                results.append(False)
        return results

    first = await outcomes(LocalGenerator(speed=0, fail_rate=0.5, rng_seed=42))
    again = await outcomes(LocalGenerator(speed=0, fail_rate=0.5, rng_seed=42))

    assert first == again
    assert True in first and False in first


async def test_speed_zero_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(delay: float) -> None:
        raise AssertionError(f"slept {delay}s at speed 0")

    monkeypatch.setattr(_pacing, "asyncio", SimpleNamespace(sleep=no_sleep))
    recorder = Recorder()
    await run(LocalGenerator(speed=0), "IMAGE", recorder=recorder)

    assert recorder.reports[0].fraction == 0.0 and recorder.reports[-1].fraction == 1.0


async def test_paced_image_takes_its_planned_time_with_five_reports() -> None:
    # Speed 20: the 1.5 s image is planned at 75 ms; the pacer may run late but never early.
    recorder = Recorder()
    started = time.monotonic()
    await run(LocalGenerator(speed=20), "IMAGE", recorder=recorder)

    assert time.monotonic() - started >= 1.5 / 20 * 0.9
    assert len(recorder.reports) >= 5
    assert recorder.reports[0].eta_seconds is not None and recorder.reports[0].eta_seconds > 0
    assert recorder.reports[-1].eta_seconds == 0.0


async def test_paced_video_reports_at_least_ten_times() -> None:
    recorder = Recorder()
    await run(LocalGenerator(speed=50), "VIDEO", recorder=recorder, parameters={"duration_seconds": 1})

    assert len(recorder.reports) >= 10
    assert [r.stage for r in recorder.reports][-2:] == ["encoding", "finishing"]


async def test_video_starts_on_the_first_frame_and_ends_on_the_last() -> None:
    red, blue = (220, 30, 30), (30, 40, 220)
    result = await run(
        LocalGenerator(speed=0),
        "VIDEO",
        "green hills",
        parameters={"duration_seconds": 2, "seed": 3},
        first_frame=png(red),
        last_frame=png(blue),
    )

    media = result.media[0]
    assert media.width and media.height
    frames = decode_frames(media.data, media.width, media.height)
    assert len(frames) == 48
    assert np.abs(frames[0].reshape(-1, 3).mean(axis=0) - red).max() < 12
    assert np.abs(frames[-1].reshape(-1, 3).mean(axis=0) - blue).max() < 12
    middle = frames[len(frames) // 2].reshape(-1, 3).mean(axis=0)
    assert np.abs(middle - red).max() > 30 and np.abs(middle - blue).max() > 30


async def test_cancelling_a_video_kills_ffmpeg() -> None:
    recorder = Recorder()
    request = GenerationRequest(
        "VIDEO", "local", "rain", parameters={"duration_seconds": 8, "generate_audio": True}
    )
    task = asyncio.create_task(LocalGenerator(speed=2).generate(request, recorder))
    await recorder.wait_until(lambda reports: bool(reports) and reports[-1].fraction > 0.1)
    assert ffmpeg_children(), "ffmpeg should be encoding by now"

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ffmpeg_children() == []


async def test_cancelling_at_any_moment_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    request = GenerationRequest(
        "VIDEO", "local", "snow", parameters={"duration_seconds": 2, "generate_audio": True}
    )
    for delay in (0.0, 0.001, 0.003, 0.01, 0.03, 0.06, 0.1):
        task = asyncio.create_task(LocalGenerator(speed=0).generate(request, Recorder()))
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert await asyncio.to_thread(os.listdir, tmp_path) == []
    assert ffmpeg_children() == []


async def test_cancelling_while_the_work_dir_is_made_leaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    real_mkdtemp = tempfile.mkdtemp
    tasks: list[asyncio.Task[Any]] = []

    def mkdtemp_then_cancel(
        suffix: str | None = None, prefix: str | None = None, dir: str | None = None
    ) -> str:
        made = real_mkdtemp(suffix, prefix, str(tmp_path))
        loop.call_soon_threadsafe(tasks[0].cancel)
        return made

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp_then_cancel)
    request = GenerationRequest("VIDEO", "local", "dusk", parameters={"duration_seconds": 1})
    tasks.append(asyncio.create_task(LocalGenerator(speed=0).generate(request, Recorder())))
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]

    assert await asyncio.to_thread(os.listdir, tmp_path) == []


@pytest.mark.parametrize(
    ("size", "factor", "expected"),
    [((100, 50), 2, (200, 100)), ((100, 50), 4, (400, 200)), ((3000, 1500), 4, (8192, 4096))],
)
async def test_upscale_sizes(size: tuple[int, int], factor: int, expected: tuple[int, int]) -> None:
    result = await run(
        LocalGenerator(speed=0), "UPSCALE", "", parameters={"factor": factor}, source=png((9, 9, 9), size)
    )

    assert Image.open(io.BytesIO(result.media[0].data)).size == expected


async def test_upscale_keeps_transparency() -> None:
    source = png((10, 200, 10, 128), (20, 20), mode="RGBA")
    result = await run(LocalGenerator(speed=0), "UPSCALE", "", parameters={"factor": 2}, source=source)

    assert Image.open(io.BytesIO(result.media[0].data)).mode == "RGBA"


async def test_undecodable_upscale_source_is_bad_user_input() -> None:
    with pytest.raises(StudioError) as caught:
        await run(LocalGenerator(speed=0), "UPSCALE", "", source=InputMedia(b"not an image", "image/png"))

    assert (caught.value.code, caught.value.details.get("field")) == (ErrorCode.BAD_USER_INPUT, "assetId")


@pytest.mark.parametrize(("word", "channel"), [("red", 0), ("green", 1), ("blue", 2)])
async def test_colour_words_dominate_the_image(word: str, channel: int) -> None:
    result = await run(
        LocalGenerator(speed=0), "IMAGE", f"a {word} cathedral in the mist", parameters={"seed": 5}
    )

    mean = mean_rgb(result.media[0].data)
    others = [mean[c] for c in range(3) if c != channel]
    assert mean[channel] > max(others) + 30


async def test_negative_prompt_removes_a_colour() -> None:
    result = await run(
        LocalGenerator(speed=0),
        "IMAGE",
        "red and blue stripes",
        negative_prompt="red",
        parameters={"seed": 2},
    )

    mean = mean_rgb(result.media[0].data)
    assert mean[2] > mean[0] + 30


async def test_first_reference_is_blended_in() -> None:
    generator = LocalGenerator(speed=0)
    plain = await run(generator, "IMAGE", "a black cat", parameters={"seed": 9})
    with_ref = await run(
        generator, "IMAGE", "a black cat", parameters={"seed": 9}, references=[png((255, 255, 255))]
    )

    assert mean_rgb(with_ref.media[0].data).mean() > mean_rgb(plain.media[0].data).mean() + 20


async def test_unseeded_images_differ() -> None:
    generator = LocalGenerator(speed=0)
    first, second = await run(generator, "IMAGE"), await run(generator, "IMAGE")

    assert first.media[0].data != second.media[0].data


async def test_text_is_repeatable_for_a_seed_and_counts_tokens() -> None:
    params = {"seed": 11, "temperature": 1.0, "max_output_tokens": 200, "system_prompt": "Answer briefly."}
    generator = LocalGenerator(speed=0)
    first = await run(generator, "TEXT", "Why do lighthouses use lenses?", parameters=params)
    again = await run(generator, "TEXT", "Why do lighthouses use lenses?", parameters=params)

    assert first.media[0].text == again.media[0].text
    assert "lighthouses" in (first.media[0].text or "")
    assert first.units == {"input_tokens": 7, "output_tokens": len((first.media[0].text or "").split())}


async def test_invalid_aspect_ratio_is_bad_user_input() -> None:
    with pytest.raises(StudioError) as caught:
        await run(LocalGenerator(speed=0), "VIDEO", parameters={"aspect_ratio": "1:1"})

    assert (caught.value.code, caught.value.details.get("field")) == (ErrorCode.BAD_USER_INPUT, "aspectRatio")


def test_rejects_negative_speed() -> None:
    with pytest.raises(ValueError):
        LocalGenerator(speed=-1)
