"""Which requests the identical-request cache may answer, and how they are told apart."""

from __future__ import annotations

from domain.jobs import JobKind
from domain.request_cache import request_key

IMAGE = {"prompt": "a lighthouse", "aspectRatio": "1:1", "count": 1, "seed": 7}


def test_a_seeded_image_has_a_key_and_an_unseeded_one_has_none() -> None:
    assert request_key(JobKind.IMAGE, "img", IMAGE) is not None
    assert request_key(JobKind.IMAGE, "img", {**IMAGE, "seed": None}) is None


def test_any_difference_in_model_kind_or_input_gives_another_key() -> None:
    key = request_key(JobKind.IMAGE, "img", IMAGE)
    others = [
        request_key(JobKind.IMAGE, "img-2", IMAGE),
        request_key(JobKind.VIDEO, "img", IMAGE),
        request_key(JobKind.IMAGE, "img", {**IMAGE, "seed": 8}),
        request_key(JobKind.IMAGE, "img", {**IMAGE, "prompt": "a lighthouse!"}),
        request_key(JobKind.IMAGE, "img", {**IMAGE, "aspectRatio": "16:9"}),
        request_key(JobKind.IMAGE, "img", {**IMAGE, "referenceAssetIds": ["a1"]}),
    ]
    assert key not in others and len(set(others)) == len(others)


def test_the_order_of_input_fields_does_not_matter() -> None:
    assert request_key(JobKind.IMAGE, "img", IMAGE) == request_key(
        JobKind.IMAGE, "img", dict(reversed(IMAGE.items()))
    )


def test_text_is_cached_only_at_temperature_zero_and_upscales_always() -> None:
    text = {"prompt": "a haiku", "temperature": 0.7, "maxOutputTokens": 64}
    assert request_key(JobKind.TEXT, "txt", text) is None
    assert request_key(JobKind.TEXT, "txt", {**text, "temperature": 0}) is not None
    assert request_key(JobKind.UPSCALE, "up", {"assetId": "a1", "factor": 2}) is not None
