"""Jobs a push queue never got are handed over again: with Cloud Tasks unreachable at submit, the job
is kept, and the redelivery of waiting jobs gives it to the queue (the Cloud Tasks stand-in)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.docstore.sqlite import SqliteDocStore
from backends.queue.cloudtasks import CloudTasksQueue
from config import Settings
from domain.access import Actor
from domain.desk import JobDesk
from domain.jobs import JobKind
from domain.redelivery import WaitingJobs
from domain.users import Directory, Role, UserStatus
from tests.support.certs_server import CertsServer, certs_server, make_key
from tests.support.cloudtasks_standin import CloudTasksStandIn, cloudtasks_standin
from wiring import build_catalog


@pytest.fixture(scope="module")
def certs() -> Iterator[CertsServer]:
    with certs_server(make_key("oidc-1")) as server:
        yield server


@dataclass
class Pushed:
    standin: CloudTasksStandIn
    docs: SqliteDocStore
    queue: CloudTasksQueue
    desk: JobDesk
    actor: Actor


@pytest.fixture
async def pushed(certs: CertsServer, tmp_path: Path) -> AsyncIterator[Pushed]:
    with cloudtasks_standin(certs) as standin:
        docs = SqliteDocStore(tmp_path / "studio.db")
        queue = CloudTasksQueue(
            project="studio-test",
            location="europe-west1",
            queue="genmedia-jobs",
            worker_url="https://worker.example.com/internal/tasks/run",
            service_account="tasks-invoker@studio-test.iam.gserviceaccount.com",
            api_endpoint=standin.base_url,
        )
        user = await Directory(docs).put("pushed@example.com", role=Role.USER, status=UserStatus.ACTIVE)
        try:
            yield Pushed(standin, docs, queue, JobDesk(docs, queue, build_catalog(Settings())), Actor(user))
        finally:
            await queue.close()
            await docs.close()


async def test_a_job_whose_enqueue_failed_is_kept_and_handed_over_later(pushed: Pushed) -> None:
    pushed.standin.fail_next(3, 503)  # Cloud Tasks down for every try of the submit's enqueue
    job = await pushed.desk.submit(pushed.actor, JobKind.TEXT, {"prompt": "a note"})
    assert job.data["status"] == "QUEUED" and pushed.standin.for_job(job.id) == []

    waiting = WaitingJobs(pushed.docs, pushed.queue, after_seconds=0.2)
    await asyncio.sleep(0.25)
    assert await waiting.redeliver() == 1
    (task,) = pushed.standin.for_job(job.id)
    assert task.body == {"jobId": job.id, "attempt": 0}


async def test_a_job_handed_over_lately_is_left_to_the_queue_for_a_while(pushed: Pushed) -> None:
    job = await pushed.desk.submit(pushed.actor, JobKind.TEXT, {"prompt": "a note"})
    waiting = WaitingJobs(pushed.docs, pushed.queue, after_seconds=0.2)
    await asyncio.sleep(0.25)

    assert await waiting.redeliver() == 1  # its task exists: the create is refused, and harmless
    calls = pushed.standin.calls
    assert await waiting.redeliver() == 0 and pushed.standin.calls == calls
    assert len(pushed.standin.for_job(job.id)) == 1


async def test_jobs_queued_only_a_moment_ago_are_not_touched(pushed: Pushed) -> None:
    await pushed.desk.submit(pushed.actor, JobKind.TEXT, {"prompt": "a note"})
    calls = pushed.standin.calls
    assert await WaitingJobs(pushed.docs, pushed.queue, after_seconds=300).redeliver() == 0
    assert pushed.standin.calls == calls
