"""Workflow runs at the domain level, on the embedded adapters: each step submitted once, whoever advances."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backends.blobs.localfs import LocalBlobStore
from backends.docstore.sqlite import SqliteDocStore
from backends.generators.local import LocalGenerator
from backends.queue.docstore import DocstoreQueue
from config import Settings
from domain.access import Actor
from domain.desk import JobDesk
from domain.jobs import JOBS
from domain.ports import Filter, Query
from domain.runner import JobRunner
from domain.users import Directory, Role, UserStatus
from domain.workflow_runs import WORKFLOW_RUNS, WorkflowRuns
from domain.workflows import Workflows
from wiring import build_catalog

DRAFT = {
    "name": "lighthouse",
    "nodes": [
        {"id": "image", "kind": "IMAGE", "input": {"prompt": "a lighthouse"}},
        {"id": "video", "kind": "VIDEO", "input": {"prompt": "waves", "durationSeconds": 4}},
        {"id": "bigger", "kind": "UPSCALE", "input": {}},
    ],
    "edges": [
        {"from": "image", "to": "video", "as": "firstFrameAssetId"},
        {"from": "image", "to": "bigger", "as": "assetId"},
    ],
}


@dataclass
class Studio:
    docs: SqliteDocStore
    runner: JobRunner
    workflows: Workflows
    desk: JobDesk
    directory: Directory
    actor: Actor

    def process(self) -> WorkflowRuns:
        """The run-advancing side of one process (a fresh one stands for a restarted process)."""
        return WorkflowRuns(self.docs, self.desk, self.workflows, self.directory, recheck_seconds=0.05)

    async def run_queued_jobs(self) -> int:
        queued = await self.docs.query(Query(JOBS, (Filter("status", "==", "QUEUED"),)))
        for job in queued:
            await self.runner.run(job.id)
        return len(queued)

    async def run_doc(self, run_id: str) -> dict[str, Any]:
        doc = await self.docs.get(WORKFLOW_RUNS, run_id)
        assert doc is not None
        return doc.data


@pytest.fixture
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    docs = SqliteDocStore(tmp_path / "studio.db")
    blobs = LocalBlobStore(tmp_path / "blobs", base_url="http://127.0.0.1:1", secret=b"s" * 32)
    catalog = build_catalog(Settings())
    directory = Directory(docs)
    user = await directory.put("owner@example.com", role=Role.USER, status=UserStatus.ACTIVE)
    runner = JobRunner(docs, blobs, LocalGenerator(speed=0), catalog, worker_id="w1", lease_seconds=5)
    desk = JobDesk(docs, DocstoreQueue(docs), catalog)
    try:
        yield Studio(docs, runner, Workflows(docs, catalog), desk, directory, Actor(user))
    finally:
        await docs.close()


async def test_advancing_from_many_processes_at_once_submits_each_step_once(studio: Studio) -> None:
    workflow = await studio.workflows.create(studio.actor, DRAFT)
    run = await studio.process().start(studio.actor, workflow.id)
    assert await studio.run_queued_jobs() == 1
    processes = [studio.process() for _ in range(6)]
    await asyncio.gather(*(p.advance(run.id) for p in processes), *(p.recheck() for p in processes))
    jobs = await studio.docs.query(Query(JOBS, (Filter("workflow_run_id", "==", run.id),)))
    assert sorted(job.data["workflow_node"] for job in jobs) == ["bigger", "image", "video"]
    steps = (await studio.run_doc(run.id))["steps"]
    assert sorted(step["job_id"] for step in steps) == sorted(job.id for job in jobs)


async def test_a_run_left_behind_is_finished_by_the_recheck_of_a_restarted_process(studio: Studio) -> None:
    workflow = await studio.workflows.create(studio.actor, DRAFT)
    run = await studio.process().start(studio.actor, workflow.id)
    while await studio.run_queued_jobs():
        await studio.process().recheck()  # nobody followed the jobs: a new process finds the run
    data = await studio.run_doc(run.id)
    assert data["status"] == "SUCCEEDED" and data["finished_at"]
    assert [step["status"] for step in data["steps"]] == ["SUCCEEDED"] * 3


async def test_the_follower_moves_a_run_on_as_its_jobs_finish(studio: Studio) -> None:
    workflow = await studio.workflows.create(
        studio.actor, DRAFT | {"nodes": DRAFT["nodes"][:2], "edges": DRAFT["edges"][:1]}
    )
    follower = asyncio.create_task(studio.process().follow())
    try:
        run = await studio.process().start(studio.actor, workflow.id)
        async with asyncio.timeout(20):
            async for doc in studio.docs.watch_document(WORKFLOW_RUNS, run.id):
                assert doc is not None
                if doc.data["status"] != "RUNNING":
                    break
                await studio.run_queued_jobs()
            # Finished jobs leave the follower's watch once their run has taken them in.
            while await studio.docs.query(Query(JOBS, (Filter("workflow_open", "==", True),))):
                await asyncio.sleep(0.01)
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    assert (await studio.run_doc(run.id))["status"] == "SUCCEEDED"
