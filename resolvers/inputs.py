"""Schema inputs → the plain mappings the domain validates (global ids decoded, names as in the schema)."""

from __future__ import annotations

from typing import Any

from domain.errors import ErrorCode, StudioError, bad_input
from schema.jobs import (
    GenerateImageInput,
    GenerateTextInput,
    GenerateVideoInput,
    UpscaleImageInput,
    WebhookInput,
)
from schema.nodes import decode_id


def asset_ref(value: str, field: str) -> str:
    """An asset id given as input; a malformed or foreign id is the caller's mistake at `field`."""
    try:
        return decode_id(value, "Asset", field)
    except StudioError as error:
        if error.code is ErrorCode.NOT_FOUND:
            raise bad_input(field, f"{value} is not an asset id") from None
        raise


def collection_ref(value: str | None) -> str | None:
    """A generation's `collectionId`; a malformed or foreign id is the caller's mistake."""
    if value is None:
        return None
    try:
        return decode_id(value, "Collection", "input.collectionId")
    except StudioError as error:
        if error.code is ErrorCode.NOT_FOUND:
            raise bad_input("input.collectionId", f"{value} is not a collection id") from None
        raise


def image_input(data: GenerateImageInput) -> dict[str, Any]:
    refs = data.reference_asset_ids
    return {
        "prompt": data.prompt,
        "negativePrompt": data.negative_prompt,
        "model": data.model,
        "aspectRatio": data.aspect_ratio,
        "count": data.count,
        "seed": data.seed,
        "referenceAssetIds": [asset_ref(v, "input.referenceAssetIds") for v in refs] if refs else None,
        "collectionId": collection_ref(data.collection_id),
    }


def video_input(data: GenerateVideoInput) -> dict[str, Any]:
    refs = data.reference_asset_ids
    first, last = data.first_frame_asset_id, data.last_frame_asset_id
    return {
        "prompt": data.prompt,
        "negativePrompt": data.negative_prompt,
        "model": data.model,
        "aspectRatio": data.aspect_ratio,
        "durationSeconds": data.duration_seconds,
        "generateAudio": data.generate_audio,
        "seed": data.seed,
        "firstFrameAssetId": asset_ref(first, "input.firstFrameAssetId") if first else None,
        "lastFrameAssetId": asset_ref(last, "input.lastFrameAssetId") if last else None,
        "referenceAssetIds": [asset_ref(v, "input.referenceAssetIds") for v in refs] if refs else None,
        "collectionId": collection_ref(data.collection_id),
    }


def text_input(data: GenerateTextInput) -> dict[str, Any]:
    return {
        "prompt": data.prompt,
        "systemPrompt": data.system_prompt,
        "model": data.model,
        "temperature": data.temperature,
        "maxOutputTokens": data.max_output_tokens,
    }


def upscale_input(data: UpscaleImageInput) -> dict[str, Any]:
    return {
        "assetId": asset_ref(data.asset_id, "input.assetId"),
        "factor": data.factor,
        "model": data.model,
    }


def team_ref(value: str | None) -> str | None:
    """The team a job is made for; a malformed id is bad input, another type's id a missing team."""
    return decode_id(value, "Team", "input.teamId") if value is not None else None


def webhook_input(data: WebhookInput | None) -> dict[str, Any] | None:
    if data is None:
        return None
    events = data.events
    return {"url": data.url, "events": None if events is None else [status.value for status in events]}
