"""RateLimiter on the `limits` library: a moving window in process memory, or in Redis shared by processes.

Redis unavailable: checks fail open. An outage of the limiter's storage should not take the API down
with it; requests go through unlimited (quotas and budgets, kept in the docstore, still apply), with
one warning log per retry period and the `genmedia_rate_limit_fail_open_total` counter rising. After
a failure the storage is left alone for `retry_seconds`, so an outage adds no latency per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import Counter

from domain.ports import RateCheck

log = logging.getLogger("genmedia.ratelimit")

FAIL_OPEN = Counter(
    "genmedia_rate_limit_fail_open_total",
    "Rate-limit checks let through unlimited because the limiter's storage (Redis) failed",
)
STORAGE_ERRORS = Counter(
    "genmedia_rate_limit_storage_errors_total", "Failed calls to the rate limiter's storage", ["error"]
)

MEMORY = "async+memory://"


def storage_uri(redis_url: str | None) -> str:
    """`limits` storage URI for the settings: async Redis when a URL is given, else process memory."""
    if not redis_url:
        return MEMORY
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"


class LimitsRateLimiter:
    """Moving-window counting per key; `hit` answers with the seconds until a slot frees when refused."""

    def __init__(
        self,
        uri: str = MEMORY,
        *,
        key_prefix: str = "genmedia",
        timeout_seconds: float = 0.5,
        retry_seconds: float = 5.0,
    ) -> None:
        from limits.aio.strategies import MovingWindowRateLimiter
        from limits.storage import storage_from_string

        options: dict[str, Any] = {}
        if uri.startswith("async+redis") or uri.startswith("async+valkey"):
            options = {
                "key_prefix": f"{key_prefix}:ratelimit",
                "connect_timeout": timeout_seconds,
                "stream_timeout": timeout_seconds,
            }
        self.uri = uri
        self.shared = uri != MEMORY
        if self.shared:
            self._storage = storage_from_string(uri, **options)
            self._strategy = MovingWindowRateLimiter(self._storage)
        else:
            # In process memory the synchronous strategy is exact and about three times cheaper:
            # the event loop is the only writer, so it needs no lock and can never wait.
            from limits.strategies import MovingWindowRateLimiter as SyncMovingWindow

            self._memory = SyncMovingWindow(_loop_memory_storage())
        self._items: dict[tuple[int, int], Any] = {}
        self._timeout = timeout_seconds * 2
        self._retry = retry_seconds
        self._bypass_until = 0.0
        self._failing = False

    def _item(self, amount: int, period_seconds: int) -> Any:
        item = self._items.get((amount, period_seconds))
        if item is None:
            from limits import RateLimitItemPerSecond

            item = self._items[(amount, period_seconds)] = RateLimitItemPerSecond(amount, period_seconds)
        return item

    async def hit(self, key: str, amount: int, period_seconds: int, cost: int = 1) -> RateCheck:
        if self._bypass_until and time.monotonic() < self._bypass_until:
            FAIL_OPEN.inc()
            return RateCheck(True)
        item = self._item(amount, period_seconds)
        if not self.shared:
            if self._memory.hit(item, key, cost=cost):
                return RateCheck(True)
            stats = self._memory.get_window_stats(item, key)
            return RateCheck(False, max(stats.reset_time - time.time(), 0.0))
        try:
            async with asyncio.timeout(self._timeout):
                if await self._strategy.hit(item, key, cost=cost):
                    self._recovered()
                    return RateCheck(True)
                stats = await self._strategy.get_window_stats(item, key)
        except Exception as error:  # any storage failure: fail open (see the module docstring)
            self._fail_open(error)
            return RateCheck(True)
        self._recovered()
        return RateCheck(False, max(stats.reset_time - time.time(), 0.0))

    async def clear(self, key: str, amount: int, period_seconds: int) -> None:
        if not self.shared:
            self._memory.clear(self._item(amount, period_seconds), key)
            return
        await self._strategy.clear(self._item(amount, period_seconds), key)

    def _fail_open(self, error: Exception) -> None:
        FAIL_OPEN.inc()
        STORAGE_ERRORS.labels(type(error).__name__).inc()
        self._bypass_until = time.monotonic() + self._retry
        self._failing = True
        log.warning(
            "rate-limit storage unavailable (%s: %s); requests pass unlimited for %.0f s",
            type(error).__name__,
            error,
            self._retry,
        )

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            self._bypass_until = 0.0
            log.warning("rate-limit storage reachable again; limits apply")


class _NoTimer:
    """Stands in for the expiry timer thread `limits`' MemoryStorage starts every 10 ms under load."""

    def is_alive(self) -> bool:
        return True

    def cancel(self) -> None:
        return None


def _loop_memory_storage() -> Any:
    """`limits`' MemoryStorage without its timer threads, trimmed as it is used instead.

    Under steady traffic MemoryStorage starts a new thread every 10 ms to expire events, and that
    thread takes the GIL from the event loop. Here each key keeps at most its newest `limit` entries
    (all a moving window ever looks at), and every few thousand hits keys whose newest entry has
    expired are dropped.
    """
    from limits.storage import MemoryStorage

    class LoopMemoryStorage(MemoryStorage):
        def __init__(self) -> None:
            super().__init__()
            self.timer.cancel()
            self.timer = _NoTimer()  # type: ignore[assignment]
            self._hits = 0

        def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
            acquired = bool(super().acquire_entry(key, limit, expiry, amount))
            events = self.events.get(key)
            if events is not None and len(events) > limit:
                del events[limit:]
            self._hits += 1
            if self._hits % 4096 == 0:
                now = time.time()
                for stale in [
                    k for k, entries in self.events.items() if not entries or entries[0].expiry < now
                ]:
                    self.events.pop(stale, None)
                    self.locks.pop(stale, None)
            return acquired

    return LoopMemoryStorage()
