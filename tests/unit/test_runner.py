"""The job engine at the domain level, on the embedded adapters: every job ends exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.blobs.localfs import LocalBlobStore
from backends.docstore.sqlite import SqliteDocStore
from backends.generators.local import LocalGenerator
from backends.queue.docstore import DocstoreQueue
from config import Settings
from domain.access import Actor
from domain.assets import ASSETS
from domain.clock import now_iso
from domain.desk import JobDesk
from domain.errors import ErrorCode, StudioError
from domain.jobs import JOBS, JobKind
from domain.ports import Filter, Query
from domain.runner import JobRunner
from domain.usage import USAGE
from domain.users import Directory, Role, UserStatus
from wiring import build_catalog


@dataclass
class Engine:
    docs: SqliteDocStore
    blobs: LocalBlobStore
    desk: JobDesk
    actor: Actor

    def runner(
        self,
        generator: LocalGenerator | None = None,
        *,
        name: str = "w1",
        max_attempts: int = 3,
        on_finished: Callable[[str, str, str, float], None] | None = None,
    ) -> JobRunner:
        return JobRunner(
            self.docs,
            self.blobs,
            generator or LocalGenerator(speed=0),
            build_catalog(Settings()),
            worker_id=name,
            lease_seconds=5,
            max_attempts=max_attempts,
            on_finished=on_finished,
        )

    async def submit(self, kind: JobKind = JobKind.IMAGE, **values: object) -> str:
        doc = await self.desk.submit(self.actor, kind, {"prompt": "a lighthouse", **values})
        return doc.id

    async def job(self, job_id: str) -> dict[str, object]:
        doc = await self.docs.get(JOBS, job_id)
        assert doc is not None
        return doc.data


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    docs = SqliteDocStore(tmp_path / "studio.db")
    blobs = LocalBlobStore(tmp_path / "blobs", base_url="http://127.0.0.1:1", secret=b"s" * 32)
    user = await Directory(docs).put("owner@example.com", role=Role.USER, status=UserStatus.ACTIVE)
    desk = JobDesk(docs, DocstoreQueue(docs), build_catalog(Settings()))
    try:
        yield Engine(docs, blobs, desk, Actor(user))
    finally:
        await docs.close()


async def test_a_job_delivered_many_times_at_once_runs_once(engine: Engine) -> None:
    job_id = await engine.submit()
    runners = [engine.runner(name=f"w{i}") for i in range(8)]
    await asyncio.gather(*(runner.run(job_id) for runner in runners))
    job = await engine.job(job_id)
    assert job["status"] == "SUCCEEDED" and job["attempts"] == 1
    assets = await engine.docs.query(Query(ASSETS, (Filter("job_id", "==", job_id),)))
    assert len(assets) == 1
    usage = await engine.docs.query(Query(USAGE))
    assert [doc.data["images"] for doc in usage] == [1]


async def test_a_finished_job_is_never_run_again(engine: Engine) -> None:
    job_id = await engine.submit()
    await engine.runner().run(job_id)
    before = await engine.job(job_id)
    await engine.runner(name="late").run(job_id)
    assert await engine.job(job_id) == before


async def test_progress_only_goes_forward_and_ends_at_one(engine: Engine) -> None:
    job_id = await engine.submit(JobKind.VIDEO, durationSeconds=4)
    seen: list[float] = []

    async def watch() -> None:
        async for doc in engine.docs.watch_document(JOBS, job_id):
            assert doc is not None
            seen.append(doc.data["progress"])
            if doc.data["status"] == "SUCCEEDED":
                return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.05)
    await engine.runner(LocalGenerator(speed=20)).run(job_id)
    await asyncio.wait_for(watcher, 5)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(set(seen)) >= 5


async def test_a_refused_prompt_fails_at_once_with_content_blocked_and_no_charge(engine: Engine) -> None:
    job_id = await engine.submit(prompt="something [[blocked]]")
    await engine.runner().run(job_id)
    job = await engine.job(job_id)
    assert job["status"] == "FAILED" and job["attempts"] == 1
    assert job["error"]["code"] == ErrorCode.CONTENT_BLOCKED.value  # type: ignore[index]
    assert job["cost_usd"] == 0.0
    (usage,) = await engine.docs.query(Query(USAGE))
    assert usage.data["failed_jobs"] == 1 and "cost_usd" not in usage.data


async def test_upstream_failures_are_retried_then_fail_with_the_upstream_code(engine: Engine) -> None:
    job_id = await engine.submit()
    runner = engine.runner(LocalGenerator(speed=0, fail_rate=1.0), max_attempts=3)
    for _ in range(5):
        await runner.run(job_id)
    job = await engine.job(job_id)
    assert job["status"] == "FAILED" and job["attempts"] == 3
    assert job["error"]["code"] == "UPSTREAM_UNAVAILABLE"  # type: ignore[index]
    assert await engine.docs.query(Query(ASSETS)) == []


async def test_cancelling_a_running_job_stops_the_worker_and_keeps_nothing(engine: Engine) -> None:
    job_id = await engine.submit(JobKind.VIDEO, durationSeconds=8)
    run = asyncio.create_task(engine.runner(LocalGenerator(speed=1)).run(job_id))
    for _ in range(200):
        if (await engine.job(job_id))["progress"] > 0:
            break
        await asyncio.sleep(0.02)
    await engine.desk.cancel(engine.actor, job_id)
    await asyncio.wait_for(run, 2)  # the worker noticed and stopped well before the video's 6 s
    job = await engine.job(job_id)
    assert job["status"] == "CANCELLED" and job["asset_ids"] == []
    assert await engine.docs.query(Query(ASSETS)) == []
    assert not list((engine.blobs.root).rglob("*.mp4"))


async def test_cancelling_a_finished_job_is_a_conflict(engine: Engine) -> None:
    job_id = await engine.submit()
    await engine.runner().run(job_id)
    with pytest.raises(StudioError) as caught:
        await engine.desk.cancel(engine.actor, job_id)
    assert caught.value.code is ErrorCode.CONFLICT


async def test_the_sweeper_requeues_a_job_whose_worker_vanished(engine: Engine) -> None:
    job_id = await engine.submit()
    await engine.docs.update(
        JOBS,
        job_id,
        {"status": "RUNNING", "attempts": 1, "lease_owner": "dead", "lease_expires_at": now_iso()},
    )
    await asyncio.sleep(0.01)
    assert await engine.runner().sweep() == 1
    job = await engine.job(job_id)
    assert job["status"] == "QUEUED" and job["lease_owner"] is None
    await engine.runner(name="w2").run(job_id)
    job = await engine.job(job_id)
    assert job["status"] == "SUCCEEDED" and job["attempts"] == 2


async def test_the_sweeper_gives_up_after_the_last_attempt(engine: Engine) -> None:
    job_id = await engine.submit()
    await engine.docs.update(
        JOBS,
        job_id,
        {"status": "RUNNING", "attempts": 3, "lease_owner": "dead", "lease_expires_at": now_iso()},
    )
    await asyncio.sleep(0.01)
    await engine.runner(max_attempts=3).sweep()
    job = await engine.job(job_id)
    assert job["status"] == "FAILED" and job["error"]["code"] == "INTERNAL"  # type: ignore[index]
    (usage,) = await engine.docs.query(Query(USAGE))
    assert usage.data["failed_jobs"] == 1


async def test_a_live_lease_is_not_swept(engine: Engine) -> None:
    job_id = await engine.submit(JobKind.VIDEO, durationSeconds=8)
    run = asyncio.create_task(engine.runner(LocalGenerator(speed=2)).run(job_id))
    for _ in range(200):
        if (await engine.job(job_id))["status"] == "RUNNING":
            break
        await asyncio.sleep(0.01)
    assert await engine.runner(name="sweeper").sweep() == 0
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    job = await engine.job(job_id)
    assert job["status"] == "QUEUED", "a worker shutting down hands its job straight back"


async def test_every_job_that_ends_is_reported_once_with_its_cost(engine: Engine) -> None:
    heard: list[tuple[str, str, str, float]] = []
    runner = engine.runner(on_finished=lambda *event: heard.append(event))
    succeeded = await engine.submit(count=2)
    refused = await engine.submit(prompt="no [[blocked]]")
    await runner.run(succeeded)
    await runner.run(succeeded)
    await runner.run(refused)
    (good, bad) = heard
    assert good[:2] == ("IMAGE", "SUCCEEDED") and good[3] == pytest.approx(2 * Settings().price_image_usd)
    assert bad[:2] == ("IMAGE", "FAILED") and bad[3] == 0.0
