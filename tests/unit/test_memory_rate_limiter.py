"""The in-process rate limiter: exact moving window, no helper threads, memory bounded by use."""

from __future__ import annotations

import asyncio
import threading

from backends.ratelimit.limits_adapter import LimitsRateLimiter


async def test_it_admits_exactly_the_limit_per_window_and_says_when_a_slot_frees() -> None:
    limiter = LimitsRateLimiter()
    answers = [await limiter.hit("user:a", 10, 1) for _ in range(25)]
    assert sum(answer.allowed for answer in answers) == 10
    assert 0 < answers[-1].retry_after <= 1.0
    await asyncio.sleep(1.05)
    assert (await limiter.hit("user:a", 10, 1)).allowed


async def test_it_starts_no_threads_and_keeps_at_most_the_limit_per_key() -> None:
    limiter = LimitsRateLimiter()
    before = threading.active_count()
    for _ in range(5000):
        await limiter.hit("user:busy", 50, 60)
    assert threading.active_count() <= before
    storage = limiter._memory.storage
    assert max(len(events) for events in storage.events.values()) <= 50


async def test_keys_of_callers_who_went_quiet_are_dropped() -> None:
    limiter = LimitsRateLimiter()
    for index in range(100):
        await limiter.hit(f"anon:{index}", 5, 1)
    await asyncio.sleep(1.05)
    for _ in range(4096):
        await limiter.hit("user:steady", 10_000, 60)
    assert not any(
        key.endswith(f"anon:{index}/5/1/second")
        for index in range(100)
        for key in limiter._memory.storage.events
    )
