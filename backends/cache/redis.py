"""The identical-request cache in Redis: one string key per entry, expiring by Redis' own TTL.

Every process configured with the same GENMEDIA_REDIS_URL shares it. Redis being unreachable makes
the cache a miss (a warning in the log and `genmedia_request_cache_errors_total`), never an error.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import coredis
from prometheus_client import Counter

from domain.ports import CachedResult

log = logging.getLogger("genmedia.cache")

CACHE_ERRORS = Counter(
    "genmedia_request_cache_errors_total",
    "Identical-request cache operations that failed because Redis did not answer",
    ["operation"],
)


class RedisResultCache:
    """A ResultCache in Redis, keys under `prefix`."""

    def __init__(self, url: str, *, prefix: str = "genmedia", timeout_seconds: float = 0.5) -> None:
        self._client: Any = coredis.Redis.from_url(
            url, decode_responses=True, connect_timeout=timeout_seconds, stream_timeout=timeout_seconds
        )
        self._prefix = f"{prefix}:request-cache:"

    async def get(self, key: str) -> CachedResult | None:
        try:
            raw = await self._client.get(self._prefix + key)
        except Exception:
            CACHE_ERRORS.labels("get").inc()
            log.warning("request cache read failed; treated as a miss", exc_info=True)
            return None
        if raw is None:
            return None
        entry = json.loads(raw)
        return CachedResult(
            job_id=entry["job_id"], asset_ids=tuple(entry["asset_ids"]), cost_usd=float(entry["cost_usd"])
        )

    async def put(self, key: str, result: CachedResult, ttl_seconds: int) -> None:
        entry = {"job_id": result.job_id, "asset_ids": list(result.asset_ids), "cost_usd": result.cost_usd}
        try:
            await self._client.set(self._prefix + key, json.dumps(entry), ex=ttl_seconds)
        except Exception:
            CACHE_ERRORS.labels("put").inc()
            log.warning("request cache write failed; the result is not cached", exc_info=True)
