"""The identical-request cache: the same deterministic request asked again is answered at once.

A request is deterministic when the model must give the same media for the same input: an image or
a video with an explicit seed, an upscale, a text at temperature 0. Its key is a hash of the kind,
the model and the whole normalised input (prompt, parameters, seed, referenced assets). A hit makes a
new job, already SUCCEEDED, `cached`, at no cost, whose assets are the earlier job's — offered only
to a caller who may see every one of them (and only while none is deleted); anything else is a miss.
Callers opt out per request with `cache: false`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.idempotency import fingerprint
from domain.jobs import JobKind

DEFAULT_TTL_SECONDS = 7 * 24 * 3600


def is_deterministic(kind: JobKind, input: Mapping[str, Any]) -> bool:
    """Whether the model gives the same result for the same input."""
    if kind is JobKind.UPSCALE:
        return True
    if kind is JobKind.TEXT:
        return input.get("temperature") == 0
    return input.get("seed") is not None


def request_key(kind: JobKind, model_id: str, input: Mapping[str, Any]) -> str | None:
    """The cache key of a normalised request; None when it is not deterministic."""
    if not is_deterministic(kind, input):
        return None
    return fingerprint(["request-cache/1", kind.value, model_id, dict(input)])
