"""A worker killed with SIGKILL mid-job: the lease expires, another worker finishes the job exactly once."""

from __future__ import annotations

import signal
import time

from tests.e2e.conftest import Processes
from tests.e2e.helpers import assert_downloads, assert_monotonic, job, submit, subscribe, usage
from tests.support.client import StudioClient
from tests.support.server import mint_token

# A short lease so the sweep re-queues quickly; speed 2: a 4-second video takes about 2.5 s,
# leaving a wide window between "progress > 0.2" and the end of the job.
ENV = {"GENMEDIA_JOB_LEASE_SECONDS": "2", "GENMEDIA_LOCAL_SPEED": "2"}


async def test_a_job_whose_worker_is_killed_is_finished_exactly_once_by_another(
    processes: Processes,
) -> None:
    started = time.monotonic()
    server = processes.serve({"GENMEDIA_WORKERS": "0", **ENV})
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "crash@example.com"))
    first_worker = processes.worker(ENV)
    submitted = await submit(client, "video", {"prompt": "a storm over the sea", "durationSeconds": 4})

    async with client.socket() as socket:  # connected to the API process throughout
        feed = await subscribe(socket, submitted["id"])
        midway = await feed.until(
            lambda e: e["job"]["status"] == "RUNNING" and e["job"]["progress"] > 0.2, timeout=20
        )
        first_worker.kill(signal.SIGKILL)
        assert first_worker.process is not None and first_worker.process.returncode == -signal.SIGKILL
        assert midway["job"]["attempts"] == 1

        # Nobody finishes the job while no worker is alive.
        current = await job(client, submitted["id"])
        assert current["status"] == "RUNNING" and current["assets"] == [], current

        processes.worker(ENV)
        events = await feed.to_the_end(timeout=20)

    statuses = [event["job"]["status"] for event in events]
    after_kill = statuses[statuses.index("RUNNING") :]
    assert "QUEUED" in after_kill, f"the expired lease put the job back in the queue: {feed.statuses()}"
    assert statuses[-1] == "SUCCEEDED", feed.statuses()
    assert statuses.count("SUCCEEDED") == 1, feed.statuses()
    assert_monotonic(events)  # progress never goes back, not even across the retry

    final = events[-1]["job"]
    assert final["attempts"] == 2 and final["progress"] == 1.0 and final["error"] is None
    (asset,) = final["assets"]
    assert asset["kind"] == "VIDEO"
    response = await assert_downloads(asset)
    assert response.content[4:8] == b"ftyp"

    # Exactly one set of results and one charge.
    assert [a["id"] for a in (await job(client, submitted["id"]))["assets"]] == [asset["id"]]
    library = await client.data("{ assets { totalCount edges { node { id } } } }")
    assert library["assets"]["totalCount"] == 1
    assert [edge["node"]["id"] for edge in library["assets"]["edges"]] == [asset["id"]]
    totals = await usage(client)
    assert (totals["videos"], totals["jobs"], totals["failedJobs"]) == (1, 1, 0), totals
    quota = (await client.data("{ me { quota { videosUsedThisMonth } } }"))["me"]["quota"]
    assert quota["videosUsedThisMonth"] == 1, "the retried job was booked once"
    media = [
        path
        for path in (processes.data_dir / "blobs").rglob("*")
        if path.is_file() and not path.name.endswith(".meta.json")
    ]
    assert len(media) == 1, media

    assert time.monotonic() - started < 30, "the crash is recovered in bounded time"


async def test_a_worker_stopped_with_sigterm_hands_its_job_back_at_once(processes: Processes) -> None:
    # A long lease: the job can only come back this soon if the stopping worker releases it.
    env = {"GENMEDIA_JOB_LEASE_SECONDS": "30", "GENMEDIA_LOCAL_SPEED": "2"}
    server = processes.serve({"GENMEDIA_WORKERS": "0", **env})
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "handover@example.com"))
    first_worker = processes.worker(env)
    submitted = await submit(client, "video", {"prompt": "a train at night", "durationSeconds": 4})

    async with client.socket() as socket:
        feed = await subscribe(socket, submitted["id"])
        await feed.until(lambda e: e["job"]["status"] == "RUNNING" and e["job"]["progress"] > 0.2, timeout=20)
        first_worker.stop()
        assert first_worker.process is not None and first_worker.process.returncode == 0
        requeued = await feed.until(lambda e: e["job"]["status"] == "QUEUED", timeout=5)
        assert requeued["job"]["attempts"] == 1 and requeued["job"]["assets"] == []

        processes.worker(env)
        events = await feed.to_the_end(timeout=20)

    assert_monotonic(events)
    final = events[-1]["job"]
    assert final["status"] == "SUCCEEDED" and final["attempts"] == 2, feed.statuses()
    assert len(final["assets"]) == 1
    library = await client.data("{ assets { totalCount } }")
    assert library["assets"]["totalCount"] == 1
    totals = await usage(client)
    assert (totals["videos"], totals["jobs"]) == (1, 1), totals
