"""The identical-request cache: a deterministic request asked again is answered at once, at no cost."""

from __future__ import annotations

from typing import Any

from tests.api.helpers import around_now, wait_for_jobs
from tests.support.client import StudioClient

JOB = "id status cached costUsd progress assets { id contentSha256 }"
IMAGE = f"mutation($input: GenerateImageInput!) {{ generateImage(input: $input) {{ {JOB} }} }}"
TEXT = f"mutation($input: GenerateTextInput!) {{ generateText(input: $input) {{ {JOB} }} }}"
READ = f"query($id: ID!) {{ job(id: $id) {{ {JOB} }} }}"
SPENT = """query($from: DateTime!, $to: DateTime!) { me { usage(from: $from, to: $to) { images jobs costUsd } } }"""


async def ask(client: StudioClient, values: dict[str, Any], document: str = IMAGE) -> dict[str, Any]:
    data = await client.data(document, {"input": values})
    return dict(next(iter(data.values())))


async def finished(client: StudioClient, values: dict[str, Any], document: str = IMAGE) -> dict[str, Any]:
    job = await ask(client, values, document)
    await wait_for_jobs(client)
    return dict((await client.data(READ, {"id": job["id"]}))["job"])


async def test_a_seeded_image_asked_again_is_a_new_cached_job_with_the_same_media(user: StudioClient) -> None:
    values = {"prompt": "a lighthouse at dusk", "seed": 42, "count": 2}
    first = await finished(user, values)
    assert first["status"] == "SUCCEEDED" and first["cached"] is False and first["costUsd"] > 0
    spent = (await user.data(SPENT, around_now()))["me"]["usage"]

    again = await ask(user, values)
    assert again["id"] != first["id"]
    assert (again["status"], again["cached"], again["costUsd"], again["progress"]) == (
        "SUCCEEDED",
        True,
        0.0,
        1.0,
    )
    assert again["assets"] == first["assets"]
    assert (await user.data(SPENT, around_now()))["me"]["usage"] == spent, "a cached answer costs nothing"


async def test_cache_false_always_generates(user: StudioClient) -> None:
    values = {"prompt": "a gull over waves", "seed": 5}
    first = await finished(user, values)
    fresh = await finished(user, {**values, "cache": False})
    assert fresh["cached"] is False and fresh["costUsd"] > 0
    assert {asset["id"] for asset in fresh["assets"]}.isdisjoint(asset["id"] for asset in first["assets"])
    # Same seed, same model: the same pixels, generated again.
    assert [a["contentSha256"] for a in fresh["assets"]] == [a["contentSha256"] for a in first["assets"]]


async def test_requests_without_a_seed_or_with_another_input_are_not_answered_from_the_cache(
    user: StudioClient,
) -> None:
    await finished(user, {"prompt": "a harbour", "seed": 9})
    for values in (
        {"prompt": "a harbour"},
        {"prompt": "a harbour", "seed": 10},
        {"prompt": "a harbour!", "seed": 9},
    ):
        assert (await ask(user, values))["cached"] is False, values


async def test_text_is_answered_from_the_cache_only_at_temperature_zero(user: StudioClient) -> None:
    exact = {"prompt": "name a colour", "temperature": 0, "maxOutputTokens": 16}
    await finished(user, exact, TEXT)
    assert (await ask(user, exact, TEXT))["cached"] is True
    warm = {**exact, "temperature": 0.7}
    await finished(user, warm, TEXT)
    assert (await ask(user, warm, TEXT))["cached"] is False


async def test_someone_who_may_not_see_the_earlier_result_gets_a_generation_of_their_own(
    user: StudioClient, stranger: StudioClient
) -> None:
    values = {"prompt": "a private sketch", "seed": 77}
    mine = await finished(user, values)
    theirs = await ask(stranger, values)
    assert theirs["cached"] is False and theirs["status"] == "QUEUED"
    await wait_for_jobs(stranger)
    theirs = (await stranger.data(READ, {"id": theirs["id"]}))["job"]
    assert {a["id"] for a in theirs["assets"]}.isdisjoint(a["id"] for a in mine["assets"])
