"""Quotas and budgets: images per UTC day, videos and US dollars per UTC month, booked with the job.

A booking is taken in the transaction that creates the job, on counter documents per user and
period (`quota_books/<user>:<yyyy-mm-dd>` for images, `quota_books/<user>:<yyyy-mm>` for videos and
dollars). The transaction reads the counters, so concurrent requests at the edge of a quota are
serialised by the docstore: one of them commits, the others retry against the new totals.

The booking is recorded on the job (`quota`), and given back at most once (`quota_released_at`, set
in the same transaction) when the job is cancelled (QUEUED or RUNNING: a cancelled job keeps no
asset, so the user is not charged for it, even if the provider was already asked) or fails for a
reason in RELEASING_FAILURES.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.access import Actor, require_admin
from domain.admin import AuditLog, RequestInfo
from domain.catalog import ModelSpec
from domain.clock import now_iso, to_iso, utcnow
from domain.errors import ErrorCode, StudioError, not_found
from domain.periods import day_key, month_key, next_day, next_month, seconds_until
from domain.ports import DocStore, Increment, Transaction
from domain.quota_limits import OVERRIDES, QuotaLimits, override_update
from domain.users import USERS, User

QUOTA_BOOKS = "quota_books"
# Failures that end a job without anything billable having been made: their booking is given back.
# INTERNAL (including "interrupted too many times") keeps it: the provider may have run and charged.
RELEASING_FAILURES = frozenset(
    {
        ErrorCode.UPSTREAM_UNAVAILABLE,
        ErrorCode.CONTENT_BLOCKED,
        ErrorCode.NOT_FOUND,
        ErrorCode.BAD_USER_INPUT,
    }
)
_EPSILON = 1e-9  # dollars are summed as floats; a budget met exactly is not exceeded


@dataclass(frozen=True)
class Booking:
    """What one job takes from its owner's quota."""

    images: int = 0
    videos: int = 0
    usd: float = 0.0


def estimated_booking(kind: str, spec: ModelSpec, parameters: Mapping[str, Any], prompt: str = "") -> Booking:
    """The booking of a job before it runs: its counts and its estimated price (the most it may cost)."""
    if kind == "IMAGE":
        count = int(parameters.get("count") or 1)
        return Booking(images=count, usd=round(spec.unit_cost_usd * count, 6))
    if kind == "VIDEO":
        seconds = float(parameters.get("duration_seconds") or 8)
        return Booking(videos=1, usd=round(spec.unit_cost_usd * seconds, 6))
    if kind == "TEXT":
        # About four characters a token; the answer is capped by max_output_tokens.
        tokens = len(prompt) / 4 + len(str(parameters.get("system_prompt") or "")) / 4
        tokens += int(parameters.get("max_output_tokens") or 1024)
        return Booking(usd=round(spec.unit_cost_usd * tokens / 1000, 6))
    return Booking(usd=round(spec.unit_cost_usd, 6))


@dataclass(frozen=True)
class QuotaUse:
    """A user's limits and what they have used of them in the current periods."""

    limits: QuotaLimits
    images_today: int
    videos_this_month: int
    spent_this_month_usd: float
    resets_at: (
        datetime  # the next UTC midnight: when the daily count (and, on the 1st, the monthly ones) resets
    )


def day_doc_id(user_id: str, moment: datetime) -> str:
    return f"{user_id}:{day_key(moment)}"


def month_doc_id(user_id: str, moment: datetime) -> str:
    return f"{user_id}:{month_key(moment)}"


class QuotaBook:
    """Reserves and gives back quota, all or nothing, inside the caller's transaction."""

    def __init__(self, docs: DocStore, defaults: QuotaLimits) -> None:
        self._docs = docs
        self.defaults = defaults
        # One booking transaction per user at a time in this process: a burst of one user's requests
        # would otherwise all read the same counters, and all but one retry, over and over.
        self._turns: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def turn(self, user_id: str) -> AsyncIterator[None]:
        """Hold while running a transaction that reserves for `user_id` (other processes still
        contend through the docstore's transaction; this only spares the retries within one)."""
        lock = self._turns.get(user_id)
        if lock is None:
            lock = self._turns[user_id] = asyncio.Lock()
        async with lock:
            yield

    async def use_of(self, user_id: str, *, at: datetime | None = None) -> QuotaUse:
        """The user's limits and current use (for `User.quota`)."""
        moment = at or utcnow()
        user = await self._docs.get(USERS, user_id)
        day, month = await self._docs.get_many(
            QUOTA_BOOKS, [day_doc_id(user_id, moment), month_doc_id(user_id, moment)]
        )
        if user is None:
            raise not_found("user", user_id)
        return QuotaUse(
            limits=self.defaults.with_overrides(user.data.get(OVERRIDES)),
            images_today=int(day.data.get("images", 0)) if day else 0,
            videos_this_month=int(month.data.get("videos", 0)) if month else 0,
            spent_this_month_usd=_dollars(month.data.get("usd", 0.0)) if month else 0.0,
            resets_at=next_day(moment),
        )

    async def reserve(
        self, tx: Transaction, user_id: str, bookings: Sequence[Booking], *, at: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Book every one of `bookings` or none: QUOTA_EXCEEDED (with retryAfter and resetsAt) when
        their sum does not fit. Reads first, then writes; returns each booking's record for its job."""
        moment = at or utcnow()
        day_id, month_id = day_doc_id(user_id, moment), month_doc_id(user_id, moment)
        user = await tx.get(USERS, user_id)
        day = await tx.get(QUOTA_BOOKS, day_id)
        month = await tx.get(QUOTA_BOOKS, month_id)
        limits = self.defaults.with_overrides(user.data.get(OVERRIDES) if user else None)
        images = sum(b.images for b in bookings)
        videos = sum(b.videos for b in bookings)
        usd = sum(b.usd for b in bookings)
        used_images = int(day.data.get("images", 0)) if day else 0
        used_videos = int(month.data.get("videos", 0)) if month else 0
        spent = float(month.data.get("usd", 0.0)) if month else 0.0
        if images and used_images + images > limits.images_per_day:
            raise _exceeded(
                "imagesPerDay",
                f"Daily image quota reached: {used_images} of {limits.images_per_day} images used today, "
                f"{images} more asked.",
                next_day(moment),
                moment,
            )
        if videos and used_videos + videos > limits.videos_per_month:
            raise _exceeded(
                "videosPerMonth",
                f"Monthly video quota reached: {used_videos} of {limits.videos_per_month} videos used "
                f"this month, {videos} more asked.",
                next_month(moment),
                moment,
            )
        budget = limits.monthly_budget_usd
        if usd and budget is not None and spent + usd > budget + _EPSILON:
            raise _exceeded(
                "monthlyBudgetUsd",
                f"Monthly budget reached: ${_dollars(spent):.2f} of ${budget:.2f} spent this month; "
                f"this would cost up to ${usd:.2f}.",
                next_month(moment),
                moment,
            )
        if images:
            tx.set(
                QUOTA_BOOKS,
                day_id,
                {"user_id": user_id, "day": day_key(moment), "images": used_images + images},
            )
        if videos or usd:
            tx.set(
                QUOTA_BOOKS,
                month_id,
                {
                    "user_id": user_id,
                    "month": month_key(moment),
                    "videos": used_videos + videos,
                    "usd": round(spent + usd, 6),
                },
            )
        return [
            {
                "day": day_key(moment),
                "month": month_key(moment),
                "images": b.images,
                "videos": b.videos,
                "usd": b.usd,
            }
            for b in bookings
        ]

    async def set_limits(
        self,
        actor: Actor | None,
        user_id: str,
        changes: Mapping[str, int | float | None],
        audit: AuditLog,
        request: RequestInfo,
    ) -> User:
        """Administrators: override a user's limits (`quota.set`, audited). A value of None removes the
        override, so that limit follows the default from settings again."""
        update = override_update(changes)  # bad values are refused before anything else
        actor_id = actor.id if actor is not None else None
        details: dict[str, Any] = {"changes": dict(changes)}
        outcome = "denied"
        try:
            require_admin(actor)
            outcome = "error"
            doc = await self._docs.get(USERS, user_id)
            if doc is None:
                raise not_found("user", user_id)
        except StudioError as error:
            details |= {"code": error.code.value, "reason": error.message}
            await audit.record(
                "quota.set",
                actor_id=actor_id,
                target=user_id,
                outcome=outcome,
                request=request,
                details=details,
            )
            raise
        before = dict(doc.data.get(OVERRIDES) or {})
        if update:
            doc = await self._docs.update(USERS, user_id, update)
        await audit.record(
            "quota.set",
            actor_id=actor_id,
            target=user_id,
            outcome="ok",
            request=request,
            details={**details, "before": before},
        )
        return User.from_doc(doc.id, doc.data)

    @staticmethod
    def release(tx: Transaction, job: Mapping[str, Any]) -> dict[str, Any]:
        """Give a job's booking back; the returned fields must be written to the job in the same
        transaction (after reading it there), so the booking is given back at most once."""
        return give_back(tx, job)


def booked_job_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a new job carries for its booking (one of `QuotaBook.reserve`'s records)."""
    return {"quota": dict(record), "quota_released_at": None}


def give_back(tx: Transaction, job: Mapping[str, Any]) -> dict[str, Any]:
    """Undo the job's booking with increments (no reads, so it may follow writes); the job fields
    marking it given back, or {} when there is nothing (left) to give back."""
    booked = job.get("quota")
    if not booked or job.get("quota_released_at"):
        return {}
    owner = job["owner_id"]
    if booked.get("images"):
        tx.update(QUOTA_BOOKS, f"{owner}:{booked['day']}", {"images": Increment(-int(booked["images"]))})
    if booked.get("videos") or booked.get("usd"):
        tx.update(
            QUOTA_BOOKS,
            f"{owner}:{booked['month']}",
            {"videos": Increment(-int(booked.get("videos", 0))), "usd": Increment(-float(booked["usd"]))},
        )
    return {"quota_released_at": now_iso()}


def settle_booking(tx: Transaction, job: Mapping[str, Any], cost_usd: float) -> dict[str, Any]:
    """For the succeeding transaction: replace the estimated price booked with the price charged
    (increments only, so it may follow writes); the job's updated `quota` field, or {}."""
    booked = job.get("quota")
    if not booked or job.get("quota_released_at"):
        return {}
    delta = round(cost_usd - float(booked.get("usd", 0.0)), 6)
    if delta:
        tx.update(QUOTA_BOOKS, f"{job['owner_id']}:{booked['month']}", {"usd": Increment(delta)})
    return {"quota": {**booked, "usd": round(cost_usd, 6), "estimated_usd": booked.get("usd", 0.0)}}


def release_after_failure(tx: Transaction, job: Mapping[str, Any], code: ErrorCode) -> dict[str, Any]:
    """For the failing transaction: give the booking back when the failure made nothing billable."""
    return give_back(tx, job) if code in RELEASING_FAILURES else {}


def _exceeded(limit: str, message: str, resets: datetime, moment: datetime) -> StudioError:
    return StudioError(
        ErrorCode.QUOTA_EXCEEDED,
        f"{message} It resets at {to_iso(resets)}.",
        retryable=True,
        retry_after=math.ceil(seconds_until(resets, moment)),
        limit=limit,
        resetsAt=to_iso(resets),
    )


def _dollars(value: Any) -> float:
    return max(round(float(value), 6), 0.0)
