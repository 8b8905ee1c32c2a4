"""Asking Gemini what an image or video shows, as a JSON list of tags (one generateContent call)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import _vertex_responses as answers
from ._vertex_resilience import Malformed

if TYPE_CHECKING:
    from google.genai import types

MAX_TAGS = 10
MAX_TAG_CHARS = 40

INSTRUCTION = (
    "You tag media for a searchable library. Look at the image or video and answer with a JSON list "
    f"of 3 to {MAX_TAGS} short lower-case tags (one or two words each, English, no '#'): the main "
    "subjects, the setting, the style and the dominant colours. The text part, if any, is the prompt "
    "the media was generated from; use it only to disambiguate what you see."
)


def tagging_request(media: bytes, mime_type: str, prompt: str | None) -> tuple[list[Any], Any]:
    """The contents and config of the describe call: the media inline, the prompt as a hint."""
    from google.genai import types

    parts = [types.Part.from_bytes(data=media, mime_type=mime_type.split(";")[0].strip())]
    if prompt:
        parts.append(types.Part.from_text(text=prompt))
    config = types.GenerateContentConfig(
        system_instruction=INSTRUCTION,
        response_mime_type="application/json",
        response_schema=types.Schema(
            type=types.Type.ARRAY, items=types.Schema(type=types.Type.STRING), max_items=MAX_TAGS
        ),
        temperature=0.2,
        max_output_tokens=256,
        candidate_count=1,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    return [types.Content(role="user", parts=parts)], config


def tags_of(response: types.GenerateContentResponse) -> list[str]:
    """The tags of the answer; CONTENT_BLOCKED on a refusal, Malformed when it is not a list of strings."""
    candidate = answers.candidates_of(response)[0]
    answers.check_refusal(candidate)
    try:
        listed = json.loads(answers.text_of(candidate))
    except ValueError as error:
        raise Malformed("tags that are not JSON") from error
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise Malformed("tags that are not a list of strings")
    tags: dict[str, None] = {}
    for item in listed:
        tag = " ".join(item.replace("#", " ").split()).lower()[:MAX_TAG_CHARS].strip()
        if tag:
            tags.setdefault(tag)
    return list(tags)[:MAX_TAGS]
