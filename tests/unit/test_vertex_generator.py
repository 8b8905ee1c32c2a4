"""The Vertex AI generator against the local Vertex stand-in: what google-genai sends, how refusals,
failures, slow answers and malformed bodies end, and the retry and circuit-breaker behaviour."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from PIL import Image

from backends.generators._vertex_resilience import BreakerSettings, CircuitBreaker, RetryPolicy
from backends.generators.vertex import VertexGenerator, VertexTimeouts
from domain.errors import ErrorCode, StudioError
from domain.ports import GenerationRequest, GenerationResult, InputMedia, JobKindName, Progress
from tests.support.vertex_standin import MODELS, VertexStandIn, vertex_standin

IMAGE, IMAGEN, VIDEO, TEXT, UPSCALE = (
    MODELS["image"],
    MODELS["imagen"],
    MODELS["video"],
    MODELS["text"],
    MODELS["upscale"],
)
FAST_RETRY = RetryPolicy(
    attempts=5, initial_backoff_seconds=0.01, max_backoff_seconds=0.02, jitter_seconds=0.01
)

MakeGenerator = Callable[..., VertexGenerator]

# google-genai flags Imagen generation as deprecated; the adapter still supports Imagen model ids.
pytestmark = pytest.mark.filterwarnings("ignore:The generate_images method is deprecated")


@pytest.fixture(scope="module")
def standin_server() -> Iterator[VertexStandIn]:
    with vertex_standin() as standin:
        yield standin


@pytest.fixture
def standin(standin_server: VertexStandIn) -> Iterator[VertexStandIn]:
    standin_server.reset()
    yield standin_server
    standin_server.reset()


@pytest.fixture
async def make(standin: VertexStandIn) -> AsyncIterator[MakeGenerator]:
    """Generators aimed at the stand-in (fast retries, polling and recovery), closed afterwards."""
    made: list[VertexGenerator] = []

    def build(**overrides: Any) -> VertexGenerator:
        options: dict[str, Any] = {"retry": FAST_RETRY}
        options.update(overrides)
        generator: VertexGenerator = standin.generator(**options)
        made.append(generator)
        return generator

    yield build
    for generator in made:
        await generator.close()


class Reports:
    """A ProgressReporter that keeps every report."""

    def __init__(self) -> None:
        self.items: list[Progress] = []

    async def __call__(self, progress: Progress) -> None:
        self.items.append(progress)

    @property
    def fractions(self) -> list[float]:
        return [p.fraction for p in self.items]

    @property
    def stages(self) -> list[str]:
        return [p.stage for p in self.items]


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def media(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> InputMedia:
    return InputMedia(png(colour, size), "image/png", asset_id=f"asset-{colour}")


async def generate(
    generator: VertexGenerator,
    kind: JobKindName,
    model: str,
    prompt: str = "a lighthouse on a cliff",
    reports: Reports | None = None,
    **kw: Any,
) -> GenerationResult:
    params = kw.pop("parameters", {})
    request = GenerationRequest(kind, model, prompt, parameters=params, **kw)
    return await generator.generate(request, reports or Reports())


async def failure(call: Awaitable[Any]) -> StudioError:
    with pytest.raises(StudioError) as caught:
        await call
    return caught.value


# ---------------------------------------------------------------- every media kind


async def test_gemini_image_sends_aspect_seed_and_references_once_per_image(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    refs = (media((250, 0, 0)), media((0, 0, 250)))
    reports = Reports()
    result = await generate(
        make(),
        "IMAGE",
        IMAGE,
        "a red kite",
        reports,
        negative_prompt="clouds",
        parameters={"aspect_ratio": "4:3", "count": 3, "seed": 10},
        references=refs,
    )

    calls = standin.calls_to("generateContent")
    assert len(calls) == 3
    assert sorted(c.generation_config["seed"] for c in calls) == [10, 11, 12]
    for call in calls:
        config = call.generation_config
        assert config["responseModalities"] == ["IMAGE"]
        assert config["imageConfig"] == {"aspectRatio": "4:3"}
        assert config["candidateCount"] == 1
        assert call.inline_images() == [ref.data for ref in refs]
        assert "a red kite" in call.text() and "clouds" in call.text()
        assert call.authorization == "Bearer local"
        assert (call.project, call.location) == ("standin-project", "us-central1")
    assert len(result.media) == 3 and len({m.data for m in result.media}) == 3
    for item in result.media:
        image = Image.open(io.BytesIO(item.data))
        assert (image.format, item.mime_type) == ("PNG", "image/png")
        assert (item.width, item.height) == image.size
        assert image.width / image.height == pytest.approx(4 / 3, rel=0.02)
    assert result.units == {"images": 3}
    assert reports.stages[0] == "starting" and reports.stages[-1] == "finishing"
    assert "generating" in reports.stages
    assert all(a < b for a, b in itertools.pairwise(reports.fractions))


async def test_imagen_model_generates_through_predict(make: MakeGenerator, standin: VertexStandIn) -> None:
    result = await generate(
        make(),
        "IMAGE",
        IMAGEN,
        negative_prompt="people",
        parameters={"aspect_ratio": "9:16", "count": 2, "seed": 99},
    )

    [call] = standin.calls_to("predict")
    assert call.model == IMAGEN
    assert call.instance == {"prompt": "a lighthouse on a cliff"}
    params = call.parameters
    assert (params["sampleCount"], params["aspectRatio"], params["seed"]) == (2, "9:16", 99)
    assert params["negativePrompt"] == "people"
    assert params["includeRaiReason"] is True
    assert params["addWatermark"] is False  # Imagen refuses a seed while watermarking
    assert standin.count("generateContent") == 0
    assert len(result.media) == 2 and result.units == {"images": 2}
    assert all(
        m.width and m.height and m.width / m.height == pytest.approx(9 / 16, rel=0.02) for m in result.media
    )


async def test_imagen_takes_no_reference_images(make: MakeGenerator, standin: VertexStandIn) -> None:
    error = await failure(generate(make(), "IMAGE", IMAGEN, references=(media((1, 2, 3)),)))

    assert error.code is ErrorCode.BAD_USER_INPUT
    assert error.details.get("field") == "referenceAssetIds"
    assert standin.count() == 0


async def test_text_sends_system_prompt_temperature_limit_and_seed(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    params = {"system_prompt": "Answer briefly.", "temperature": 0.3, "max_output_tokens": 20, "seed": 5}
    reports = Reports()
    result = await generate(make(), "TEXT", TEXT, "Why is the sky blue?", reports, parameters=params)

    [call] = standin.calls_to("generateContent")
    assert call.system_instruction() == "Answer briefly."
    config = call.generation_config
    assert (config["temperature"], config["maxOutputTokens"], config["seed"]) == (0.3, 20, 5)
    assert "responseModalities" not in config
    [item] = result.media
    assert item.text and item.data.decode() == item.text and item.mime_type.startswith("text/plain")
    assert result.units == {"input_tokens": 7, "output_tokens": len(item.text.split())}
    assert reports.stages == ["starting", "generating", "finishing"]


async def test_upscale_sends_the_source_and_factor(make: MakeGenerator, standin: VertexStandIn) -> None:
    source = media((10, 200, 30), (40, 30))
    result = await generate(make(), "UPSCALE", UPSCALE, "", parameters={"factor": 4}, source=source)

    [call] = standin.calls_to("predict")
    assert call.parameters["mode"] == "upscale"
    assert call.parameters["upscaleConfig"] == {"upscaleFactor": "x4"}
    assert call.parameters["includeRaiReason"] is True
    from tests.support.vertex_standin import _b64

    assert _b64(call.instance["image"]["bytesBase64Encoded"]) == source.data
    [item] = result.media
    assert (item.width, item.height) == (160, 120)
    assert Image.open(io.BytesIO(item.data)).size == (160, 120)
    assert result.units == {"images": 1}


async def test_video_sends_frames_references_and_parameters(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    first, last, ref = media((220, 20, 20)), media((20, 20, 220)), media((20, 220, 20))
    result = await generate(
        make(),
        "VIDEO",
        VIDEO,
        "a paper boat on a river",
        negative_prompt="rain",
        parameters={"duration_seconds": 2, "aspect_ratio": "9:16", "generate_audio": True, "seed": 77},
        first_frame=first,
        last_frame=last,
        references=(ref,),
    )

    from tests.support.vertex_standin import _b64

    [call] = standin.calls_to("predictLongRunning")
    instance = call.instance
    assert instance["prompt"] == "a paper boat on a river"
    assert _b64(instance["image"]["bytesBase64Encoded"]) == first.data
    assert _b64(instance["lastFrame"]["bytesBase64Encoded"]) == last.data
    [reference] = instance["referenceImages"]
    assert _b64(reference["image"]["bytesBase64Encoded"]) == ref.data
    assert reference["referenceType"] == "ASSET"
    params = call.parameters
    assert (params["durationSeconds"], params["aspectRatio"], params["generateAudio"]) == (2, "9:16", True)
    assert (params["seed"], params["negativePrompt"], params["sampleCount"]) == (77, "rain", 1)
    polls = standin.calls_to("fetchPredictOperation")
    assert len(polls) >= 2
    assert {p.body["operationName"] for p in polls} == {polls[0].body["operationName"]}
    [item] = result.media
    assert item.mime_type == "video/mp4" and item.data[4:8] == b"ftyp"
    assert (item.width, item.height) == (360, 640)
    assert item.duration_seconds == pytest.approx(2, abs=0.1)
    assert result.units == {"video_seconds": 2}


async def test_video_progress_rises_over_many_polls_and_stays_below_download(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    standin.video_polls = 8
    reports = Reports()
    await generate(
        make(poll_interval=0.03, typical_video_seconds=0.2),
        "VIDEO",
        VIDEO,
        reports=reports,
        parameters={"duration_seconds": 1},
    )

    assert standin.count("fetchPredictOperation") >= 8
    generating = [p for p in reports.items if p.stage == "generating"]
    assert len(generating) >= 4
    assert all(p.fraction < 0.95 for p in generating)
    assert generating[-1].fraction == pytest.approx(0.94)  # capped: the typical time has passed
    assert reports.stages[0] == "starting"
    assert reports.stages[-2:] == ["downloading", "finishing"]
    assert all(a < b for a, b in itertools.pairwise(reports.fractions))
    assert reports.fractions[-1] == 1.0


async def test_video_left_at_a_gs_uri_is_downloaded_with_fetch_uri(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    fetched: list[str] = []

    async def fetch(uri: str) -> bytes:
        fetched.append(uri)
        return await standin.fetch(uri)

    standin.video_uri_next()
    result = await generate(make(fetch_uri=fetch), "VIDEO", VIDEO, parameters={"duration_seconds": 1})

    assert len(fetched) == 1 and fetched[0].startswith("gs://")
    assert result.media[0].data == standin.objects[fetched[0]]


async def test_video_at_a_gs_uri_without_fetch_uri_is_upstream_unavailable(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    standin.video_uri_next()
    error = await failure(generate(make(fetch_uri=None), "VIDEO", VIDEO, parameters={"duration_seconds": 1}))

    assert error.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert "gs://" in error.message and "fetch_uri" in error.message


@pytest.mark.parametrize(
    ("code", "expected", "retryable"),
    [(13, ErrorCode.UPSTREAM_UNAVAILABLE, True), (3, ErrorCode.BAD_USER_INPUT, False)],
    ids=["internal", "invalid-argument"],
)
async def test_failed_video_operation(
    make: MakeGenerator, standin: VertexStandIn, code: int, expected: ErrorCode, retryable: bool
) -> None:
    standin.operation_error_next(code, "Something went wrong.")
    error = await failure(generate(make(), "VIDEO", VIDEO, parameters={"duration_seconds": 1}))

    assert (error.code, error.retryable) == (expected, retryable)
    assert "Something went wrong." in error.message
    assert standin.count("predictLongRunning") == 1


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("shape", "kind", "model", "method", "words"),
    [
        ("prompt_blocked", "IMAGE", IMAGE, "generateContent", "prompt"),
        ("prompt_blocked", "TEXT", TEXT, "generateContent", "prompt"),
        ("finish_safety", "TEXT", TEXT, "generateContent", "safety"),
        ("image_safety", "IMAGE", IMAGE, "generateContent", "image"),
        ("prohibited_content", "IMAGE", IMAGE, "generateContent", "prohibited"),
        ("imagen_rai", "IMAGE", IMAGEN, "predict", "usage guidelines"),
        ("imagen_rai", "UPSCALE", UPSCALE, "predict", "usage guidelines"),
        ("veo_rai", "VIDEO", VIDEO, "predictLongRunning", "usage guidelines"),
    ],
)
async def test_refusals_are_content_blocked_with_a_reason_and_never_retried(
    make: MakeGenerator,
    standin: VertexStandIn,
    shape: str,
    kind: JobKindName,
    model: str,
    method: str,
    words: str,
) -> None:
    standin.refuse_next(shape)
    source = media((5, 5, 5)) if kind == "UPSCALE" else None
    params = {"factor": 2} if kind == "UPSCALE" else {"duration_seconds": 1} if kind == "VIDEO" else {}
    error = await failure(generate(make(), kind, model, parameters=params, source=source))

    assert error.code is ErrorCode.CONTENT_BLOCKED
    assert error.retryable is False
    assert words in error.message.lower()
    assert standin.count(method) == 1
    assert error.message[0].isupper()


async def test_a_blocked_candidate_does_not_trip_the_breaker(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    generator = make(breaker=BreakerSettings(failure_threshold=1, recovery_seconds=60))
    standin.refuse_next("finish_safety", count=3)
    for _ in range(3):
        assert (await failure(generate(generator, "TEXT", TEXT))).code is ErrorCode.CONTENT_BLOCKED

    assert generator.breaker(TEXT).state == "closed"
    await generate(generator, "TEXT", TEXT)


# ---------------------------------------------------------------- retries


async def test_a_429_and_503_storm_is_retried_to_one_result(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    standin.fail_next(2, 429)
    standin.fail_next(2, 503)
    result = await generate(make(), "TEXT", TEXT)

    assert len(result.media) == 1
    statuses = [call.status for call in standin.calls_to("generateContent")]
    assert statuses == [429, 429, 503, 503, 200]


async def test_video_polls_ride_out_transient_failures(make: MakeGenerator, standin: VertexStandIn) -> None:
    standin.fail_next(2, 502, "fetchPredictOperation")
    result = await generate(make(), "VIDEO", VIDEO, parameters={"duration_seconds": 1})

    assert result.media[0].mime_type == "video/mp4"
    assert standin.count("predictLongRunning") == 1
    assert [c.status for c in standin.calls_to("fetchPredictOperation")][:2] == [502, 502]


async def test_exhausted_retries_are_upstream_unavailable(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    standin.fail_next(10, 503)
    retry = RetryPolicy(attempts=3, initial_backoff_seconds=0.01, max_backoff_seconds=0.02, jitter_seconds=0)
    error = await failure(generate(make(retry=retry), "IMAGE", IMAGE))

    assert error.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert error.retryable is True
    assert "503" in error.message
    assert standin.count("generateContent") == 3


async def test_retries_stop_at_the_total_time_budget(make: MakeGenerator, standin: VertexStandIn) -> None:
    standin.fail_next(100, 500)
    retry = RetryPolicy(
        attempts=100,
        initial_backoff_seconds=0.05,
        max_backoff_seconds=0.05,
        jitter_seconds=0,
        total_seconds=0.3,
    )
    started = time.monotonic()
    error = await failure(generate(make(retry=retry), "TEXT", TEXT))

    assert error.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert time.monotonic() - started < 1.0
    assert 1 <= standin.count("generateContent") <= 7


@pytest.mark.parametrize(
    ("status", "expected", "retryable"),
    [
        (400, ErrorCode.BAD_USER_INPUT, False),
        (403, ErrorCode.UPSTREAM_UNAVAILABLE, False),
        (404, ErrorCode.UPSTREAM_UNAVAILABLE, False),
    ],
)
async def test_client_errors_are_never_retried(
    make: MakeGenerator, standin: VertexStandIn, status: int, expected: ErrorCode, retryable: bool
) -> None:
    standin.fail_next(1, status)
    error = await failure(generate(make(), "IMAGE", IMAGE))

    assert (error.code, error.retryable) == (expected, retryable)
    assert standin.count("generateContent") == 1


async def test_an_invalid_argument_from_the_model_is_bad_user_input(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    # The stand-in, like Veo, refuses a last frame without a first frame.
    error = await failure(
        generate(make(), "VIDEO", VIDEO, parameters={"duration_seconds": 1}, last_frame=media((1, 1, 1)))
    )

    assert error.code is ErrorCode.BAD_USER_INPUT
    assert "lastFrame" in error.message
    assert standin.count("predictLongRunning") == 1


async def test_a_slow_upstream_times_out_and_is_upstream_unavailable(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    standin.delay_next(2.0, 2)
    retry = RetryPolicy(attempts=2, initial_backoff_seconds=0.01, max_backoff_seconds=0.01, jitter_seconds=0)
    generator = make(retry=retry, timeouts=VertexTimeouts(call_seconds=0.2))
    started = time.monotonic()
    error = await failure(generate(generator, "TEXT", TEXT))

    assert error.code is ErrorCode.UPSTREAM_UNAVAILABLE and error.retryable
    assert "0.2 s" in error.message
    assert time.monotonic() - started < 1.5
    assert standin.count("generateContent") == 2


async def test_a_slow_call_then_a_fast_one_succeeds(make: MakeGenerator, standin: VertexStandIn) -> None:
    standin.delay_next(2.0, 1)
    result = await generate(make(timeouts=VertexTimeouts(call_seconds=0.3)), "TEXT", TEXT)

    assert result.media[0].text
    assert standin.count("generateContent") == 2


async def test_a_video_submission_is_retried_after_a_503_but_not_after_a_timeout(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    generator = make(timeouts=VertexTimeouts(call_seconds=0.3))
    standin.fail_next(1, 503, "predictLongRunning")
    await generate(generator, "VIDEO", VIDEO, parameters={"duration_seconds": 1})
    assert [c.status for c in standin.calls_to("predictLongRunning")] == [503, 200]

    standin.reset()
    standin.delay_next(2.0, 1, "predictLongRunning")  # it may have started a video: never resubmit
    error = await failure(generate(generator, "VIDEO", VIDEO, parameters={"duration_seconds": 1}))

    assert error.code is ErrorCode.UPSTREAM_UNAVAILABLE and error.retryable
    assert standin.count("predictLongRunning") == 1


async def test_an_unreachable_endpoint_is_retried_then_upstream_unavailable(make: MakeGenerator) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    retry = RetryPolicy(attempts=2, initial_backoff_seconds=0.01, max_backoff_seconds=0.01, jitter_seconds=0)
    error = await failure(generate(make(base_url=f"http://127.0.0.1:{port}", retry=retry), "TEXT", TEXT))

    assert error.code is ErrorCode.UPSTREAM_UNAVAILABLE and error.retryable
    assert "connection failed" in error.message


# ---------------------------------------------------------------- malformed answers


@pytest.mark.parametrize(
    ("shape", "kind", "model", "method"),
    [
        ("not_json", "TEXT", TEXT, "generateContent"),
        ("no_candidates", "TEXT", TEXT, "generateContent"),
        ("no_image", "IMAGE", IMAGE, "generateContent"),
        ("no_predictions", "IMAGE", IMAGEN, "predict"),
        ("no_video", "VIDEO", VIDEO, "predictLongRunning"),
    ],
)
async def test_malformed_answers_are_upstream_unavailable(
    make: MakeGenerator, standin: VertexStandIn, shape: str, kind: JobKindName, model: str, method: str
) -> None:
    standin.malformed_next(shape)
    params = {"duration_seconds": 1} if kind == "VIDEO" else {}
    error = await failure(generate(make(), kind, model, parameters=params))

    assert error.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert "unusable answer" in error.message
    assert standin.count(method) == 1


# ---------------------------------------------------------------- circuit breaker


async def test_breaker_opens_fails_fast_then_probes_and_recovers(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    generator = make(
        retry=RetryPolicy(attempts=1), breaker=BreakerSettings(failure_threshold=3, recovery_seconds=0.3)
    )
    standin.fail_next(3, 503)
    for _ in range(3):
        assert (await failure(generate(generator, "TEXT", TEXT))).code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert generator.breaker(TEXT).state == "open"

    fast = await failure(generate(generator, "TEXT", TEXT))
    assert fast.code is ErrorCode.UPSTREAM_UNAVAILABLE and fast.retryable
    assert "paused" in fast.message and fast.retry_after is not None
    assert standin.count("generateContent") == 3  # no upstream call while open

    # Another model is not affected.
    await generate(generator, "IMAGE", IMAGE)
    assert generator.breaker(IMAGE).state == "closed"

    await asyncio.sleep(0.35)
    assert generator.breaker(TEXT).state == "half_open"
    result = await generate(generator, "TEXT", TEXT)  # the probe
    assert result.media[0].text
    assert standin.count("generateContent") == 5  # 3 failures, the image, the probe
    assert generator.breaker(TEXT).state == "closed"


async def test_a_failed_probe_reopens_the_breaker(make: MakeGenerator, standin: VertexStandIn) -> None:
    generator = make(
        retry=RetryPolicy(attempts=1), breaker=BreakerSettings(failure_threshold=2, recovery_seconds=0.2)
    )
    standin.fail_next(3, 500)
    for _ in range(2):
        await failure(generate(generator, "TEXT", TEXT))
    await asyncio.sleep(0.25)
    await failure(generate(generator, "TEXT", TEXT))  # the probe fails

    assert generator.breaker(TEXT).state == "open"
    assert "paused" in (await failure(generate(generator, "TEXT", TEXT))).message
    assert standin.count("generateContent") == 3


def test_breaker_state_machine_with_a_fake_clock() -> None:
    now = [0.0]
    breaker = CircuitBreaker("m", BreakerSettings(failure_threshold=2, recovery_seconds=10), lambda: now[0])
    breaker.acquire()
    breaker.failure()
    breaker.acquire()
    breaker.success()  # a success resets the count: failures must be consecutive
    breaker.acquire()
    breaker.failure()
    assert breaker.state == "closed"
    breaker.acquire()
    breaker.failure()
    assert breaker.state == "open"
    now[0] = 9.9
    with pytest.raises(Exception, match="circuit open"):
        breaker.acquire()
    now[0] = 10.0
    breaker.acquire()  # the one probe
    with pytest.raises(Exception, match="circuit open"):
        breaker.acquire()  # a second caller while the probe runs
    breaker.release()  # the probe was cancelled: let another one through
    breaker.acquire()
    breaker.success()
    assert breaker.state == "closed"


# ---------------------------------------------------------------- plumbing


async def test_every_upstream_call_is_logged_with_model_and_latency(
    make: MakeGenerator, standin: VertexStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    standin.fail_next(1, 503)
    with caplog.at_level(logging.INFO, logger="genmedia.vertex"):
        await generate(make(), "TEXT", TEXT)

    records = [r for r in caplog.records if r.getMessage().startswith("vertex generateContent")]
    assert [r.getMessage() for r in records] == [
        "vertex generateContent http 503 UNAVAILABLE (attempt 1)",
        "vertex generateContent ok (attempt 2)",
    ]
    assert all(getattr(r, "model", None) == TEXT for r in records)
    assert all(isinstance(getattr(r, "seconds", None), float) for r in records)


async def test_every_upstream_call_is_counted_and_timed_in_metrics(
    make: MakeGenerator, standin: VertexStandIn
) -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"model": TEXT, "method": "generateContent", **labels}) or 0.0

    before_ok, before_503 = (
        sample("genmedia_upstream_calls_total", outcome="ok"),
        sample("genmedia_upstream_calls_total", outcome="http_503"),
    )
    before_timed = sample("genmedia_upstream_call_seconds_count")
    standin.fail_next(1, 503)
    await generate(make(), "TEXT", TEXT)
    assert sample("genmedia_upstream_calls_total", outcome="ok") == before_ok + 1
    assert sample("genmedia_upstream_calls_total", outcome="http_503") == before_503 + 1
    assert sample("genmedia_upstream_call_seconds_count") == before_timed + 2


async def test_one_sdk_client_is_kept_for_the_generator(make: MakeGenerator, standin: VertexStandIn) -> None:
    generator = make()
    await generate(generator, "TEXT", TEXT)
    client = generator._client
    await generate(generator, "TEXT", TEXT)

    assert client is not None and generator._client is client


def test_a_base_url_needs_a_project() -> None:
    from backends.generators.vertex import VertexModels

    with pytest.raises(ValueError, match="project"):
        VertexGenerator(
            project=None,
            location="us-central1",
            base_url="http://127.0.0.1:1",
            models=VertexModels("a", "b", "c", "d"),
        )
