"""The `Generator` on Google's models through Vertex AI (google-genai 3.x, imported lazily).

- IMAGE: Gemini image models through `generate_content` (one call per image, concurrently), or
  Imagen through `generate_images` when the model id starts with `imagen-`.
- VIDEO: Veo through `generate_videos`, then polling the long-running operation.
- TEXT: Gemini through `generate_content`; tokens from `usage_metadata`.
- UPSCALE: Imagen upscale through `upscale_image`.
- `describe`: Gemini (`models.tagging`) looks at an image or video and answers a JSON list of tags.

Every upstream call runs with a timeout, is retried with exponential backoff and jitter on
429/500/502/503/504, connection failures and timeouts only, and goes through a circuit breaker per
model (see `_vertex_resilience`). Safety refusals become CONTENT_BLOCKED (never retried); a 400
becomes BAD_USER_INPUT; unusable answers and exhausted retries become UPSTREAM_UNAVAILABLE.

The model called is `request.model` (the catalog's choice); `models` names the model per kind for
requests that carry none.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from domain.errors import ErrorCode, StudioError, bad_input
from domain.ports import (
    GeneratedMedia,
    GenerationRequest,
    GenerationResult,
    InputMedia,
    Progress,
    ProgressReporter,
)

from . import _vertex_responses as answers
from ._params import bool_param, choice_param, int_param, optional_int, optional_str
from ._vertex_describe import tagging_request, tags_of
from ._vertex_media import image_mime, image_size, probe_mp4
from ._vertex_resilience import BreakerSettings, CircuitBreaker, Malformed, RetryPolicy, UpstreamCaller

if TYPE_CHECKING:
    from google import genai
    from google.auth.credentials import Credentials
    from google.genai import types

__all__ = [
    "BreakerSettings",
    "FetchUri",
    "RetryPolicy",
    "VertexGenerator",
    "VertexModels",
    "VertexTimeouts",
]

log = logging.getLogger("genmedia.vertex")

T = TypeVar("T")

IMAGE_ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
VIDEO_ASPECT_RATIOS = ("16:9", "9:16")
_SEED_MODULUS = 2**31  # Vertex seeds are int32

# Progress milestones.
_GENERATING = 0.05
_VIDEO_CAP = 0.94  # while a Veo operation runs, progress stays below "downloading"
_DOWNLOADING = 0.95

FetchUri = Callable[[str], Awaitable[bytes]]
"""Downloads a `gs://` URI Veo left the video at (when the project makes Veo write to Cloud Storage)."""


@dataclass(frozen=True)
class VertexModels:
    """The model id per kind, for requests that name none (ids come from settings)."""

    image: str
    video: str
    text: str
    upscale: str
    tagging: str | None = None  # the Gemini model that describes media (`describe`); default `text`
    embedding: str = "text-embedding-005"  # GENMEDIA_EMBEDDINGS=vertex: similarTo's vectors

    def for_kind(self, kind: str) -> str:
        return {"IMAGE": self.image, "VIDEO": self.video, "TEXT": self.text, "UPSCALE": self.upscale}[kind]


@dataclass(frozen=True)
class VertexTimeouts:
    """Seconds allowed for: one generateContent / predict / predictLongRunning call (`call`), one
    operation poll (`poll`), a whole Veo operation from submission to done (`video`), and the
    download of a `gs://` result through `fetch_uri` (`download`)."""

    call_seconds: float = 120.0
    poll_seconds: float = 30.0
    video_seconds: float = 900.0
    download_seconds: float = 120.0


class VertexGenerator:
    """A `Generator` calling Imagen, Gemini and Veo on Vertex AI.

    `base_url` points the SDK at another Vertex endpoint (a stand-in, a proxy); static credentials
    (`credentials`, else a fixed bearer token) are then used instead of Application Default
    Credentials. `fetch_uri` downloads Veo results that come back as `gs://` URIs instead of inline
    bytes; without it such a result fails with UPSTREAM_UNAVAILABLE.
    """

    def __init__(
        self,
        *,
        project: str | None,
        location: str,
        base_url: str | None = None,
        credentials: Credentials | None = None,
        models: VertexModels,
        timeouts: VertexTimeouts | None = None,
        retry: RetryPolicy | None = None,
        breaker: BreakerSettings | None = None,
        poll_interval: float = 5.0,
        typical_video_seconds: float = 60.0,
        fetch_uri: FetchUri | None = None,
    ) -> None:
        if poll_interval < 0:
            raise ValueError("poll_interval must be >= 0")
        if typical_video_seconds <= 0:
            raise ValueError("typical_video_seconds must be > 0")
        if base_url is not None and not project:
            raise ValueError("a base_url needs an explicit project")
        self._project = project
        self._location = location
        self._base_url = base_url.rstrip("/") if base_url else None
        self._credentials = credentials
        self._models = models
        self._timeouts = timeouts or VertexTimeouts()
        self._poll_interval = poll_interval
        self._typical_video = typical_video_seconds
        self._fetch_uri = fetch_uri
        self._caller = UpstreamCaller(retry or RetryPolicy(), breaker or BreakerSettings())
        # Kept for the generator's lifetime: a garbage-collected genai.Client closes its connections.
        self._client: genai.Client | None = None
        self._client_lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def breaker(self, model: str) -> CircuitBreaker:
        """The circuit breaker guarding `model` (for health pages and tests)."""
        return self._caller.breaker(model)

    async def close(self) -> None:
        """Close the SDK's HTTP connections (the app's shutdown should call this)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aio.aclose()
            client.close()

    async def _genai(self) -> genai.Client:
        if self._client is None:
            # Importing the SDK and (without a base_url) finding credentials may block: not on the loop.
            try:
                await asyncio.to_thread(self._build_client)
            except Exception as exc:  # no SDK, no credentials, no project
                log.exception("could not set up the Vertex AI client")
                raise StudioError(
                    ErrorCode.UPSTREAM_UNAVAILABLE,
                    f"The Vertex AI client could not be set up: {type(exc).__name__}: {exc}",
                    retryable=False,
                ) from exc
        assert self._client is not None
        return self._client

    def _build_client(self) -> None:
        with self._client_lock:
            if self._client is not None:
                return
            from google import genai
            from google.genai import types

            longest = max(self._timeouts.call_seconds, self._timeouts.poll_seconds)
            options = types.HttpOptions(
                api_version="v1beta1",
                # A backstop only: each call is bounded by its own asyncio timeout first.
                timeout=int(longest * 1000) + 5000,
            )
            credentials = self._credentials
            if self._base_url is not None:
                options.base_url = self._base_url
                if credentials is None:
                    from google.oauth2.credentials import Credentials

                    credentials = Credentials(token="local")
            self._client = genai.Client(
                vertexai=True,
                project=self._project,
                location=self._location,
                credentials=credentials,
                http_options=options,
            )

    # ------------------------------------------------------------ entry point

    async def generate(self, request: GenerationRequest, report: ProgressReporter) -> GenerationResult:
        """Generate the media `request` asks for, calling `report` as work advances."""
        handlers: dict[str, Callable[[GenerationRequest, str, _Progress], Awaitable[GenerationResult]]] = {
            "IMAGE": self._image,
            "VIDEO": self._video,
            "TEXT": self._text,
            "UPSCALE": self._upscale,
        }
        handler = handlers.get(request.kind)
        if handler is None:
            raise bad_input("kind", f"unknown generation kind {request.kind!r}")
        model = request.model or self._models.for_kind(request.kind)
        return await handler(request, model, _Progress(report))

    async def describe(self, media: bytes, mime_type: str, prompt: str | None = None) -> list[str]:
        """Tags for `media` from one Gemini call (the media inline, a JSON list as the answer)."""
        model = self._models.tagging or self._models.text
        client = await self._genai()
        contents, config = tagging_request(media, mime_type, prompt)

        async def call() -> list[str]:
            response = await client.aio.models.generate_content(model=model, contents=contents, config=config)
            return tags_of(response)

        return await self._caller.call(model, "generateContent", call, timeout=self._timeouts.call_seconds)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Text embeddings from the Vertex embedding model (the Embedder port, for similarTo)."""
        client = await self._genai()
        model = self._models.embedding
        contents: list[Any] = list(texts)

        async def call() -> list[list[float]]:
            response = await client.aio.models.embed_content(model=model, contents=contents)
            vectors = [list(item.values or ()) for item in response.embeddings or ()]
            if len(vectors) != len(texts) or not all(vectors):
                raise Malformed(f"{len(vectors)} embeddings for {len(texts)} texts")
            return vectors

        return await self._caller.call(model, "predict", call, timeout=self._timeouts.call_seconds)

    # ------------------------------------------------------------ image

    async def _image(self, request: GenerationRequest, model: str, progress: _Progress) -> GenerationResult:
        params = request.parameters
        aspect = choice_param(params, "aspect_ratio", "1:1", IMAGE_ASPECT_RATIOS, "aspectRatio")
        count = int_param(params, "count", 1, 1, 8, "count")
        seed = optional_int(params, "seed", "seed")
        await progress(0.0, "starting")
        client = await self._genai()
        if model.startswith("imagen-"):
            media = await self._imagen(client, request, model, aspect, count, seed, progress)
        else:
            media = await self._gemini_images(client, request, model, aspect, count, seed, progress)
        await progress(1.0, "finishing")
        return GenerationResult(media, {"images": len(media)})

    async def _gemini_images(
        self,
        client: genai.Client,
        request: GenerationRequest,
        model: str,
        aspect: str,
        count: int,
        seed: int | None,
        progress: _Progress,
    ) -> list[GeneratedMedia]:
        from google.genai import types

        text = request.prompt
        if request.negative_prompt:
            text = f"{text}\n\nAvoid: {request.negative_prompt}"
        parts = [types.Part.from_bytes(data=ref.data, mime_type=ref.mime_type) for ref in request.references]
        parts.append(types.Part.from_text(text=text))
        contents = [types.Content(role="user", parts=parts)]
        finished = 0
        await progress(_GENERATING, "generating", message=f"{count} image(s)")

        async def one(index: int) -> GeneratedMedia:
            nonlocal finished
            config = types.GenerateContentConfig(
                response_modalities=["IMAGE"],
                image_config=types.ImageConfig(aspect_ratio=aspect),
                candidate_count=1,
                # One call per image: a seed per call keeps each image repeatable and each distinct.
                seed=None if seed is None else (seed + index) % _SEED_MODULUS,
                automatic_continuation=False,
                automatic_function_calling=_no_afc(),
            )

            async def call() -> tuple[bytes, str | None]:
                response = await client.aio.models.generate_content(
                    model=model, contents=contents, config=config
                )
                candidate = answers.candidates_of(response)[0]
                answers.check_refusal(candidate)
                images = answers.inline_images(candidate)
                if not images:
                    raise Malformed(
                        f"no image in the answer (finish reason {answers.finish_reason(candidate)})"
                    )
                return images[0]

            data, declared = await self._caller.call(
                model, "generateContent", call, timeout=self._timeouts.call_seconds
            )
            finished += 1
            await progress(
                _GENERATING + (1.0 - _GENERATING - 0.05) * finished / count,
                "generating",
                message=f"image {finished} of {count}",
            )
            return _image_media(data, declared)

        return await _all_or_nothing([one(index) for index in range(count)])

    async def _imagen(
        self,
        client: genai.Client,
        request: GenerationRequest,
        model: str,
        aspect: str,
        count: int,
        seed: int | None,
        progress: _Progress,
    ) -> list[GeneratedMedia]:
        from google.genai import types

        if request.references:
            raise bad_input("referenceAssetIds", f"model {model} does not take reference images")
        config = types.GenerateImagesConfig(
            number_of_images=count,
            aspect_ratio=aspect,
            negative_prompt=request.negative_prompt or None,
            seed=seed,
            # Imagen refuses a seed while it watermarks; and without include_rai_reason a filtered
            # image simply goes missing instead of saying why.
            add_watermark=False if seed is not None else None,
            include_rai_reason=True,
            output_mime_type="image/png",
        )

        async def call() -> list[tuple[bytes, str | None]]:
            response = await client.aio.models.generate_images(
                model=model, prompt=request.prompt, config=config
            )
            return answers.predicted_images(response.generated_images or [], "image")

        await progress(_GENERATING, "generating", message=f"{count} image(s)")
        images = await self._caller.call(model, "predict", call, timeout=self._timeouts.call_seconds)
        if len(images) < count:
            log.warning("imagen filtered %d of %d images", count - len(images), count, extra={"model": model})
        return [_image_media(data, declared) for data, declared in images]

    # ------------------------------------------------------------ upscale

    async def _upscale(self, request: GenerationRequest, model: str, progress: _Progress) -> GenerationResult:
        from google.genai import types

        factor = int_param(request.parameters, "factor", 2, 2, 4, "factor")
        if factor not in (2, 4):
            raise bad_input("factor", "factor must be 2 or 4")
        if request.source is None:
            raise bad_input("assetId", "an upscale needs a source image")
        source = request.source
        await progress(0.0, "starting")
        client = await self._genai()
        config = types.UpscaleImageConfig(include_rai_reason=True, output_mime_type="image/png")

        async def call() -> list[tuple[bytes, str | None]]:
            response = await client.aio.models.upscale_image(
                model=model, image=_sdk_image(source), upscale_factor=f"x{factor}", config=config
            )
            return answers.predicted_images(response.generated_images or [], "upscaled image")

        await progress(_GENERATING, "generating", message=f"x{factor}")
        images = await self._caller.call(model, "predict", call, timeout=self._timeouts.call_seconds)
        await progress(1.0, "finishing")
        data, declared = images[0]
        return GenerationResult([_image_media(data, declared)], {"images": 1})

    # ------------------------------------------------------------ text

    async def _text(self, request: GenerationRequest, model: str, progress: _Progress) -> GenerationResult:
        from google.genai import types

        params = request.parameters
        temperature = _optional_number(params, "temperature", 0.0, 2.0, "temperature")
        max_tokens = params.get("max_output_tokens")
        if max_tokens is not None:
            max_tokens = int_param(params, "max_output_tokens", 1, 1, 1_000_000, "maxOutputTokens")
        system_prompt = optional_str(params, "system_prompt", "systemPrompt")
        seed = optional_int(params, "seed", "seed")
        await progress(0.0, "starting")
        client = await self._genai()
        config = types.GenerateContentConfig(
            system_instruction=system_prompt or None,
            temperature=temperature,
            max_output_tokens=max_tokens,
            seed=None if seed is None else seed % _SEED_MODULUS,
            candidate_count=1,
            automatic_continuation=False,
            automatic_function_calling=_no_afc(),
        )

        async def call() -> tuple[str, Mapping[str, float]]:
            response = await client.aio.models.generate_content(
                model=model, contents=request.prompt, config=config
            )
            candidate = answers.candidates_of(response)[0]
            answers.check_refusal(candidate)
            text = answers.text_of(candidate)
            if not text:
                if answers.finish_reason(candidate) == "MAX_TOKENS":
                    raise StudioError(
                        ErrorCode.BAD_USER_INPUT,
                        "The model used up maxOutputTokens before answering; allow more tokens.",
                        retryable=False,
                        field="maxOutputTokens",
                    )
                raise Malformed(f"no text in the answer (finish reason {answers.finish_reason(candidate)})")
            return text, _token_units(response)

        await progress(_GENERATING, "generating")
        text, units = await self._caller.call(
            model, "generateContent", call, timeout=self._timeouts.call_seconds
        )
        await progress(1.0, "finishing")
        media = GeneratedMedia(text.encode("utf-8"), "text/plain; charset=utf-8", text=text)
        return GenerationResult([media], units)

    # ------------------------------------------------------------ video

    async def _video(self, request: GenerationRequest, model: str, progress: _Progress) -> GenerationResult:
        from google.genai import types

        params = request.parameters
        duration = int_param(params, "duration_seconds", 8, 1, 60, "durationSeconds")
        aspect = choice_param(params, "aspect_ratio", "16:9", VIDEO_ASPECT_RATIOS, "aspectRatio")
        audio = bool_param(params, "generate_audio", "generateAudio")
        seed = optional_int(params, "seed", "seed")
        await progress(0.0, "starting")
        client = await self._genai()
        source = types.GenerateVideosSource(
            prompt=request.prompt or None,
            image=_sdk_image(request.first_frame) if request.first_frame else None,
        )
        references = [
            types.VideoGenerationReferenceImage(
                image=_sdk_image(ref), reference_type=types.VideoGenerationReferenceType.ASSET
            )
            for ref in request.references
        ]
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=duration,
            aspect_ratio=aspect,
            generate_audio=audio,
            seed=None if seed is None else seed % _SEED_MODULUS,
            negative_prompt=request.negative_prompt or None,
            last_frame=_sdk_image(request.last_frame) if request.last_frame else None,
            reference_images=references or None,
        )
        started = time.monotonic()

        async def submit() -> tuple[types.GenerateVideosOperation, types.Video | None]:
            operation = await client.aio.models.generate_videos(model=model, source=source, config=config)
            return operation, _settle(model, operation)

        video: types.Video | None
        if request.operation_id:
            # An earlier run of this job started the operation: follow it, never start (and bill) another.
            operation, video = (
                types.GenerateVideosOperation.model_validate({"name": request.operation_id}),
                None,
            )
            log.info("resuming a Veo operation", extra={"model": model, "operation": request.operation_id})
        else:
            # Not idempotent: resubmitting after a lost answer could start (and bill) a second video.
            operation, video = await self._caller.call(
                model, "predictLongRunning", submit, timeout=self._timeouts.call_seconds, idempotent=False
            )
            if operation.name:
                await progress.started(operation.name)
        while video is None:
            elapsed = time.monotonic() - started
            if elapsed > self._timeouts.video_seconds:
                raise StudioError(
                    ErrorCode.UPSTREAM_UNAVAILABLE,
                    f"Video generation did not finish within {self._timeouts.video_seconds:g} s.",
                    retryable=True,
                )
            eta = max(self._typical_video - elapsed, 0.0)
            await progress(min(elapsed / self._typical_video, _VIDEO_CAP), "generating", eta)
            await asyncio.sleep(self._poll_interval)

            async def poll(
                current: types.GenerateVideosOperation = operation,
            ) -> tuple[types.GenerateVideosOperation, types.Video | None]:
                polled = await client.aio.operations.get(current)
                if not polled.name:  # keep polling the operation we know, whatever the echo says
                    polled = polled.model_copy(update={"name": current.name})
                return polled, _settle(model, polled)

            operation, video = await self._caller.call(
                model, "fetchPredictOperation", poll, timeout=self._timeouts.poll_seconds
            )

        await progress(_DOWNLOADING, "downloading")
        data = video.video_bytes or await self._download(model, video.uri)
        info = probe_mp4(data)
        await progress(1.0, "finishing")
        media = GeneratedMedia(
            data,
            video.mime_type or "video/mp4",
            info.width,
            info.height,
            info.duration_seconds if info.duration_seconds is not None else float(duration),
        )
        return GenerationResult([media], {"video_seconds": duration})

    async def _download(self, model: str, uri: str | None) -> bytes:
        if not uri:
            raise StudioError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"Vertex AI model {model} sent an unusable answer: a video without bytes or URI",
                retryable=True,
            )
        if self._fetch_uri is None:
            raise StudioError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"Vertex AI stored the video at {uri}, and this generator has no fetch_uri to download it.",
                retryable=False,
            )
        try:
            async with asyncio.timeout(self._timeouts.download_seconds):
                data = await self._fetch_uri(uri)
        except StudioError:
            raise
        except Exception as exc:
            raise StudioError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"Could not download the generated video from {uri}: {type(exc).__name__}",
                retryable=True,
            ) from exc
        if not data:
            raise StudioError(
                ErrorCode.UPSTREAM_UNAVAILABLE, f"The generated video at {uri} is empty.", retryable=True
            )
        return data


# ---------------------------------------------------------------- helpers


class _Progress:
    """Reports progress that only ever goes up (repeats and regressions are dropped)."""

    def __init__(self, report: ProgressReporter) -> None:
        self._report = report
        self._last = -1.0

    async def __call__(
        self, fraction: float, stage: str, eta: float | None = None, *, message: str | None = None
    ) -> None:
        fraction = round(min(max(fraction, 0.0), 1.0), 4)
        if fraction <= self._last:
            return
        self._last = fraction
        if fraction >= 1.0:
            eta = 0.0
        await self._report(Progress(fraction, stage, None if eta is None else round(eta, 3), message))

    async def started(self, operation_id: str) -> None:
        """Report the upstream operation just started (a step up, so it is never dropped): the runner
        stores its id before polling begins."""
        self._last = fraction = round(min(max(self._last, 0.0) + 0.01, _VIDEO_CAP), 4)
        await self._report(Progress(fraction, "generating", operation_id=operation_id))


def _settle(model: str, operation: Any) -> Any:
    """The finished operation's video (None while it runs); raises for failures and refusals."""
    if not operation.done:
        return None
    if operation.error:
        raise answers.operation_error(model, operation.error)
    result = operation.response or operation.result
    if result is None:
        raise Malformed("a finished operation without a result")
    videos = [item.video for item in result.generated_videos or [] if item.video is not None]
    usable = [video for video in videos if video.video_bytes or video.uri]
    if usable:
        return usable[0]
    refusal = answers.video_refusal(result)
    if refusal is not None:
        raise refusal
    raise Malformed("a finished operation without a video")


def _no_afc() -> types.AutomaticFunctionCallingConfig:
    """No tools are offered, so no function-calling loop (and no log line about one per call)."""
    from google.genai import types

    return types.AutomaticFunctionCallingConfig(disable=True)


def _sdk_image(media: InputMedia) -> types.Image:
    from google.genai import types

    return types.Image(image_bytes=media.data, mime_type=media.mime_type)


def _image_media(data: bytes, declared: str | None) -> GeneratedMedia:
    width, height = image_size(data)
    if width is None:
        raise StudioError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            "Vertex AI sent image bytes that are not an image.",
            retryable=True,
        )
    return GeneratedMedia(data, image_mime(data, declared), width, height)


def _token_units(response: Any) -> dict[str, float]:
    usage = getattr(response, "usage_metadata", None)
    prompt = getattr(usage, "prompt_token_count", None) or 0
    output = (getattr(usage, "candidates_token_count", None) or 0) + (
        getattr(usage, "thoughts_token_count", None) or 0
    )
    return {"input_tokens": float(prompt), "output_tokens": float(output)}


def _optional_number(params: Mapping[str, Any], name: str, lo: float, hi: float, field: str) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise bad_input(field, f"{field} must be a number from {lo} to {hi}")
    return float(value)


async def _all_or_nothing(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Run `calls` concurrently; on the first failure cancel the rest and raise that failure."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
