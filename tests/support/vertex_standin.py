"""A local stand-in for Vertex AI's generative endpoints, speaking the REST shapes google-genai sends.

Served by Starlette + uvicorn from a thread of the test process on a free 127.0.0.1 port:

- `POST /v1beta1/projects/P/locations/L/publishers/google/models/M:generateContent` — Gemini: an
  image per candidate (`responseModalities` with IMAGE, `imageConfig.aspectRatio`,
  `candidateCount`, `seed`, reference images as `inlineData` parts) or text
  (`systemInstruction`, `temperature`, `maxOutputTokens`, `seed`; `usageMetadata` counts words),
  or, asked for `application/json` about inline media (`describe`), a JSON list of tags: the text
  part's key words and the media's dominant colours, as the local generator reads them.
- `:predict` — Imagen generation (`instances[0].prompt`, `parameters.sampleCount`, `aspectRatio`,
  `seed` (refused while `addWatermark` is on, as Imagen does), `negativePrompt`,
  `includeRaiReason`) and upscaling (`parameters.mode == "upscale"`, `upscaleConfig.upscaleFactor`).
- `:predictLongRunning` — Veo: returns an operation name; the video renders in the background.
- `:fetchPredictOperation` — `{"operationName": ...}`: a running operation omits `done`; an
  operation finishes once it has been polled `video_polls` times and its video is ready.

Media are real PNG / MP4 (H.264, AAC with `generateAudio`) made by the local procedural generator,
base64-encoded as the API does; the same seed and prompt give the same bytes. A prompt containing
`[[blocked]]` is refused in each endpoint's own way. Every request is recorded (`calls`) with its
JSON body, so tests can assert what the SDK sent. Tests can script the next calls: fail them with
an HTTP status, delay them, answer with each refusal shape or with malformed bodies, make Veo store
the result at a `gs://` URI (served from `objects`) or fail the operation.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from backends.generators.local import BLOCK_MARKER, LocalGenerator
from domain.errors import ErrorCode, StudioError
from domain.ports import GenerationRequest, GenerationResult, InputMedia, JobKindName, Progress

PROJECT = "standin-project"
LOCATION = "us-central1"
MODELS = {
    "image": "gemini-3.1-flash-image",
    "imagen": "imagen-4.0-generate-001",
    "video": "veo-3.1-generate-001",
    "text": "gemini-3-flash",
    "upscale": "imagen-4.0-upscale-preview",
}

_PATH = re.compile(
    r"/v1beta1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)"
)
METHODS = ("generateContent", "predict", "predictLongRunning", "fetchPredictOperation")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_VIDEO_RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"

# Refusal shapes, and the method each one answers.
REFUSALS = {
    "prompt_blocked": "generateContent",  # promptFeedback.blockReason, no candidates
    "finish_safety": "generateContent",  # candidate finishReason SAFETY
    "image_safety": "generateContent",  # candidate finishReason IMAGE_SAFETY
    "prohibited_content": "generateContent",  # candidate finishReason PROHIBITED_CONTENT
    "imagen_rai": "predict",  # predictions [{raiFilteredReason}] (Imagen generate or upscale)
    "veo_rai": "predictLongRunning",  # finished operation: raiMediaFilteredCount/Reasons, no videos
}
# Malformed answers, and the method each one answers (None: whichever is called next).
MALFORMED = {
    "not_json": None,  # HTTP 200 with an HTML body
    "no_candidates": "generateContent",  # neither candidates nor promptFeedback
    "no_image": "generateContent",  # a candidate with only a text part
    "no_predictions": "predict",  # {} from Imagen
    "no_video": "predictLongRunning",  # finished operation with an empty response
}
_RAI_REASON = (
    "Unable to show generated images. All images were filtered out because they violated Vertex AI's "
    "usage guidelines. You will not be charged for blocked images. Support codes: 58061214"
)
_VEO_REASON = (
    "The prompt could not be submitted. This prompt contains words that violate Vertex AI's usage "
    "guidelines. Support codes: 90789179"
)


@dataclass
class VertexCall:
    """One request as the stand-in received it."""

    method: str
    model: str
    project: str
    location: str
    body: dict[str, Any]
    authorization: str | None
    status: int | None = None  # None while the answer is pending (delayed)

    @property
    def instance(self) -> dict[str, Any]:
        instances = self.body.get("instances") or [{}]
        first: dict[str, Any] = instances[0]
        return first

    @property
    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = self.body.get("parameters") or {}
        return params

    @property
    def generation_config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.body.get("generationConfig") or {}
        return config

    def parts(self) -> list[dict[str, Any]]:
        return [part for content in self.body.get("contents") or [] for part in content.get("parts") or []]

    def text(self) -> str:
        return "\n".join(part["text"] for part in self.parts() if "text" in part)

    def inline_images(self) -> list[bytes]:
        return [_b64(part["inlineData"]["data"]) for part in self.parts() if "inlineData" in part]

    def inline_media(self) -> list[tuple[bytes, str]]:
        """(bytes, mime type) of every inline part, images and videos alike."""
        return [
            # google-genai spells the key `mime_type` here (the REST API reads both spellings).
            (
                _b64(part["inlineData"]["data"]),
                part["inlineData"].get("mimeType") or part["inlineData"].get("mime_type", ""),
            )
            for part in self.parts()
            if "inlineData" in part
        ]

    def system_instruction(self) -> str | None:
        parts = (self.body.get("systemInstruction") or {}).get("parts") or []
        text = " ".join(part.get("text", "") for part in parts).strip()
        return text or None


@dataclass
class _Rule:
    """A scripted answer for the next `remaining` calls of `methods` (None: any method)."""

    methods: frozenset[str] | None
    remaining: int
    status: int | None = None
    delay: float = 0.0
    refusal: str | None = None
    malformed: str | None = None
    video_uri: bool = False
    operation_error: tuple[int, str] | None = None


@dataclass
class _Operation:
    name: str
    model: str
    polls_needed: int
    task: asyncio.Task[GenerationResult] | None
    outcome: _Rule | None
    polls: int = 0


@dataclass
class VertexStandIn:
    """The running stand-in: its base URL (what `GENMEDIA_VERTEX_BASE_URL` takes), its calls, its script."""

    base_url: str = ""
    video_polls: int = 2  # polls before an operation may report done
    calls: list[VertexCall] = field(default_factory=list)
    objects: dict[str, bytes] = field(default_factory=dict)  # gs:// URI -> bytes, for fetch_uri
    _rules: list[_Rule] = field(default_factory=list)
    _operations: dict[str, _Operation] = field(default_factory=dict)
    _tasks: set[asyncio.Task[GenerationResult]] = field(default_factory=set)  # renders kept alive
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: LocalGenerator = field(default_factory=lambda: LocalGenerator(speed=0.0))
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _server: Any = None
    _thread: threading.Thread | None = None

    # ------------------------------------------------------------ scripting

    def reset(self) -> None:
        """Forget calls, scripts and operations; operations finish after 2 polls again."""
        with self._lock:
            self.calls.clear()
            self._rules.clear()
            self.objects.clear()
            self._operations.clear()
            self.video_polls = 2

    def fail_next(self, count: int, status: int = 503, *methods: str) -> None:
        """Answer the next `count` calls (of `methods`, default any) with HTTP `status`."""
        self._add(_Rule(_methods(methods), count, status=status))

    def delay_next(self, seconds: float, count: int = 1, *methods: str) -> None:
        """Hold the next `count` calls (of `methods`) for `seconds` before answering normally."""
        self._add(_Rule(_methods(methods), count, delay=seconds))

    def refuse_next(self, shape: str, count: int = 1) -> None:
        """Answer the next `count` calls of the shape's method with a refusal (see REFUSALS)."""
        self._add(_Rule(frozenset({REFUSALS[shape]}), count, refusal=shape))

    def malformed_next(self, shape: str, count: int = 1) -> None:
        """Answer the next `count` calls with a malformed body (see MALFORMED)."""
        method = MALFORMED[shape]
        self._add(_Rule(None if method is None else frozenset({method}), count, malformed=shape))

    def video_uri_next(self) -> None:
        """Make the next Veo operation leave its video at a gs:// URI (bytes in `objects`)."""
        self._add(_Rule(frozenset({"predictLongRunning"}), 1, video_uri=True))

    def operation_error_next(self, code: int = 13, message: str = "Internal error.") -> None:
        """Make the next Veo operation finish with `error: {code, message}`."""
        self._add(_Rule(frozenset({"predictLongRunning"}), 1, operation_error=(code, message)))

    def calls_to(self, method: str) -> list[VertexCall]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def count(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for call in self.calls if method is None or call.method == method)

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def _take(self, method: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and (rule.methods is None or method in rule.methods):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    return rule
        return None

    # ------------------------------------------------------------ a generator pointed here

    def generator(self, **overrides: Any) -> Any:
        """A VertexGenerator aimed at this stand-in, with fast polling and tiny backoffs."""
        from backends.generators.vertex import (
            BreakerSettings,
            RetryPolicy,
            VertexGenerator,
            VertexModels,
            VertexTimeouts,
        )

        options: dict[str, Any] = {
            "project": PROJECT,
            "location": LOCATION,
            "base_url": self.base_url,
            "models": VertexModels(MODELS["image"], MODELS["video"], MODELS["text"], MODELS["upscale"]),
            "timeouts": VertexTimeouts(call_seconds=30, poll_seconds=10, video_seconds=60),
            "retry": RetryPolicy(
                attempts=4, initial_backoff_seconds=0.01, max_backoff_seconds=0.05, jitter_seconds=0.01
            ),
            "breaker": BreakerSettings(failure_threshold=50, recovery_seconds=0.5),
            "poll_interval": 0.05,
            "typical_video_seconds": 1.0,
            "fetch_uri": self.fetch,
        }
        options.update(overrides)
        return VertexGenerator(**options)

    async def fetch(self, uri: str) -> bytes:
        """A `fetch_uri` that reads the stand-in's gs:// objects."""
        with self._lock:
            data = self.objects.get(uri)
        if data is None:
            raise FileNotFoundError(uri)
        return data

    # ------------------------------------------------------------ serving

    def start(self) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST"])])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="vertex-standin", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Vertex stand-in did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None

    async def _endpoint(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, Response

        match = _PATH.fullmatch(request.url.path)
        if match is None or match["method"] not in METHODS or request.method != "POST":
            return JSONResponse(_error_body(404, f"no such method: {request.url.path}"), status_code=404)
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return JSONResponse(_error_body(400, "Invalid JSON payload received."), status_code=400)
        method, model = match["method"], match["model"]
        authorization = request.headers.get("authorization")
        call = VertexCall(method, model, match["project"], match["location"], body, authorization)
        with self._lock:
            self.calls.append(call)

        def answer(status: int, document: Any) -> Any:
            call.status = status
            return JSONResponse(document, status_code=status)

        if not authorization or not authorization.startswith("Bearer ") or len(authorization) <= 7:
            return answer(401, _error_body(401, "Request is missing required authentication credential."))
        rule = self._take(method)
        if rule is not None and rule.delay:
            await asyncio.sleep(rule.delay)
        if rule is not None and rule.status is not None:
            return answer(rule.status, _error_body(rule.status, "Injected failure."))
        if rule is not None and rule.malformed == "not_json":
            call.status = 200
            return Response("<html><body>Bad gateway</body></html>", media_type="text/html")
        handlers = {
            "generateContent": self._generate_content,
            "predict": self._predict,
            "predictLongRunning": self._predict_long_running,
            "fetchPredictOperation": self._fetch_operation,
        }
        try:
            status, document = await handlers[method](call, rule)
        except StudioError as error:
            status = 400 if error.code is ErrorCode.BAD_USER_INPUT else 500
            document = _error_body(status, error.message)
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            status, document = 400, _error_body(400, f"Invalid request: {error!r}")
        return answer(status, document)

    # ------------------------------------------------------------ generateContent

    async def _generate_content(self, call: VertexCall, rule: _Rule | None) -> tuple[int, Any]:
        config = call.generation_config
        prompt = call.text()
        usage = {"promptTokenCount": _words(prompt) + _words(call.system_instruction())}
        refusal = rule.refusal if rule else None
        malformed = rule.malformed if rule else None
        if refusal == "prompt_blocked" or BLOCK_MARKER in prompt:
            feedback = {
                "blockReason": "SAFETY",
                "blockReasonMessage": "The prompt violates the usage policy.",
            }
            return 200, {"promptFeedback": feedback, "usageMetadata": usage, "modelVersion": call.model}
        if malformed == "no_candidates":
            return 200, {"usageMetadata": usage, "modelVersion": call.model}
        if refusal is not None:
            reason = {"finish_safety": "SAFETY", "image_safety": "IMAGE_SAFETY"}.get(
                refusal, "PROHIBITED_CONTENT"
            )
            candidate = {"content": {"role": "model"}, "finishReason": reason, "index": 0}
            if refusal == "image_safety":
                candidate["finishMessage"] = "Unable to show the generated image."
            return 200, {"candidates": [candidate], "usageMetadata": usage, "modelVersion": call.model}

        modalities = [m.upper() for m in config.get("responseModalities") or ["TEXT"]]
        if config.get("responseMimeType") == "application/json" and call.inline_media():
            # A describe call: tags as the local generator reads them, as a JSON list of strings.
            data, mime_type = call.inline_media()[0]
            tags = await self._local.describe(data, mime_type, prompt or None)
            text = json.dumps(tags)
            candidates = [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}]
            usage |= {"candidatesTokenCount": len(tags)}
        elif "IMAGE" in modalities:
            count = int(config.get("candidateCount") or 1)
            params = {
                "aspect_ratio": (config.get("imageConfig") or {}).get("aspectRatio") or "1:1",
                "count": count,
                "seed": config.get("seed"),
            }
            references = tuple(
                InputMedia(_b64(part["inlineData"]["data"]), part["inlineData"].get("mimeType", "image/png"))
                for part in call.parts()
                if "inlineData" in part
            )
            result = await self._make("IMAGE", call.model, prompt, params, references=references)
            candidates = []
            for index, media in enumerate(result.media):
                part: dict[str, Any] = {
                    "inlineData": {"mimeType": media.mime_type, "data": _b64e(media.data)}
                }
                if malformed == "no_image":
                    part = {"text": "Here is the picture you asked for."}
                candidates.append(
                    {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": index}
                )
            usage |= {"candidatesTokenCount": 1290 * count}
        else:
            max_tokens = int(config.get("maxOutputTokens") or 8192)
            params = {
                "temperature": float(config.get("temperature", 1.0)),
                "max_output_tokens": max_tokens,
                "system_prompt": call.system_instruction(),
                "seed": config.get("seed"),
            }
            result = await self._make("TEXT", call.model, prompt, params)
            text = result.media[0].text or ""
            finish = "MAX_TOKENS" if _words(text) >= max_tokens else "STOP"
            candidates = [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish, "index": 0}
            ]
            usage |= {"candidatesTokenCount": _words(text)}
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
        return 200, {
            "candidates": candidates,
            "usageMetadata": usage,
            "modelVersion": call.model,
            "responseId": f"standin-{next(self._ids)}",
        }

    # ------------------------------------------------------------ predict (Imagen)

    async def _predict(self, call: VertexCall, rule: _Rule | None) -> tuple[int, Any]:
        if "embedding" in call.model:
            return 200, _embeddings(call.body)
        params, instance = call.parameters, call.instance
        refused = rule is not None and rule.refusal == "imagen_rai"
        if rule is not None and rule.malformed == "no_predictions":
            return 200, {}
        if params.get("mode") == "upscale":
            image = instance["image"]
            source = InputMedia(_b64(image["bytesBase64Encoded"]), image.get("mimeType", "image/png"))
            factor = {"x2": 2, "x4": 4}.get((params.get("upscaleConfig") or {}).get("upscaleFactor", ""))
            if factor is None:
                return 400, _error_body(400, "upscaleFactor must be x2 or x4.")
            if refused:
                return 200, _filtered(params)
            result = await self._make("UPSCALE", call.model, "", {"factor": factor}, source=source)
        else:
            prompt = instance.get("prompt")
            if not prompt:
                return 400, _error_body(400, "A prompt is required.")
            if params.get("seed") is not None and params.get("addWatermark", True):
                return 400, _error_body(400, "Seed is not supported when watermarking is enabled.")
            if refused or BLOCK_MARKER in prompt:
                return 200, _filtered(params)
            options = {
                "aspect_ratio": params.get("aspectRatio") or "1:1",
                "count": int(params.get("sampleCount") or 1),
                "seed": params.get("seed"),
            }
            result = await self._make(
                "IMAGE", call.model, prompt, options, negative_prompt=params.get("negativePrompt")
            )
        predictions = [{"bytesBase64Encoded": _b64e(m.data), "mimeType": m.mime_type} for m in result.media]
        return 200, {"predictions": predictions}

    # ------------------------------------------------------------ Veo

    async def _predict_long_running(self, call: VertexCall, rule: _Rule | None) -> tuple[int, Any]:
        params, instance = call.parameters, call.instance
        if instance.get("lastFrame") and not instance.get("image"):
            return 400, _error_body(400, "lastFrame requires image.")
        prompt = instance.get("prompt") or ""
        outcome = rule
        if BLOCK_MARKER in prompt:
            outcome = _Rule(None, 0, refusal="veo_rai")
        task = None
        if outcome is None or (outcome.refusal is None and outcome.operation_error is None):
            request = GenerationRequest(
                "VIDEO",
                call.model,
                prompt,
                negative_prompt=params.get("negativePrompt"),
                parameters={
                    "duration_seconds": params.get("durationSeconds", 8),
                    "aspect_ratio": params.get("aspectRatio", "16:9"),
                    "generate_audio": params.get("generateAudio", False),
                    "seed": params.get("seed"),
                },
                first_frame=_media(instance.get("image")),
                last_frame=_media(instance.get("lastFrame")),
                references=tuple(
                    m for ref in instance.get("referenceImages") or [] if (m := _media(ref.get("image")))
                ),
            )
            task = asyncio.get_running_loop().create_task(self._local.generate(request, _ignore))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        resource = f"projects/{call.project}/locations/{call.location}/publishers/google/models/{call.model}"
        name = f"{resource}/operations/{next(self._ids):016d}"
        with self._lock:
            self._operations[name] = _Operation(name, call.model, self.video_polls, task, outcome)
        return 200, {"name": name}

    async def _fetch_operation(self, call: VertexCall, rule: _Rule | None) -> tuple[int, Any]:
        name = call.body.get("operationName")
        with self._lock:
            operation = self._operations.get(name) if isinstance(name, str) else None
        if operation is None or operation.model != call.model:
            return 404, _error_body(404, f"Operation {name} not found.")
        operation.polls += 1
        running = operation.task is not None and not operation.task.done()
        if operation.polls < operation.polls_needed or running:
            return 200, {"name": name}
        outcome = operation.outcome
        if outcome is not None and outcome.operation_error is not None:
            code, message = outcome.operation_error
            return 200, {"name": name, "done": True, "error": {"code": code, "message": message}}
        response: dict[str, Any] = {"@type": _VIDEO_RESPONSE_TYPE, "raiMediaFilteredCount": 0}
        if outcome is not None and outcome.refusal == "veo_rai":
            response |= {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [_VEO_REASON]}
            return 200, {"name": name, "done": True, "response": response}
        assert operation.task is not None
        try:
            result = operation.task.result()
        except StudioError as error:
            code = 3 if error.code is ErrorCode.BAD_USER_INPUT else 13
            return 200, {"name": name, "done": True, "error": {"code": code, "message": error.message}}
        if outcome is not None and outcome.malformed == "no_video":
            return 200, {"name": name, "done": True, "response": {"@type": _VIDEO_RESPONSE_TYPE}}
        data = result.media[0].data
        if outcome is not None and outcome.video_uri:
            uri = f"gs://standin-videos/{name.rsplit('/', 1)[-1]}/sample_0.mp4"
            with self._lock:
                self.objects[uri] = data
            video = {"gcsUri": uri, "mimeType": "video/mp4"}
        else:
            video = {"bytesBase64Encoded": _b64e(data), "mimeType": "video/mp4"}
        response["videos"] = [video]
        return 200, {"name": name, "done": True, "response": response}

    # ------------------------------------------------------------ media

    async def _make(
        self,
        kind: JobKindName,
        model: str,
        prompt: str,
        params: dict[str, Any],
        *,
        negative_prompt: str | None = None,
        source: InputMedia | None = None,
        references: tuple[InputMedia, ...] = (),
    ) -> GenerationResult:
        request = GenerationRequest(
            kind,
            model,
            prompt,
            negative_prompt=negative_prompt,
            parameters=params,
            source=source,
            references=references,
        )
        return await self._local.generate(request, _ignore)


async def _ignore(progress: Progress) -> None:
    return None


def _methods(methods: tuple[str, ...]) -> frozenset[str] | None:
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods: {sorted(unknown)}")
    return frozenset(methods) or None


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}


def _filtered(params: dict[str, Any]) -> dict[str, Any]:
    """Imagen's answer when everything was filtered: the reason only with includeRaiReason."""
    if params.get("includeRaiReason"):
        return {"predictions": [{"raiFilteredReason": _RAI_REASON}]}
    return {}


def _media(image: dict[str, Any] | None) -> InputMedia | None:
    if not image or "bytesBase64Encoded" not in image:
        return None
    return InputMedia(_b64(image["bytesBase64Encoded"]), image.get("mimeType", "image/png"))


def _b64(text: str) -> bytes:
    """Decode a bytes field as Google's JSON parser does: standard or URL-safe alphabet, padded or not
    (google-genai sends `inlineData` URL-safe and image bytes standard)."""
    standard = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """A text-embedding model's answer: each word hashed into one of 64 dimensions, so texts that
    share words point the same way (enough to rank; nothing like the real model's meaning)."""
    from domain.assets import words

    predictions = []
    for instance in body["instances"]:
        found = words(instance["content"])
        values = [0.0] * 64
        for word in found:
            values[hashlib.sha256(word.encode()).digest()[0] % 64] += 1.0
        stats = {"token_count": len(found), "truncated": False}
        predictions.append({"embeddings": {"values": values, "statistics": stats}})
    return {"predictions": predictions}


def _words(text: str | None) -> int:
    return len((text or "").split())


@contextlib.contextmanager
def vertex_standin() -> Iterator[VertexStandIn]:
    """A stand-in of its own, served until the block ends."""
    standin = VertexStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


_shared: VertexStandIn | None = None
_shared_lock = threading.Lock()


def shared_standin() -> VertexStandIn:
    """The stand-in shared by this test process (started on first use, stopped at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            standin = VertexStandIn()
            standin.start()
            atexit.register(standin.stop)
            _shared = standin
        return _shared
