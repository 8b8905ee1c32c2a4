"""Batches over the API: all or nothing at creation, counted as their jobs end, followed live, one webhook."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from tests.api.helpers import job_count, new_client
from tests.api.test_quotas import limit
from tests.conftest import assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess
from tests.support.webhook_receiver import SECRET, Receiver

BATCH_FIELDS = "id total succeeded failed cancelled status createdAt finishedAt"
GENERATE = (
    "mutation($input: GenerateBatchInput!) { generateBatch(input: $input) { "
    f"{BATCH_FIELDS} jobs {{ id kind status batch {{ id }} }} }} }}"
)
BATCH = f"query($id: ID!) {{ batch(id: $id) {{ {BATCH_FIELDS} jobs {{ id status }} }} }}"
PROGRESS = "subscription($id: ID!) { batchProgress(id: $id) { id total succeeded failed status } }"
CANCEL = "mutation($id: ID!) { cancelJob(id: $id) { id status } }"
BLOCKED = "[[blocked]]"  # the local generator refuses prompts holding this


def pictures(count: int, label: str = "a lighthouse") -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:6]  # never answered from the request cache
    return [{"prompt": f"{label} {tag} {i}"} for i in range(count)]


def clips(count: int) -> list[dict[str, Any]]:
    return [{"prompt": f"waves {uuid.uuid4().hex[:6]} {i}", "durationSeconds": 4} for i in range(count)]


async def generate(client: StudioClient, **values: Any) -> dict[str, Any]:
    return dict((await client.data(GENERATE, {"input": values}))["generateBatch"])


async def finished(client: StudioClient, batch_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll (bounded) until the batch has a final status."""
    deadline = time.monotonic() + timeout
    while True:
        batch = dict((await client.data(BATCH, {"id": batch_id}))["batch"])
        if batch["status"] != "RUNNING":
            return batch
        assert time.monotonic() < deadline, f"the batch is still running: {batch}"
        await asyncio.sleep(0.05)


async def test_a_batch_of_images_and_a_video_succeeds_and_is_followed_to_the_end(user: StudioClient) -> None:
    async with user.socket() as socket:
        await socket.ack()
        batch = await generate(user, images=pictures(3), videos=clips(1))
        op = await socket.subscribe(PROGRESS, {"id": batch["id"]})
        messages = await socket.messages(op)
    assert batch["total"] == 4 and batch["status"] == "RUNNING" and batch["finishedAt"] is None
    assert [job["kind"] for job in batch["jobs"]] == ["IMAGE"] * 3 + ["VIDEO"]
    assert all(job["batch"]["id"] == batch["id"] for job in batch["jobs"])

    events = [m["payload"]["data"]["batchProgress"] for m in messages if m["type"] == "next"]
    assert messages[-1]["type"] == "complete"
    done = [event["succeeded"] + event["failed"] for event in events]
    assert done == sorted(done) and done[-1] == 4, events
    assert [event["status"] for event in events[:-1]] == ["RUNNING"] * (len(events) - 1)
    assert events[-1]["status"] == "SUCCEEDED"

    final = await finished(user, batch["id"])
    assert (final["succeeded"], final["failed"], final["cancelled"]) == (4, 0, 0)
    assert final["finishedAt"] is not None
    assert {job["status"] for job in final["jobs"]} == {"SUCCEEDED"}
    listed = await user.data(
        "query($id: ID!) { jobs(filter: {batchId: $id}) { totalCount edges { node { id } } } }",
        {"id": batch["id"]},
    )
    assert listed["jobs"]["totalCount"] == 4
    assert {e["node"]["id"] for e in listed["jobs"]["edges"]} == {job["id"] for job in batch["jobs"]}
    node = await user.data(
        "query($id: ID!) { node(id: $id) { ... on Batch { total } } }", {"id": batch["id"]}
    )
    assert node["node"]["total"] == 4


async def test_a_refused_item_fails_the_batch_and_is_counted(user: StudioClient) -> None:
    items = [*pictures(2), {"prompt": f"a wreck {BLOCKED} {uuid.uuid4().hex[:6]}"}]
    batch = await generate(user, images=items)
    final = await finished(user, batch["id"])
    assert (final["status"], final["succeeded"], final["failed"]) == ("FAILED", 2, 1)
    assert sorted(job["status"] for job in final["jobs"]) == ["FAILED", "SUCCEEDED", "SUCCEEDED"]


async def test_cancelling_a_queued_job_of_a_batch_counts_it(user: StudioClient) -> None:
    batch = await generate(user, videos=clips(4))
    last = batch["jobs"][-1]["id"]  # two workers: the fourth video waits behind the others
    cancelled = (await user.data(CANCEL, {"id": last}))["cancelJob"]
    assert cancelled["status"] == "CANCELLED"
    final = await finished(user, batch["id"])
    assert (final["succeeded"], final["failed"], final["cancelled"]) == (3, 1, 1)
    assert final["status"] == "FAILED"


async def test_a_bad_item_is_named_by_its_path_and_nothing_is_created(user: StudioClient) -> None:
    before = await job_count(user)
    values = {"images": [*pictures(3), {"prompt": "  "}], "videos": clips(1)}
    error = await user.error(GENERATE, {"input": values})
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "input.images[3].prompt"
    values = {"images": pictures(1), "videos": [{"prompt": "waves", "durationSeconds": 5}]}
    error = await user.error(GENERATE, {"input": values})
    assert error["extensions"]["field"] == "input.videos[0].durationSeconds"
    assert await job_count(user) == before


async def test_more_than_fifty_generations_are_refused(user: StudioClient) -> None:
    before = await job_count(user)
    error = await user.error(GENERATE, {"input": {"images": pictures(40), "videos": clips(11)}})
    assert_error(error, "BAD_USER_INPUT")
    assert "at most 50" in error["message"]
    assert await job_count(user) == before


async def test_a_batch_beyond_the_quota_creates_nothing_while_a_smaller_one_fits(
    admin: StudioClient, user: StudioClient
) -> None:
    await limit(admin, user, imagesPerDay=5)
    error = await user.error(GENERATE, {"input": {"images": pictures(6)}})
    assert_error(error, "QUOTA_EXCEEDED")
    assert error["extensions"]["limit"] == "imagesPerDay"
    assert await job_count(user) == 0
    batch = await generate(user, images=pictures(5))
    assert batch["total"] == 5 and await job_count(user) == 5


async def test_a_stranger_cannot_see_or_follow_someone_elses_batch(
    user: StudioClient, stranger: StudioClient
) -> None:
    batch = await generate(user, images=pictures(1))
    assert_error(await stranger.error(BATCH, {"id": batch["id"]}), "NOT_FOUND")
    error = await stranger.error(
        "query($id: ID!) { jobs(filter: {batchId: $id}) { totalCount } }", {"id": batch["id"]}
    )
    assert_error(error, "NOT_FOUND")


# ---------------------------------------------------------------- the batch's webhook


async def test_the_batch_webhook_is_called_once_when_every_job_is_done(
    hooks_studio: StudioProcess,
    hooks_dir: Path,
    receiver: Receiver,
) -> None:
    client = await new_client(hooks_studio, hooks_dir, "batch-hooks")
    path = receiver.path("batch")
    batch = await generate(client, images=pictures(2), videos=clips(1), webhook={"url": receiver.url(path)})
    final = await finished(client, batch["id"])
    deadline = time.monotonic() + 10
    while not receiver.at(path):
        assert time.monotonic() < deadline, "the batch webhook never came"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # room for a second call, which must not come
    (request,) = receiver.at(path)
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["type"] == "batch.finished"
    data = payload["data"]
    assert data["id"] == batch["id"] and data["status"] == "SUCCEEDED" == final["status"]
    assert (data["total"], data["succeeded"], data["failed"]) == (3, 3, 0)
