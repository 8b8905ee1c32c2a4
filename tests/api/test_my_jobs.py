"""`myJobs`: one subscription that follows every job of the caller, and only the caller's."""

from __future__ import annotations

import time
from typing import Any

from tests.api.helpers import receive, submit, wait_for_jobs
from tests.support.client import StudioClient, Subscriptions

MY_JOBS = """subscription($statuses: [JobStatus!]) {
  myJobs(statuses: $statuses) { previousStatus job { id status progress } }
}"""
FINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


class Feed:
    """The events of one myJobs subscription, read as they come."""

    def __init__(self, socket: Subscriptions, op: str) -> None:
        self.socket = socket
        self.op = op
        self.events: list[dict[str, Any]] = []

    async def next_event(self, timeout: float) -> dict[str, Any]:
        while True:
            message = await receive(self.socket, timeout)
            if message.get("id") != self.op:
                continue
            assert message["type"] == "next" and not message["payload"].get("errors"), message
            event = dict(message["payload"]["data"]["myJobs"])
            self.events.append(event)
            return event

    async def until_final(self, job_ids: set[str], timeout: float = 30.0) -> None:
        """Read until every one of `job_ids` has delivered a final status."""
        deadline = time.monotonic() + timeout
        while not job_ids <= {e["job"]["id"] for e in self.events if e["job"]["status"] in FINAL}:
            await self.next_event(max(deadline - time.monotonic(), 0.01))

    async def until_live(self, client: StudioClient, attempts: int = 5) -> None:
        """The server starts watching a moment after `subscribe`: run warm-up jobs until one is seen."""
        for _ in range(attempts):
            warm_up = await submit(client, "generateText", {"prompt": "warm-up", "maxOutputTokens": 8})
            try:
                await self.until_final({warm_up["id"]}, timeout=2)
                return
            except TimeoutError:
                continue
        raise AssertionError("myJobs delivered nothing for any warm-up job")

    def of(self, job_id: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["job"]["id"] == job_id]


async def open_feed(client: StudioClient, socket: Subscriptions, statuses: list[str] | None = None) -> Feed:
    assert (await socket.ack())["type"] == "connection_ack"
    feed = Feed(socket, await socket.subscribe(MY_JOBS, {"statuses": statuses}))
    await feed.until_live(client)
    return feed


async def test_a_new_job_is_seen_queued_running_and_succeeded_with_its_previous_status(
    user: StudioClient,
) -> None:
    async with user.socket() as socket:
        feed = await open_feed(user, socket)
        job = await submit(user, "generateImage", {"prompt": "a kite over dunes"})
        await feed.until_final({job["id"]})

    events = feed.of(job["id"])
    statuses = [event["job"]["status"] for event in events]
    assert statuses[0] == "QUEUED" and "RUNNING" in statuses and statuses[-1] == "SUCCEEDED", statuses
    assert statuses.count("QUEUED") == statuses.count("SUCCEEDED") == 1, statuses
    assert [event["previousStatus"] for event in events] == [None, *statuses[:-1]]
    progress = [event["job"]["progress"] for event in events]
    assert progress == sorted(progress) and progress[-1] == 1.0


async def test_another_users_jobs_never_reach_the_subscriber(
    user: StudioClient, stranger: StudioClient
) -> None:
    async with user.socket() as socket:
        feed = await open_feed(user, socket)
        theirs = await submit(stranger, "generateText", {"prompt": "not for your eyes", "maxOutputTokens": 8})
        await wait_for_jobs(stranger)
        # Events arrive in commit order: once ours has finished, theirs (finished earlier) would have come.
        mine = await submit(user, "generateText", {"prompt": "mine", "maxOutputTokens": 8})
        await feed.until_final({mine["id"]})

    assert feed.of(mine["id"])
    assert feed.of(theirs["id"]) == []


async def test_a_status_filter_delivers_only_final_events(user: StudioClient) -> None:
    async with user.socket() as socket:
        feed = await open_feed(user, socket, statuses=["SUCCEEDED"])
        jobs = [
            await submit(user, "generateImage", {"prompt": "two kites", "count": 2}),
            await submit(user, "generateText", {"prompt": "two lines", "maxOutputTokens": 12}),
        ]
        await feed.until_final({job["id"] for job in jobs})

    for job in jobs:
        (event,) = feed.of(job["id"])
        assert event["job"]["status"] == "SUCCEEDED" and event["previousStatus"] == "RUNNING"
    assert {event["job"]["status"] for event in feed.events} == {"SUCCEEDED"}


async def test_a_cancelled_job_ends_with_cancelled_after_its_last_seen_status(user: StudioClient) -> None:
    async with user.socket() as socket:
        feed = await open_feed(user, socket)
        job = await submit(user, "generateVideo", {"prompt": "a slow pan", "durationSeconds": 8})
        await user.data("mutation($id: ID!) { cancelJob(id: $id) { id } }", {"id": job["id"]})
        await feed.until_final({job["id"]})

    events = feed.of(job["id"])
    statuses = [event["job"]["status"] for event in events]
    assert statuses[0] == "QUEUED" and statuses[-1] == "CANCELLED", statuses
    assert [event["previousStatus"] for event in events] == [None, *statuses[:-1]]
