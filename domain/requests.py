"""Validation of generation inputs: what a caller asked for, checked and normalised before any job exists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.catalog import ASPECT_RATIOS_IMAGE, ASPECT_RATIOS_VIDEO, Catalog, ModelSpec
from domain.errors import bad_input
from domain.jobs import JobKind

MAX_SEED = 2**31 - 1
MAX_REFERENCES = 3


@dataclass(frozen=True)
class InputLimits:
    max_prompt_chars: int = 4000


@dataclass(frozen=True)
class CheckedRequest:
    """A valid request: the model, the input as stored on the job, and the parameters for the generator."""

    kind: JobKind
    model: ModelSpec
    input: dict[str, Any]
    parameters: dict[str, Any]
    asset_refs: dict[str, list[str]]  # role (source, first_frame, last_frame, references) -> asset ids


def _text(raw: Mapping[str, Any], name: str, limits: InputLimits, *, required: bool) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise bad_input(f"input.{name}", f"{name} is required")
        return None
    if not isinstance(value, str):
        raise bad_input(f"input.{name}", f"{name} must be a string")
    value = value.strip()
    if required and not value:
        raise bad_input(f"input.{name}", f"{name} must not be empty")
    if len(value) > limits.max_prompt_chars:
        raise bad_input(f"input.{name}", f"{name} is longer than {limits.max_prompt_chars} characters")
    if "\x00" in value:
        raise bad_input(f"input.{name}", f"{name} contains a NUL character")
    return value or None


def _int(raw: Mapping[str, Any], name: str, default: int | None, low: int, high: int) -> int | None:
    value = raw.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_input(f"input.{name}", f"{name} must be an integer")
    if not low <= value <= high:
        raise bad_input(f"input.{name}", f"{name} must be between {low} and {high}, got {value}")
    return value


def _choice(raw: Mapping[str, Any], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = raw.get(name)
    value = default if value is None else value
    if value not in allowed:
        raise bad_input(f"input.{name}", f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _ids(raw: Mapping[str, Any], name: str, limit: int) -> list[str]:
    values = raw.get(name) or []
    if len(values) > limit:
        raise bad_input(f"input.{name}", f"at most {limit} {name} are allowed")
    for value in values:
        if not isinstance(value, str) or not value:
            raise bad_input(f"input.{name}", f"{name} must be asset ids")
    return list(dict.fromkeys(values))


def check_image(raw: Mapping[str, Any], catalog: Catalog, limits: InputLimits) -> CheckedRequest:
    model = catalog.resolve(JobKind.IMAGE.value, raw.get("model"), "input.model")
    prompt = _text(raw, "prompt", limits, required=True)
    negative = _text(raw, "negativePrompt", limits, required=False)
    ratios = model.aspect_ratios or ASPECT_RATIOS_IMAGE
    aspect = _choice(raw, "aspectRatio", "1:1", ratios)
    count = _int(raw, "count", 1, 1, model.max_count or 4)
    seed = _int(raw, "seed", None, 0, MAX_SEED)
    refs = _ids(raw, "referenceAssetIds", MAX_REFERENCES)
    stored: dict[str, Any] = {
        "prompt": prompt,
        "negativePrompt": negative,
        "aspectRatio": aspect,
        "count": count,
        "seed": seed,
    }
    if refs:
        stored["referenceAssetIds"] = refs
    params = {"aspect_ratio": aspect, "count": count, "seed": seed}
    return CheckedRequest(JobKind.IMAGE, model, stored, params, {"references": refs})


def check_video(raw: Mapping[str, Any], catalog: Catalog, limits: InputLimits) -> CheckedRequest:
    model = catalog.resolve(JobKind.VIDEO.value, raw.get("model"), "input.model")
    prompt = _text(raw, "prompt", limits, required=True)
    negative = _text(raw, "negativePrompt", limits, required=False)
    aspect = _choice(raw, "aspectRatio", "16:9", model.aspect_ratios or ASPECT_RATIOS_VIDEO)
    durations = model.durations_seconds or (4, 6, 8)
    duration = raw.get("durationSeconds")
    duration = 8 if duration is None else duration
    if isinstance(duration, bool) or not isinstance(duration, int) or duration not in durations:
        allowed = ", ".join(str(d) for d in durations)
        raise bad_input("input.durationSeconds", f"durationSeconds must be one of {allowed} for {model.id}")
    audio = raw.get("generateAudio")
    audio = False if audio is None else audio
    if not isinstance(audio, bool):
        raise bad_input("input.generateAudio", "generateAudio must be a boolean")
    seed = _int(raw, "seed", None, 0, MAX_SEED)
    refs = _ids(raw, "referenceAssetIds", MAX_REFERENCES)
    first = raw.get("firstFrameAssetId")
    last = raw.get("lastFrameAssetId")
    if last and not first:
        raise bad_input("input.lastFrameAssetId", "lastFrameAssetId needs a firstFrameAssetId")
    stored: dict[str, Any] = {
        "prompt": prompt,
        "negativePrompt": negative,
        "aspectRatio": aspect,
        "durationSeconds": duration,
        "generateAudio": audio,
        "seed": seed,
    }
    asset_refs: dict[str, list[str]] = {"references": refs}
    for key, role, value in (
        ("firstFrameAssetId", "first_frame", first),
        ("lastFrameAssetId", "last_frame", last),
    ):
        if value is not None:
            if not isinstance(value, str) or not value:
                raise bad_input(f"input.{key}", f"{key} must be an asset id")
            stored[key] = value
            asset_refs[role] = [value]
    if refs:
        stored["referenceAssetIds"] = refs
    params = {"aspect_ratio": aspect, "duration_seconds": duration, "generate_audio": audio, "seed": seed}
    return CheckedRequest(JobKind.VIDEO, model, stored, params, asset_refs)


def check_text(raw: Mapping[str, Any], catalog: Catalog, limits: InputLimits) -> CheckedRequest:
    model = catalog.resolve(JobKind.TEXT.value, raw.get("model"), "input.model")
    prompt = _text(raw, "prompt", limits, required=True)
    system = _text(raw, "systemPrompt", limits, required=False)
    temperature = raw.get("temperature")
    temperature = 0.7 if temperature is None else temperature
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise bad_input("input.temperature", "temperature must be between 0 and 2")
    max_tokens = _int(raw, "maxOutputTokens", 1024, 1, 8192)
    stored = {
        "prompt": prompt,
        "systemPrompt": system,
        "temperature": float(temperature),
        "maxOutputTokens": max_tokens,
    }
    params = {"system_prompt": system, "temperature": float(temperature), "max_output_tokens": max_tokens}
    return CheckedRequest(JobKind.TEXT, model, stored, params, {})


def check_upscale(raw: Mapping[str, Any], catalog: Catalog, limits: InputLimits) -> CheckedRequest:
    model = catalog.resolve(JobKind.UPSCALE.value, raw.get("model"), "input.model")
    asset_id = raw.get("assetId")
    if not isinstance(asset_id, str) or not asset_id:
        raise bad_input("input.assetId", "assetId is required")
    factor = raw.get("factor")
    factor = 2 if factor is None else factor
    if factor not in (2, 4) or isinstance(factor, bool):
        raise bad_input("input.factor", "factor must be 2 or 4")
    stored = {"assetId": asset_id, "factor": factor}
    return CheckedRequest(JobKind.UPSCALE, model, stored, {"factor": factor}, {"source": [asset_id]})


CHECKS = {
    JobKind.IMAGE: check_image,
    JobKind.VIDEO: check_video,
    JobKind.TEXT: check_text,
    JobKind.UPSCALE: check_upscale,
}


def check_request(
    kind: JobKind, raw: Mapping[str, Any], catalog: Catalog, limits: InputLimits
) -> CheckedRequest:
    """Validate a generation input of any kind; BAD_USER_INPUT names the offending field."""
    return CHECKS[kind](raw, catalog, limits)
