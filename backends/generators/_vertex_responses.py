"""Reading Vertex AI answers: refusals (which arrive as HTTP 200) become CONTENT_BLOCKED with a
reason a person can act on; answers without what was asked for raise Malformed.

The SDK objects are read by attribute only, so this module imports nothing from google-genai.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from domain.errors import ErrorCode, StudioError

from ._vertex_resilience import Malformed

# Why a prompt was blocked before anything was generated (`prompt_feedback.block_reason`).
_PROMPT_BLOCKS = {
    "SAFETY": "The prompt was blocked by the safety filter.",
    "PROHIBITED_CONTENT": "The prompt asks for prohibited content.",
    "BLOCKLIST": "The prompt contains a blocked term.",
    "IMAGE_SAFETY": "The prompt was blocked as unsafe for image generation.",
    "JAILBREAK": "The prompt was blocked as an attempt to get around the safety rules.",
    "MODEL_ARMOR": "The prompt was blocked by the content policy.",
    "OTHER": "The prompt was refused by the model.",
}

# Finish reasons that mean the model refused to produce (or withheld) the output.
_REFUSALS = {
    "SAFETY": "The output was withheld by the safety filter.",
    "IMAGE_SAFETY": "The generated image was withheld by the safety filter.",
    "PROHIBITED_CONTENT": "The request asks for prohibited content.",
    "IMAGE_PROHIBITED_CONTENT": "The generated image would contain prohibited content.",
    "BLOCKLIST": "The output contained a blocked term.",
    "SPII": "The output would contain sensitive personal information.",
    "RECITATION": "The output would recite protected content.",
    "IMAGE_RECITATION": "The generated image would reproduce protected content.",
    "MODEL_ARMOR": "The output was blocked by the content policy.",
}

# google.rpc.Code values an operation error can carry.
_BAD_INPUT_CODES = frozenset({3, 9, 11})  # INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
_CONFIG_CODES = frozenset({5, 7, 12, 16})  # NOT_FOUND, PERMISSION_DENIED, UNIMPLEMENTED, UNAUTHENTICATED
# Veo reports some policy refusals as INVALID_ARGUMENT operation errors; these words give them away.
_POLICY_WORDS = re.compile(r"responsible ai|usage guidelines|safety|sensitive words|policy", re.IGNORECASE)


def blocked(message: str) -> StudioError:
    """A refusal: not retryable, and the message says why."""
    return StudioError(ErrorCode.CONTENT_BLOCKED, message, retryable=False)


def enum_name(value: Any) -> str | None:
    """The name of an SDK enum value (or the raw string the API sent)."""
    if value is None:
        return None
    name = getattr(value, "value", value)
    return str(name).upper()


def _with_detail(base: str, detail: str | None) -> str:
    detail = (detail or "").strip()
    return f"{base} {detail}" if detail and detail not in base else base


def candidates_of(response: Any) -> Sequence[Any]:
    """The candidates of a generateContent answer; CONTENT_BLOCKED if the prompt was blocked,
    Malformed if there are none and no reason why."""
    candidates = list(getattr(response, "candidates", None) or [])
    if candidates:
        return candidates
    feedback = getattr(response, "prompt_feedback", None)
    reason = enum_name(getattr(feedback, "block_reason", None))
    if reason and reason != "BLOCKED_REASON_UNSPECIFIED":
        base = _PROMPT_BLOCKS.get(reason, f"The prompt was blocked ({reason}).")
        raise blocked(_with_detail(base, getattr(feedback, "block_reason_message", None)))
    raise Malformed("no candidates and no block reason")


def check_refusal(candidate: Any) -> None:
    """CONTENT_BLOCKED if the candidate stopped for a safety or policy reason."""
    reason = enum_name(getattr(candidate, "finish_reason", None))
    if reason in _REFUSALS:
        raise blocked(_with_detail(_REFUSALS[reason], getattr(candidate, "finish_message", None)))


def finish_reason(candidate: Any) -> str:
    return enum_name(getattr(candidate, "finish_reason", None)) or "none"


def inline_images(candidate: Any) -> list[tuple[bytes, str | None]]:
    """(bytes, declared mime type) of every image part of a candidate."""
    content = getattr(candidate, "content", None)
    found = []
    for part in getattr(content, "parts", None) or []:
        blob = getattr(part, "inline_data", None)
        if blob is None or getattr(part, "thought", None):
            continue
        data = getattr(blob, "data", None)
        mime = getattr(blob, "mime_type", None)
        if data and (mime is None or mime.startswith("image/")):
            found.append((bytes(data), mime))
    return found


def text_of(candidate: Any) -> str:
    """The answer's text: every text part that is not a thought, in order."""
    content = getattr(candidate, "content", None)
    pieces = [
        part.text
        for part in getattr(content, "parts", None) or []
        if getattr(part, "text", None) and not getattr(part, "thought", None)
    ]
    return "".join(pieces)


def predicted_images(generated: Iterable[Any], what: str) -> list[tuple[bytes, str | None]]:
    """Images of an Imagen answer (generate or upscale). All filtered → CONTENT_BLOCKED with
    Imagen's `rai_filtered_reason`; nothing at all → Malformed."""
    images: list[tuple[bytes, str | None]] = []
    reasons: list[str] = []
    for item in generated:
        image = getattr(item, "image", None)
        data = getattr(image, "image_bytes", None)
        if data:
            images.append((bytes(data), getattr(image, "mime_type", None)))
        elif getattr(item, "rai_filtered_reason", None):
            reasons.append(str(item.rai_filtered_reason))
    if images:
        return images
    if reasons:
        raise blocked(f"The {what} was refused by the safety filter: {'; '.join(dict.fromkeys(reasons))}")
    raise Malformed(f"no {what} bytes and no filter reason")


def video_refusal(result: Any) -> StudioError | None:
    """CONTENT_BLOCKED for a Veo answer whose videos were all filtered (`rai_media_filtered_*`)."""
    count = getattr(result, "rai_media_filtered_count", None) or 0
    reasons = [str(r) for r in getattr(result, "rai_media_filtered_reasons", None) or [] if r]
    if not count and not reasons:
        return None
    detail = "; ".join(dict.fromkeys(reasons)) if reasons else f"{count} video(s) filtered"
    return blocked(f"The video was refused by the safety filter: {detail}")


def operation_error(model: str, error: Mapping[str, Any]) -> StudioError:
    """The StudioError for a failed long-running operation's `error` ({code, message})."""
    try:
        code = int(error.get("code") or 2)
    except (TypeError, ValueError):
        code = 2
    message = str(error.get("message") or "no details")
    if code in _BAD_INPUT_CODES:
        if _POLICY_WORDS.search(message):
            return blocked(f"The video was refused: {message}")
        return StudioError(
            ErrorCode.BAD_USER_INPUT, f"The model rejected the request: {message}", retryable=False
        )
    if code in _CONFIG_CODES:
        return StudioError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"Vertex AI model {model} could not run the request (code {code}): {message}",
            retryable=False,
        )
    # CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE, ...
    return StudioError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"Vertex AI model {model} failed to generate the video (code {code}): {message}",
        retryable=True,
    )
