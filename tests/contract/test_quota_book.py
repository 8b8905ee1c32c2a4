"""QuotaBook on every DocStore adapter: bookings all or nothing, never overspent, given back once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.errors import ErrorCode, StudioError
from domain.jobs import JOBS
from domain.ports import Delete, DocStore, Transaction
from domain.quota_limits import QuotaLimits
from domain.quotas import QUOTA_BOOKS, Booking, QuotaBook, give_back
from domain.users import USERS
from tests.contract.test_docstore import DOC_BACKENDS

NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMITS = QuotaLimits(images_per_day=3, videos_per_month=1, monthly_budget_usd=None)


@pytest.fixture(params=sorted(DOC_BACKENDS))
async def docs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocStore]:
    backend = DOC_BACKENDS[request.param]
    for name in backend.fixtures:
        request.getfixturevalue(name)
    database = backend.new_database(tmp_path)
    store = backend.connect(database)
    await store.create(USERS, "u1", {"email": "u1@example.com", "created_at": "2026-11-01T00:00:00.000000Z"})
    try:
        yield store
    finally:
        await store.close()
        if backend.drop_database is not None:
            backend.drop_database(database)


async def reserve(docs: DocStore, *bookings: Booking) -> list[dict[str, Any]]:
    async def book(tx: Transaction) -> list[dict[str, Any]]:
        return await QuotaBook(docs, LIMITS).reserve(tx, "u1", bookings, at=NOON)

    return await docs.run_transaction(book)


async def images(docs: DocStore) -> int:
    doc = await docs.get(QUOTA_BOOKS, "u1:2026-11-28")
    return int(doc.data["images"]) if doc else 0


async def test_bookings_are_all_or_nothing(docs: DocStore) -> None:
    with pytest.raises(StudioError) as refused:
        await reserve(docs, Booking(images=2), Booking(images=2))
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    assert await images(docs) == 0
    await reserve(docs, Booking(images=1), Booking(images=2), Booking(videos=1))
    assert await images(docs) == 3


async def test_parallel_bookings_never_overspend(docs: DocStore) -> None:
    results = await asyncio.gather(
        *(reserve(docs, Booking(images=1)) for _ in range(8)), return_exceptions=True
    )
    assert sum(isinstance(result, list) for result in results) == 3
    assert await images(docs) == 3


async def test_a_booking_is_given_back_once(docs: DocStore) -> None:
    (record,) = await reserve(docs, Booking(images=2, videos=1, usd=0.5))
    await docs.create(JOBS, "j1", {"owner_id": "u1", "quota": record, "quota_released_at": None})

    async def release(tx: Transaction) -> dict[str, Any]:
        job = await tx.get(JOBS, "j1")
        assert job is not None
        changes = give_back(tx, job.data)
        if changes:
            tx.update(JOBS, "j1", changes)
        return changes

    assert await docs.run_transaction(release)
    assert await docs.run_transaction(release) == {}
    month = await docs.get(QUOTA_BOOKS, "u1:2026-11")
    assert month is not None and month.data["videos"] == 0 and abs(month.data["usd"]) < 1e-9
    assert await images(docs) == 0


async def test_an_override_is_set_and_removed_on_the_user(docs: DocStore) -> None:
    book = QuotaBook(docs, LIMITS)
    await docs.update(USERS, "u1", {"quota.images_per_day": 10})
    assert (await book.use_of("u1", at=NOON)).limits.images_per_day == 10
    await docs.update(USERS, "u1", {"quota.images_per_day": Delete()})
    assert (await book.use_of("u1", at=NOON)).limits == LIMITS
