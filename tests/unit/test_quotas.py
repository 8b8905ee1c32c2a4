"""Quota periods and bookings at the domain level, on the embedded SQLite docstore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
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
from domain.errors import ErrorCode, StudioError
from domain.jobs import JOBS, JobKind
from domain.periods import day_key, month_key, next_day, next_month, seconds_until
from domain.ports import GenerationRequest, GenerationResult, ProgressReporter, Transaction
from domain.quota_limits import QuotaLimits
from domain.quotas import QUOTA_BOOKS, Booking, QuotaBook, give_back
from domain.runner import JobRunner
from domain.users import Directory, Role, UserStatus
from domain.workers import run_workers
from wiring import build_catalog

LIMITS = QuotaLimits(images_per_day=5, videos_per_month=2, monthly_budget_usd=1.0)
NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "day", "month", "day_ends", "month_ends"),
    [
        (
            NOON,
            "2026-11-28",
            "2026-11",
            datetime(2026, 11, 29, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            "2026-12-31",
            "2026-12",
            datetime(2027, 1, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (
            datetime(2028, 2, 28, 8, 0, tzinfo=UTC),
            "2028-02-28",
            "2028-02",
            datetime(2028, 2, 29, tzinfo=UTC),
            datetime(2028, 3, 1, tzinfo=UTC),
        ),
        (  # 01:30 on the 1st in UTC+2 is still the last day of the month before, in UTC
            datetime(2026, 12, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-30",
            "2026-11",
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 1, 1),
            "2026-01-01",
            "2026-01",
            datetime(2026, 1, 2, tzinfo=UTC),
            datetime(2026, 2, 1, tzinfo=UTC),
        ),
    ],
    ids=["midday", "new-year", "leap-february", "other-time-zone", "naive-is-utc"],
)
def test_periods_are_utc_days_and_calendar_months(
    moment: datetime, day: str, month: str, day_ends: datetime, month_ends: datetime
) -> None:
    assert (day_key(moment), month_key(moment)) == (day, month)
    assert (next_day(moment), next_month(moment)) == (day_ends, month_ends)


def test_seconds_until_a_reset_are_never_negative() -> None:
    assert seconds_until(next_day(NOON), NOON) == 12 * 3600
    assert seconds_until(NOON - timedelta(seconds=1), NOON) == 0


@dataclass
class Books:
    docs: SqliteDocStore
    quotas: QuotaBook
    user_id: str

    async def reserve(self, *bookings: Booking, at: datetime = NOON) -> list[dict[str, Any]]:
        async def book(tx: Transaction) -> list[dict[str, Any]]:
            return await self.quotas.reserve(tx, self.user_id, bookings, at=at)

        return await self.docs.run_transaction(book)

    async def counters(self, at: datetime = NOON) -> tuple[int, int, float]:
        day = await self.docs.get(QUOTA_BOOKS, f"{self.user_id}:{day_key(at)}")
        month = await self.docs.get(QUOTA_BOOKS, f"{self.user_id}:{month_key(at)}")
        return (
            int(day.data["images"]) if day else 0,
            int(month.data["videos"]) if month else 0,
            round(float(month.data["usd"]), 6) if month else 0.0,
        )


@pytest.fixture
async def books(tmp_path: Path) -> AsyncIterator[Books]:
    docs = SqliteDocStore(tmp_path / "studio.db")
    user = await Directory(docs).put("owner@example.com", role=Role.USER, status=UserStatus.ACTIVE)
    try:
        yield Books(docs, QuotaBook(docs, LIMITS), user.id)
    finally:
        await docs.close()


async def test_several_bookings_are_taken_all_or_nothing(books: Books) -> None:
    with pytest.raises(StudioError) as refused:
        await books.reserve(Booking(images=3, usd=0.1), Booking(images=3, usd=0.1))
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    assert refused.value.details["limit"] == "imagesPerDay"
    assert refused.value.retry_after == 12 * 3600
    assert await books.counters() == (0, 0, 0.0)
    records = await books.reserve(Booking(images=2, usd=0.1), Booking(images=3, usd=0.2), Booking(videos=1))
    assert [r["images"] for r in records] == [2, 3, 0]
    assert await books.counters() == (5, 1, 0.3)


async def test_each_limit_is_checked_against_its_own_period(books: Books) -> None:
    await books.reserve(Booking(images=5), Booking(videos=2))
    tomorrow = NOON + timedelta(days=1)
    await books.reserve(Booking(images=5), at=tomorrow)  # a new day: images again
    with pytest.raises(StudioError) as refused:
        await books.reserve(Booking(videos=1), at=tomorrow)  # the same month: no more videos
    assert refused.value.details["limit"] == "videosPerMonth"
    assert refused.value.details["resetsAt"] == "2026-12-01T00:00:00.000000Z"
    await books.reserve(Booking(videos=2), at=datetime(2026, 12, 1, tzinfo=UTC))


async def test_the_budget_may_be_met_but_not_exceeded(books: Books) -> None:
    await books.reserve(*[Booking(usd=0.1)] * 10)
    with pytest.raises(StudioError) as refused:
        await books.reserve(Booking(usd=0.000001))
    assert refused.value.details["limit"] == "monthlyBudgetUsd"


async def test_a_user_override_replaces_the_defaults_it_names(books: Books) -> None:
    await books.docs.update("users", books.user_id, {"quota.images_per_day": 1})
    use = await books.quotas.use_of(books.user_id, at=NOON)
    assert use.limits == QuotaLimits(images_per_day=1, videos_per_month=2, monthly_budget_usd=1.0)
    with pytest.raises(StudioError):
        await books.reserve(Booking(images=2))


async def test_parallel_reservations_never_overspend(books: Books) -> None:
    results = await asyncio.gather(
        *(books.reserve(Booking(images=1)) for _ in range(20)), return_exceptions=True
    )
    assert sum(1 for r in results if isinstance(r, list)) == 5
    refused = [r for r in results if not isinstance(r, list)]
    assert all(isinstance(r, StudioError) and r.code is ErrorCode.QUOTA_EXCEEDED for r in refused)
    assert await books.counters() == (5, 0, 0.0)


async def test_a_booking_is_given_back_only_once(books: Books) -> None:
    (record,) = await books.reserve(Booking(images=4, usd=0.4))
    await books.docs.create(
        JOBS, "j1", {"owner_id": books.user_id, "quota": record, "quota_released_at": None}
    )

    async def release(tx: Transaction) -> dict[str, Any]:
        job = await tx.get(JOBS, "j1")
        assert job is not None
        changes = give_back(tx, job.data)
        if changes:
            tx.update(JOBS, "j1", changes)
        return changes

    assert await books.docs.run_transaction(release)
    assert await books.docs.run_transaction(release) == {}
    assert await books.counters() == (0, 0, 0.0)


# ---------------------------------------------------------------- with the desk and the runner


class Failing:
    """A generator that always fails with one error."""

    def __init__(self, error: StudioError) -> None:
        self.error = error

    async def generate(self, request: GenerationRequest, report: ProgressReporter) -> GenerationResult:
        raise self.error


@dataclass
class Studio:
    books: Books
    desk: JobDesk
    actor: Actor
    blobs: LocalBlobStore

    async def images_used(self) -> int:
        return (await self.books.counters(datetime.now(UTC)))[0]

    def runner(self, generator: Any) -> JobRunner:
        return JobRunner(
            self.books.docs, self.blobs, generator, build_catalog(Settings()), worker_id="w", max_attempts=1
        )


@pytest.fixture
async def studio(books: Books, tmp_path: Path) -> Studio:
    docs = books.docs
    desk = JobDesk(docs, DocstoreQueue(docs), build_catalog(Settings()), quotas=books.quotas)
    user = await Directory(docs).get(books.user_id)
    assert user is not None
    blobs = LocalBlobStore(tmp_path / "blobs", base_url="http://127.0.0.1:1", secret=b"s" * 32)
    return Studio(books, desk, Actor(user), blobs)


@pytest.mark.parametrize(
    ("error", "given_back"),
    [
        (StudioError(ErrorCode.UPSTREAM_UNAVAILABLE, "down"), True),
        (StudioError(ErrorCode.CONTENT_BLOCKED, "refused", retryable=False), True),
        (StudioError(ErrorCode.INTERNAL, "broken"), False),
    ],
    ids=["upstream-unavailable", "content-blocked", "internal"],
)
async def test_a_failure_gives_the_booking_back_only_when_nothing_billable_was_made(
    studio: Studio, error: StudioError, given_back: bool
) -> None:
    job = await studio.desk.submit(studio.actor, JobKind.IMAGE, {"prompt": "a gull", "count": 2})
    assert await studio.images_used() == 2
    await studio.runner(Failing(error)).run(job.id)
    assert await studio.images_used() == (0 if given_back else 2)


async def test_a_job_cancelled_while_running_gives_its_booking_back(studio: Studio) -> None:
    job = await studio.desk.submit(studio.actor, JobKind.IMAGE, {"prompt": "a heron"})
    await studio.books.docs.update(JOBS, job.id, {"status": "RUNNING", "lease_owner": "w"})
    await studio.desk.cancel(studio.actor, job.id)
    assert await studio.images_used() == 0


async def test_a_job_cancelled_while_queued_gives_its_booking_back(studio: Studio) -> None:
    job = await studio.desk.submit(studio.actor, JobKind.IMAGE, {"prompt": "a swan", "count": 3})
    await studio.desk.cancel(studio.actor, job.id)
    assert await studio.images_used() == 0
    with pytest.raises(StudioError):
        await studio.desk.cancel(studio.actor, job.id)
    assert await studio.images_used() == 0


async def test_a_finished_job_books_the_price_charged_instead_of_the_estimate(studio: Studio) -> None:
    job = await studio.desk.submit(
        studio.actor, JobKind.TEXT, {"prompt": "a short verse", "maxOutputTokens": 4000}
    )
    estimated = (await studio.books.counters(datetime.now(UTC)))[2]
    await studio.runner(LocalGenerator(speed=0)).run(job.id)
    done = await studio.books.docs.get(JOBS, job.id)
    assert done is not None and done.data["status"] == "SUCCEEDED"
    spent = (await studio.books.counters(datetime.now(UTC)))[2]
    assert spent == pytest.approx(done.data["cost_usd"]) and spent < estimated
    assert done.data["quota"]["usd"] == pytest.approx(spent)


async def test_a_burst_of_one_users_submissions_is_booked_without_conflicts(studio: Studio) -> None:
    # Every submission reads the user's counters while workers finishing earlier jobs write them:
    # within one process the bookings take turns instead of retrying against each other until
    # some give up with CONFLICT.
    queue = DocstoreQueue(studio.books.docs)
    desk = JobDesk(studio.books.docs, queue, build_catalog(Settings()), quotas=studio.books.quotas)
    workers = asyncio.create_task(
        run_workers(queue, studio.runner(LocalGenerator(speed=0)), concurrency=4, sweep_seconds=60)
    )
    try:
        jobs = await asyncio.gather(
            *(desk.submit(studio.actor, JobKind.TEXT, {"prompt": f"burst {i}"}) for i in range(200))
        )
    finally:
        workers.cancel()
        await asyncio.gather(workers, return_exceptions=True)
    assert len({job.id for job in jobs}) == 200
