"""Webhooks over real HTTP: a studio process with short retries posts to a receiver in this test process."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.api.helpers import job_count, new_client, run
from tests.conftest import assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess
from tests.support.webhook_receiver import SECRET, TIMEOUT_SECONDS, Receiver

DELIVERY = "id url event status nextAttemptAt attempts { at httpStatus error durationMs }"
JOB = f"query($id: ID!) {{ job(id: $id) {{ id status assets {{ id }} webhookDeliveries {{ {DELIVERY} }} }} }}"
BLOCKED = "[[blocked]]"  # the local generator refuses prompts holding this


@pytest.fixture(scope="module")
def owner(hooks_studio: StudioProcess, hooks_dir: Path) -> StudioClient:
    return run(new_client(hooks_studio, hooks_dir, "hooks"))


async def generate(client: StudioClient, prompt: str, webhook: dict[str, Any]) -> str:
    document = "mutation($input: GenerateTextInput!) { generateText(input: $input) { id } }"
    values = {"prompt": prompt, "maxOutputTokens": 20, "webhook": webhook}
    return str((await client.data(document, {"input": values}))["generateText"]["id"])


async def job_when(
    client: StudioClient, job_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    """Poll the job (bounded) until `done` holds for it."""
    deadline = time.monotonic() + timeout
    while True:
        job = dict((await client.data(JOB, {"id": job_id}))["job"])
        if done(job):
            return job
        assert time.monotonic() < deadline, f"gave up waiting: {job}"
        await asyncio.sleep(0.05)


def settled(job: dict[str, Any]) -> bool:
    deliveries = job["webhookDeliveries"]
    return bool(deliveries) and all(d["status"] != "PENDING" for d in deliveries)


# ---------------------------------------------------------------- delivering


async def test_a_succeeded_job_delivers_one_signed_webhook(owner: StudioClient, receiver: Receiver) -> None:
    path = receiver.path("ok")
    job_id = await generate(owner, "a haiku about rivers", {"url": receiver.url(path)})
    job = await job_when(owner, job_id, settled)
    assert job["status"] == "SUCCEEDED"
    (delivery,) = job["webhookDeliveries"]
    assert delivery["status"] == "DELIVERED" and delivery["event"] == "SUCCEEDED"
    assert delivery["url"] == receiver.url(path) and delivery["nextAttemptAt"] is None
    (attempt,) = delivery["attempts"]
    assert attempt["httpStatus"] == 200 and attempt["error"] is None and attempt["durationMs"] >= 0

    (request,) = receiver.at(path)
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert request.headers["webhook-id"] == delivery["id"]
    assert request.headers["content-type"] == "application/json"
    assert payload["type"] == "job.succeeded"
    data = payload["data"]
    assert data["id"] == job_id and data["status"] == "SUCCEEDED" and data["kind"] == "TEXT"
    assert data["assetIds"] == [asset["id"] for asset in job["assets"]] and data["progress"] == 1.0
    assert data["error"] is None and data["costUsd"] > 0 and datetime.fromisoformat(data["finishedAt"])
    await asyncio.sleep(0.3)
    assert len(receiver.at(path)) == 1, "delivered once"


async def test_only_the_chosen_statuses_are_delivered(owner: StudioClient, receiver: Receiver) -> None:
    path = receiver.path("failed-only")
    webhook = {"url": receiver.url(path), "events": ["FAILED"]}
    succeeded = await generate(owner, "a calm sea", webhook)
    failed = await generate(owner, f"a stormy sea {BLOCKED}", webhook)
    done = await job_when(owner, succeeded, lambda job: job["status"] == "SUCCEEDED")
    assert done["webhookDeliveries"] == []
    job = await job_when(owner, failed, settled)
    assert job["status"] == "FAILED"
    (delivery,) = job["webhookDeliveries"]
    assert delivery["event"] == "FAILED" and delivery["status"] == "DELIVERED"
    (request,) = receiver.at(path)
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["data"]["id"] == failed and payload["data"]["error"]["code"] == "CONTENT_BLOCKED"


async def test_a_receiver_failing_three_times_gets_it_on_the_fourth_attempt(
    owner: StudioClient, receiver: Receiver
) -> None:
    path = receiver.path("flaky", 500, 503, 500)
    job_id = await generate(owner, "a sonnet", {"url": receiver.url(path)})
    job = await job_when(owner, job_id, settled)
    (delivery,) = job["webhookDeliveries"]
    assert delivery["status"] == "DELIVERED"
    assert [a["httpStatus"] for a in delivery["attempts"]] == [500, 503, 500, 200]
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 500", "HTTP 503", "HTTP 500", None]
    requests = receiver.at(path)
    assert len(requests) == 4
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert all(gap >= 0.15 for gap in gaps), f"retries follow the 0.2 s schedule: {gaps}"
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    for request in requests:
        Webhook(SECRET).verify(request.body, request.headers)


async def test_a_receiver_that_hangs_times_out_and_is_retried(
    owner: StudioClient, receiver: Receiver
) -> None:
    path = receiver.path("slow", "hang")
    job_id = await generate(owner, "a slow reply", {"url": receiver.url(path)})
    job = await job_when(owner, job_id, settled)
    (delivery,) = job["webhookDeliveries"]
    first, second = delivery["attempts"]
    assert first["httpStatus"] is None and "timed out" in first["error"]
    assert TIMEOUT_SECONDS * 1000 * 0.8 <= first["durationMs"] < TIMEOUT_SECONDS * 1000 * 4
    assert second["httpStatus"] == 200 and delivery["status"] == "DELIVERED"


async def test_a_redirect_is_not_followed(owner: StudioClient, receiver: Receiver) -> None:
    path = receiver.path("moved", *["redirect"] * 4)
    job_id = await generate(owner, "a moving target", {"url": receiver.url(path)})
    job = await job_when(owner, job_id, settled)
    (delivery,) = job["webhookDeliveries"]
    assert delivery["status"] == "FAILED" and len(delivery["attempts"]) == 4
    assert {a["httpStatus"] for a in delivery["attempts"]} == {302}
    assert all("redirects are not followed" in a["error"] for a in delivery["attempts"])
    assert len(receiver.at(path)) == 4 and receiver.at(path + "-moved") == []


async def test_an_administrator_sees_the_deliveries_too(
    owner: StudioClient, receiver: Receiver, hooks_studio: StudioProcess, hooks_dir: Path
) -> None:
    job_id = await generate(owner, "a shared view", {"url": receiver.url(receiver.path("admin"))})
    await job_when(owner, job_id, settled)
    admin = await new_client(hooks_studio, hooks_dir, "hooks-admin", role="ADMIN")
    job = (await admin.data(JOB, {"id": job_id}))["job"]
    assert len(job["webhookDeliveries"]) == 1


# ---------------------------------------------------------------- the default studio refuses local addresses


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1:9/hook", "https://localhost/hook", "https://[::1]/hook", "http://example.com/hook"],
)
async def test_without_allow_private_a_local_webhook_url_is_refused_and_no_job_is_made(
    user: StudioClient, url: str
) -> None:
    before = await job_count(user)
    error = await user.error(
        "mutation($input: GenerateTextInput!) { generateText(input: $input) { id } }",
        {"input": {"prompt": "never made", "webhook": {"url": url}}},
    )
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "input.webhook.url"
    assert await job_count(user) == before


@pytest.mark.parametrize(
    ("webhook", "field"),
    [
        ({}, "input.webhook"),
        ("https://hooks.example.com/x", "input.webhook"),
        ({"url": "https://hooks.example.com/x", "events": ["RUNNING"]}, "input.webhook.events"),
        ({"url": "https://hooks.example.com/x", "events": []}, "input.webhook.events"),
        ({"url": "https://hooks.example.com/" + "x" * 2100}, "input.webhook.url"),
    ],
    ids=["no-url", "not-an-object", "not-a-final-status", "no-events", "url-too-long"],
)
async def test_a_malformed_webhook_is_refused_naming_the_input(
    user: StudioClient, webhook: Any, field: str
) -> None:
    error = await user.error(
        "mutation($input: GenerateImageInput!) { generateImage(input: $input) { id } }",
        {"input": {"prompt": "never made", "webhook": webhook}},
    )
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == field
    assert await job_count(user) == 0
