"""Batches at the domain level, on SQLite: created all or nothing, every job counted exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.blobs.localfs import LocalBlobStore
from backends.docstore.sqlite import SqliteDocStore
from backends.generators.local import LocalGenerator
from backends.queue.docstore import DocstoreQueue
from config import Settings
from domain.access import Actor
from domain.batch_tally import BATCHES, batch_of, count_finished
from domain.batches import Batches, BatchItem
from domain.clock import now_iso
from domain.desk import JobDesk
from domain.errors import ErrorCode, StudioError
from domain.jobs import JOBS, JobKind, JobStatus
from domain.quota_limits import QuotaLimits
from domain.quotas import QuotaBook
from domain.runner import JobRunner
from domain.users import Directory, Role, UserStatus
from wiring import build_catalog


@dataclass
class Studio:
    docs: SqliteDocStore
    blobs: LocalBlobStore
    desk: JobDesk
    batches: Batches
    actor: Actor

    def runner(self, name: str) -> JobRunner:
        catalog = build_catalog(Settings())
        return JobRunner(
            self.docs, self.blobs, LocalGenerator(speed=0), catalog, worker_id=name, lease_seconds=5
        )


@pytest.fixture
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    docs = SqliteDocStore(tmp_path / "studio.db")
    blobs = LocalBlobStore(tmp_path / "blobs", base_url="http://127.0.0.1:1", secret=b"s" * 32)
    user = await Directory(docs).put("owner@example.com", role=Role.USER, status=UserStatus.ACTIVE)
    queue = DocstoreQueue(docs)
    quotas = QuotaBook(docs, QuotaLimits(images_per_day=10, videos_per_month=5, monthly_budget_usd=None))
    desk = JobDesk(docs, queue, build_catalog(Settings()), quotas=quotas)
    batches = Batches(docs, desk, queue, quotas=quotas, max_jobs=50)
    try:
        yield Studio(docs, blobs, desk, batches, Actor(user))
    finally:
        await docs.close()


def images(*prompts: str) -> list[BatchItem]:
    return [BatchItem(JobKind.IMAGE, {"prompt": p}, path=f"input.images[{i}]") for i, p in enumerate(prompts)]


async def test_jobs_finishing_at_once_in_many_workers_are_each_counted_once(studio: Studio) -> None:
    prompts = [f"a lighthouse {i}" for i in range(7)] + ["a wreck [[blocked]]"]
    batch = await studio.batches.submit(studio.actor, images(*prompts))
    job_ids = list(batch.data["job_ids"])
    cancelled = job_ids[3]

    async def cancel() -> None:
        with contextlib.suppress(StudioError):  # CONFLICT when a worker finished it first
            await studio.desk.cancel(studio.actor, cancelled)

    runners = [studio.runner(f"w{i}") for i in range(4)]
    await asyncio.gather(cancel(), *(runner.run(job_id) for runner in runners for job_id in job_ids))

    final = await studio.docs.get(BATCHES, batch.id)
    assert final is not None
    jobs = [await studio.docs.get(JOBS, job_id) for job_id in job_ids]
    statuses = [doc.data["status"] for doc in jobs if doc is not None]
    data = final.data
    assert data["succeeded"] == statuses.count("SUCCEEDED")
    assert data["failed"] == statuses.count("FAILED") == 1
    assert data["cancelled"] == statuses.count("CANCELLED")
    assert data["succeeded"] + data["failed"] + data["cancelled"] == 8
    assert sorted(data["counted"]) == sorted(job_ids)
    assert data["status"] == "FAILED" and data["finished_at"] is not None


async def test_a_transition_told_twice_still_counts_once(studio: Studio) -> None:
    batch = await studio.batches.submit(studio.actor, images("one", "two"))
    job_id = batch.data["job_ids"][0]
    job = await studio.docs.get(JOBS, job_id)
    assert job is not None
    for _ in range(2):

        async def count(tx: object) -> None:
            found = await batch_of(tx, job.data)  # type: ignore[arg-type]
            count_finished(tx, found, job_id, JobStatus.SUCCEEDED)  # type: ignore[arg-type]

        await studio.docs.run_transaction(count)
    seen = await studio.docs.get(BATCHES, batch.id)
    assert seen is not None and seen.data["succeeded"] == 1 and seen.data["status"] == "RUNNING"


async def test_a_batch_beyond_the_quota_creates_nothing(studio: Studio) -> None:
    with pytest.raises(StudioError) as refused:
        await studio.batches.submit(studio.actor, images(*[f"p{i}" for i in range(11)]))
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    assert await studio.docs.count(JOBS) == 0 and await studio.docs.count(BATCHES) == 0
    fits = await studio.batches.submit(studio.actor, images(*[f"p{i}" for i in range(10)]))
    assert await studio.docs.count(JOBS) == 10 and fits.data["total"] == 10


async def test_a_bad_item_is_named_by_its_path_and_nothing_is_created(studio: Studio) -> None:
    items = [
        *images("fine", "fine too"),
        BatchItem(JobKind.VIDEO, {"prompt": "v", "durationSeconds": 5}, path="input.videos[0]"),
    ]
    with pytest.raises(StudioError) as refused:
        await studio.batches.submit(studio.actor, items)
    assert refused.value.details["field"] == "input.videos[0].durationSeconds"
    assert await studio.docs.count(JOBS) == 0


async def test_jobs_given_up_by_the_sweeper_or_their_deliveries_count_as_failed(studio: Studio) -> None:
    batch = await studio.batches.submit(studio.actor, images("swept", "abandoned"))
    swept, abandoned = batch.data["job_ids"]
    await studio.docs.update(
        JOBS,
        swept,
        {"status": "RUNNING", "attempts": 3, "lease_owner": "dead", "lease_expires_at": now_iso()},
    )
    runner = studio.runner("sweeper")
    assert await runner.sweep() == 1
    assert await runner.abandon(abandoned, StudioError(ErrorCode.INTERNAL, "deliveries ran out"))
    final = await studio.docs.get(BATCHES, batch.id)
    assert final is not None
    assert (final.data["failed"], final.data["status"]) == (2, "FAILED")
