"""Idempotency keys: a retried request returns the same job and costs nothing more."""

from __future__ import annotations

import asyncio

from tests.conftest import assert_error
from tests.support.client import StudioClient

GENERATE = "mutation($input: GenerateTextInput!) { generateText(input: $input) { id status } }"


async def total_jobs(client: StudioClient) -> int:
    return int((await client.data("{ jobs { totalCount } }"))["jobs"]["totalCount"])


async def test_the_same_key_and_input_return_the_same_job(user: StudioClient) -> None:
    values = {"prompt": "a limerick", "idempotencyKey": "order-17"}
    first = (await user.data(GENERATE, {"input": values}))["generateText"]
    second = (await user.data(GENERATE, {"input": values}))["generateText"]
    assert first["id"] == second["id"] and await total_jobs(user) == 1


async def test_concurrent_retries_with_one_key_make_one_job(user: StudioClient) -> None:
    values = {"prompt": "a sonnet", "idempotencyKey": "burst"}
    replies = await asyncio.gather(*(user.execute(GENERATE, {"input": values}) for _ in range(8)))
    ids = {reply["data"]["generateText"]["id"] for reply in replies if reply.get("data")}
    assert len(ids) == 1 and await total_jobs(user) == 1


async def test_the_same_key_with_another_input_is_a_conflict(user: StudioClient) -> None:
    await user.data(GENERATE, {"input": {"prompt": "first", "idempotencyKey": "k1"}})
    error = await user.error(GENERATE, {"input": {"prompt": "second", "idempotencyKey": "k1"}})
    assert_error(error, "CONFLICT")
    assert await total_jobs(user) == 1


async def test_keys_belong_to_their_caller(user: StudioClient, stranger: StudioClient) -> None:
    values = {"prompt": "shared words", "idempotencyKey": "same-key"}
    mine = (await user.data(GENERATE, {"input": values}))["generateText"]
    theirs = (await stranger.data(GENERATE, {"input": values}))["generateText"]
    assert mine["id"] != theirs["id"]


async def test_an_unusable_key_is_bad_input_and_creates_nothing(user: StudioClient) -> None:
    for key in ("", "x" * 201, "tab\there"):
        error = await user.error(GENERATE, {"input": {"prompt": "p", "idempotencyKey": key}})
        assert_error(error, "BAD_USER_INPUT")
        assert error["extensions"]["field"] == "input.idempotencyKey"
    assert await total_jobs(user) == 0
