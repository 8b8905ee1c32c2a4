"""Defensive reads of `GenerationRequest.parameters` (the domain validates first; these guard the
adapter against a caller that did not) and of input media."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from PIL import Image

from domain.errors import bad_input
from domain.ports import InputMedia

from . import _art


def int_param(params: Mapping[str, Any], name: str, default: int, lo: int, hi: int, field: str) -> int:
    """An integer parameter within lo..hi (None means the default)."""
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad_input(field, f"{field} must be an integer from {lo} to {hi}")
    return value


def float_param(
    params: Mapping[str, Any], name: str, default: float, lo: float, hi: float, field: str
) -> float:
    """A number parameter within lo..hi (None means the default)."""
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise bad_input(field, f"{field} must be a number from {lo} to {hi}")
    return float(value)


def choice_param(
    params: Mapping[str, Any], name: str, default: str, allowed: Collection[str], field: str
) -> str:
    """A string parameter from a fixed set (None means the default)."""
    value = params.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise bad_input(field, f"{field} must be one of {', '.join(sorted(allowed))}")
    return str(value)


def bool_param(params: Mapping[str, Any], name: str, field: str) -> bool:
    """A boolean parameter, False when absent."""
    value = params.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_input(field, f"{field} must be true or false")
    return value


def optional_int(params: Mapping[str, Any], name: str, field: str) -> int | None:
    """An optional integer such as a seed."""
    value = params.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise bad_input(field, f"{field} must be an integer")
    return value


def optional_str(params: Mapping[str, Any], name: str, field: str) -> str | None:
    """An optional string such as a system prompt."""
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_input(field, f"{field} must be a string")
    return value


def decode_media(media: InputMedia | None, field: str, *, keep_alpha: bool = False) -> Image.Image | None:
    """Decode an input image (PNG/JPEG/WebP/...); BAD_USER_INPUT naming `field` if unreadable."""
    if media is None:
        return None
    try:
        return _art.decode_image(media.data, keep_alpha=keep_alpha)
    except Exception as exc:  # PIL raises many types (UnidentifiedImageError, OSError, bombs)
        raise bad_input(field, "the image could not be read") from exc
