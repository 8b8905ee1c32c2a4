"""The engine under load and faults: after each, every job is final, made once, counted once, and told.

An API process without workers takes the jobs; separate worker processes run them. Each user
follows their jobs with `myJobs` on a WebSocket to the API process throughout.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from tests.e2e.conftest import Processes
from tests.e2e.helpers import poll, today_window
from tests.support.client import StudioClient, Subscriptions
from tests.support.server import mint_token

FINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
FAST = {"GENMEDIA_LOCAL_SPEED": "20"}
MY_JOBS = "subscription { myJobs { job { id status } } }"
STATE = """query($from: DateTime!, $to: DateTime!) {
  jobs(first: 100) { totalCount edges { node { id status costUsd input assets { id } } } }
  assets(first: 100) { totalCount edges { node { id job { id } } } }
  me {
    usage(from: $from, to: $to) { images texts jobs failedJobs costUsd }
    quota { imagesUsedToday spentThisMonthUsd }
  }
}"""


@dataclass
class Follower:
    """One user's `myJobs` subscription: the last status seen per job."""

    socket: Subscriptions
    op_id: str
    last: dict[str, str] = field(default_factory=dict)

    async def read(self) -> None:
        while True:
            message = json.loads(await self.socket.ws.recv())
            if message.get("id") == self.op_id and message["type"] == "next":
                job = message["payload"]["data"]["myJobs"]["job"]
                self.last[job["id"]] = job["status"]


@dataclass
class Studio:
    clients: list[StudioClient]
    followers: list[Follower]
    jobs: dict[int, list[str]] = field(default_factory=dict)  # user index -> job ids


@asynccontextmanager
async def studio_of(processes: Processes, users: int) -> AsyncIterator[Studio]:
    server = processes.serve({"GENMEDIA_WORKERS": "0", **FAST})
    clients = [
        StudioClient(server.base_url, await mint_token(processes.data_dir, f"load-{index}@example.com"))
        for index in range(users)
    ]
    async with AsyncExitStack() as stack:
        followers = []
        for client in clients:
            socket = await stack.enter_async_context(client.socket())
            followers.append(Follower(socket, await socket.subscribe(MY_JOBS)))
        readers = [asyncio.create_task(follower.read()) for follower in followers]
        await asyncio.sleep(0.2)  # the subscriptions are in place before anything is submitted
        try:
            yield Studio(clients, followers)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


async def submit_many(studio: Studio, per_user: int) -> None:
    """Every user submits `per_user` jobs at once: images of 1-2 pictures and texts."""

    async def one(user: int, index: int) -> str:
        if index % 3 == 2:
            document = (
                "mutation($p: String!) { job: generateText(input: {prompt: $p, maxOutputTokens: 64}) { id } }"
            )
        else:
            document = f"mutation($p: String!) {{ job: generateImage(input: {{prompt: $p, count: {1 + index % 2}}}) {{ id }} }}"
        data = await studio.clients[user].data(document, {"p": f"load test {user}-{index}"})
        return str(data["job"]["id"])

    for user in range(len(studio.clients)):
        studio.jobs[user] = []
    results = await asyncio.gather(
        *(one(user, index) for user in range(len(studio.clients)) for index in range(per_user))
    )
    for position, job_id in enumerate(results):
        studio.jobs[position // per_user].append(job_id)


async def assert_all_final_once_and_told(studio: Studio, timeout: float) -> None:
    """Every job final with exactly one asset set, usage counted once, every follower told the end."""
    for user, client in enumerate(studio.clients):
        state = await poll(
            lambda client=client: client.data(STATE, today_window()),
            lambda data: all(edge["node"]["status"] in FINAL for edge in data["jobs"]["edges"]),
            timeout=timeout,
        )
        jobs = [edge["node"] for edge in state["jobs"]["edges"]]
        assert sorted(job["id"] for job in jobs) == sorted(studio.jobs[user])
        succeeded = [job for job in jobs if job["status"] == "SUCCEEDED"]
        assert len(succeeded) == len(jobs), [job for job in jobs if job["status"] != "SUCCEEDED"]
        for job in succeeded:
            wanted = job["input"].get("count", 1)
            assert len(job["assets"]) == wanted, job
        # One asset set per job: the library holds exactly the jobs' assets, each tied to its job.
        library = {edge["node"]["id"]: edge["node"]["job"]["id"] for edge in state["assets"]["edges"]}
        made = {asset["id"]: job["id"] for job in succeeded for asset in job["assets"]}
        assert library == made
        totals = state["me"]["usage"]
        images = sum(job["input"].get("count", 1) for job in succeeded if "count" in job["input"])
        assert (totals["jobs"], totals["failedJobs"], totals["images"]) == (len(jobs), 0, images), totals
        assert abs(totals["costUsd"] - sum(job["costUsd"] for job in succeeded)) < 1e-6, totals
        # The quota booked each job once: what it counts is what was made and charged.
        quota = state["me"]["quota"]
        assert quota["imagesUsedToday"] == images, quota
        assert abs(quota["spentThisMonthUsd"] - totals["costUsd"]) < 1e-6, (quota, totals)

    deadline = time.monotonic() + 10
    for user, follower in enumerate(studio.followers):
        while {follower.last.get(job_id) for job_id in studio.jobs[user]} != {"SUCCEEDED"}:
            assert time.monotonic() < deadline, (
                f"user {user}'s subscriber missed final events: {follower.last}"
            )
            await asyncio.sleep(0.05)


async def test_a_hundred_jobs_from_ten_users_at_once_with_two_workers(processes: Processes) -> None:
    async with studio_of(processes, users=10) as studio:
        processes.worker(FAST)
        processes.worker(FAST)
        await submit_many(studio, per_user=10)
        await assert_all_final_once_and_told(studio, timeout=90)


async def test_a_docstore_locked_for_longer_than_a_lease_loses_and_repeats_nothing(
    processes: Processes,
) -> None:
    async with studio_of(processes, users=3) as studio:
        processes.worker(FAST)
        processes.worker(FAST)
        await submit_many(studio, per_user=6)
        # While jobs are running, another process takes the database's write lock for longer
        # than a job lease (3 s in tests): progress, leases and results all wait, then resume.
        await poll(
            lambda: studio.clients[0].data(
                "{ jobs(filter: {statuses: [RUNNING, SUCCEEDED]}) { totalCount } }"
            ),
            lambda data: data["jobs"]["totalCount"] > 0,
            timeout=20,
        )
        await asyncio.to_thread(hold_write_lock, processes, seconds=4.0)
        pending = await unfinished(studio)
        assert pending, "the lock came after every job had finished: it tested nothing"
        await assert_all_final_once_and_told(studio, timeout=90)


async def unfinished(studio: Studio) -> list[str]:
    """Jobs of any user not yet in a final status."""
    waiting = []
    for client in studio.clients:
        data = await client.data(
            "{ jobs(first: 100, filter: {statuses: [QUEUED, RUNNING]}) { edges { node { id } } } }"
        )
        waiting += [edge["node"]["id"] for edge in data["jobs"]["edges"]]
    return waiting


def hold_write_lock(processes: Processes, seconds: float) -> None:
    conn = sqlite3.connect(processes.data_dir / "studio.db", isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


async def test_a_worker_killed_mid_image_is_replaced_and_the_images_are_made_once(
    processes: Processes,
) -> None:
    slow = {"GENMEDIA_LOCAL_SPEED": "0.5", "GENMEDIA_JOB_LEASE_SECONDS": "2"}
    async with studio_of(processes, users=1) as studio:
        client = studio.clients[0]
        first = processes.worker(slow)
        data = await client.data(
            'mutation { job: generateImage(input: {prompt: "a gannet", count: 4}) { id } }'
        )
        job_id = data["job"]["id"]
        studio.jobs[0] = [job_id]
        progress = "query($id: ID!) { job(id: $id) { status progress attempts } }"
        await poll(
            lambda: client.data(progress, {"id": job_id}),
            lambda data: data["job"]["status"] == "RUNNING" and data["job"]["progress"] > 0.2,
            timeout=20,
        )
        first.kill(signal.SIGKILL)
        processes.worker(FAST)
        await assert_all_final_once_and_told(studio, timeout=30)
        final = await client.data(progress, {"id": job_id})
        assert final["job"]["attempts"] == 2, final
    blobs = [path for path in (processes.data_dir / "blobs").rglob("*") if path.is_file()]
    originals = [path for path in blobs if path.suffix == ".png" and "thumb" not in path.name]
    assert len(originals) == 4, sorted(str(path) for path in blobs)
