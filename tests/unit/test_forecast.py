"""Queue positions and ETAs from what the engine finished recently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backends.docstore.sqlite import SqliteDocStore
from domain.clock import to_iso
from domain.forecast import QueueForecast
from domain.jobs import JOBS

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return to_iso(NOW + timedelta(seconds=seconds))


@pytest.fixture
async def docs(tmp_path: Path) -> AsyncIterator[SqliteDocStore]:
    store = SqliteDocStore(tmp_path / "studio.db")
    try:
        yield store
    finally:
        await store.close()


async def finished(docs: SqliteDocStore, job_id: str, model: str, started: float, ended: float) -> None:
    await docs.create(
        JOBS,
        job_id,
        {
            "status": "SUCCEEDED",
            "model": model,
            "created_at": at(started - 1),
            "started_at": at(started),
            "finished_at": at(ended),
        },
    )


async def queued(docs: SqliteDocStore, job_id: str, created: float, model: str = "img") -> None:
    await docs.create(JOBS, job_id, {"status": "QUEUED", "model": model, "created_at": at(created)})


def forecast(docs: SqliteDocStore, now: float = 0.0, parallelism: int = 1) -> QueueForecast:
    return QueueForecast(docs, parallelism=parallelism, ttl_seconds=0, clock=lambda: NOW.timestamp() + now)


async def test_positions_count_the_queued_jobs_created_earlier(docs: SqliteDocStore) -> None:
    for index in range(3):
        await queued(docs, f"q{index}", created=index)
    await finished(docs, "done", "img", -10, -8)  # finished jobs are not ahead of anyone
    oracle = forecast(docs)
    assert [await oracle.position(at(index)) for index in range(3)] == [1, 2, 3]


async def test_nothing_run_yet_means_no_eta(docs: SqliteDocStore) -> None:
    await queued(docs, "q", created=0)
    assert await forecast(docs).eta_seconds("img", 1) is None


async def test_eta_is_the_jobs_ahead_at_the_recent_pace_plus_the_models_typical_time(
    docs: SqliteDocStore,
) -> None:
    # Ten image jobs of 4 s each, one finished every 2 s: 0.5 jobs per second.
    for index in range(10):
        await finished(docs, f"img{index}", "img", started=2 * index - 4, ended=2 * index)
    oracle = forecast(docs, now=20)
    assert await oracle.eta_seconds("img", 1) == 4  # next in line: only its own run
    assert await oracle.eta_seconds("img", 5) == 4 / 0.5 + 4  # four ahead at 0.5 per second


async def test_a_model_missing_from_the_recent_jobs_uses_its_own_last_runs(docs: SqliteDocStore) -> None:
    await finished(docs, "vid", "video", started=-3600, ended=-3540)  # an hour ago, 60 s long
    for index in range(60):
        await finished(docs, f"img{index}", "img", started=index - 1, ended=index)
    assert await forecast(docs, now=60).eta_seconds("video", 1) == 60


async def test_without_a_recent_pace_the_queue_drains_in_parallel_rounds(docs: SqliteDocStore) -> None:
    await finished(docs, "old", "img", started=-7200, ended=-7190)  # 10 s, long ago: no pace
    oracle = forecast(docs, parallelism=2)
    assert await oracle.eta_seconds("img", 1) == 10
    assert await oracle.eta_seconds("img", 4) == 2 * 10 + 10  # three ahead, two at a time
