"""An API-only `genmedia serve` and a separate `genmedia worker` sharing one data dir.

The job is submitted to the API, run by the worker process, and every progress step the worker
writes reaches the WebSocket subscriber of the API process through the SQLite change feed.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from tests.e2e.conftest import Processes
from tests.e2e.helpers import assert_downloads, assert_monotonic, job, submit, subscribe, usage
from tests.support.client import StudioClient
from tests.support.server import mint_token

# speed 4: a 4-second video takes about 1.25 s, with at least ten progress steps
FAST = {"GENMEDIA_LOCAL_SPEED": "4"}


async def test_a_job_submitted_to_the_api_is_run_by_a_separate_worker_and_streamed_live(
    processes: Processes,
) -> None:
    server = processes.serve({"GENMEDIA_WORKERS": "0", **FAST})
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "cross@example.com"))
    submitted = await submit(client, "video", {"prompt": "a lighthouse in fog", "durationSeconds": 4})
    assert submitted["status"] == "QUEUED"

    async with client.socket() as socket:
        feed = await subscribe(socket, submitted["id"])
        first = await feed.next(timeout=10)
        assert first is not None and first["job"]["status"] == "QUEUED"

        # The API process has no workers: nothing happens to the job until a worker exists.
        with pytest.raises(TimeoutError):
            await feed.next(timeout=1.0)
        assert (await job(client, submitted["id"]))["status"] == "QUEUED"

        processes.worker(FAST)
        started = time.monotonic()
        events = await feed.to_the_end(timeout=30)
        took = time.monotonic() - started

    statuses = [event["job"]["status"] for event in events]
    assert statuses[0] == "QUEUED" and statuses[-1] == "SUCCEEDED", feed.statuses()
    assert set(statuses) == {"QUEUED", "RUNNING", "SUCCEEDED"}, feed.statuses()
    # In order: queued, then running, then done; never back.
    order = {"QUEUED": 0, "RUNNING": 1, "SUCCEEDED": 2}
    assert [order[s] for s in statuses] == sorted(order[s] for s in statuses), feed.statuses()
    for before, after in itertools.pairwise(events):
        assert after["previousStatus"] == before["job"]["status"], (before, after)
    assert_monotonic(events)
    steps = {event["job"]["progress"] for event in events if 0 < event["job"]["progress"] < 1}
    assert len(steps) >= 10, f"every progress step of the worker reaches the subscriber: {sorted(steps)}"
    assert events[-1]["job"]["progress"] == 1.0
    assert took < 15, f"the cross-process feed is live, not batched: {took:.1f}s"

    final = events[-1]["job"]
    assert final["attempts"] == 1 and final["error"] is None
    (asset,) = final["assets"]
    assert asset["kind"] == "VIDEO" and asset["mimeType"] == "video/mp4"
    response = await assert_downloads(asset)
    assert response.content[4:8] == b"ftyp"
    assert asset["url"].startswith(server.base_url + "/files/"), "signed by the API process"

    totals = await usage(client)
    assert (totals["videos"], totals["jobs"]) == (1, 1), totals


async def test_a_worker_started_later_picks_up_every_waiting_job(processes: Processes) -> None:
    server = processes.serve({"GENMEDIA_WORKERS": "0", "GENMEDIA_LOCAL_SPEED": "0"})
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "backlog@example.com"))
    jobs = [
        await submit(client, "image", {"prompt": "backlog one"}),
        await submit(client, "text", {"prompt": "backlog two", "maxOutputTokens": 40}),
        await submit(client, "image", {"prompt": "backlog three", "count": 2}),
    ]
    await asyncio.sleep(0.3)
    assert [(await job(client, j["id"]))["status"] for j in jobs] == ["QUEUED"] * 3

    processes.worker({"GENMEDIA_LOCAL_SPEED": "0"})
    for submitted in jobs:
        async with client.socket() as socket:
            feed = await subscribe(socket, submitted["id"])
            events = await feed.to_the_end(timeout=30)
        assert events[-1]["job"]["status"] == "SUCCEEDED", feed.statuses()
    data = await client.data("{ assets { totalCount } }")
    assert data["assets"]["totalCount"] == 4


async def test_cancelling_in_the_api_stops_the_job_in_the_worker_process(processes: Processes) -> None:
    env = {"GENMEDIA_LOCAL_SPEED": "2", "GENMEDIA_WORKERS": "1"}  # the worker runs one job at a time
    server = processes.serve({**env, "GENMEDIA_WORKERS": "0"})
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "stopper@example.com"))
    processes.worker(env)
    video = await submit(client, "video", {"prompt": "a long pan", "durationSeconds": 4})

    async with client.socket() as socket:
        feed = await subscribe(socket, video["id"])
        await feed.until(lambda e: e["job"]["status"] == "RUNNING" and e["job"]["progress"] > 0.2, timeout=20)
        cancelled = await client.data(
            "mutation($id: ID!) { cancelJob(id: $id) { status } }", {"id": video["id"]}
        )
        assert cancelled["cancelJob"]["status"] == "CANCELLED"
        events = await feed.to_the_end(timeout=10)
    assert events[-1]["job"]["status"] == "CANCELLED" and events[-1]["job"]["assets"] == []

    # The worker is free again (its only slot was released) and keeps nothing of the cancelled job.
    image = await submit(client, "image", {"prompt": "after the cancel"})
    async with client.socket() as socket:
        feed = await subscribe(socket, image["id"])
        done = await feed.to_the_end(timeout=20)
    assert done[-1]["job"]["status"] == "SUCCEEDED", feed.statuses()
    assert (await job(client, video["id"]))["assets"] == []
    library = await client.data("{ assets { totalCount edges { node { kind } } } }")
    assert library["assets"]["totalCount"] == 1
    assert library["assets"]["edges"][0]["node"]["kind"] == "IMAGE"
    totals = await usage(client)
    assert (totals["videos"], totals["images"]) == (0, 1), totals
    # The cancelled video was given back to the quota: only the image counts.
    quota = (await client.data("{ me { quota { videosUsedThisMonth imagesUsedToday } } }"))["me"]["quota"]
    assert quota == {"videosUsedThisMonth": 0, "imagesUsedToday": 1}, quota
    media = [p for p in (processes.data_dir / "blobs").rglob("*") if p.is_file() and ".meta" not in p.name]
    assert len(media) == 1, media
