"""The identical-request cache's storage: the same behaviour in the docstore and in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backends.cache.docstore import DocstoreResultCache
from backends.cache.redis import RedisResultCache
from backends.docstore.sqlite import SqliteDocStore
from domain.ports import CachedResult, ResultCache
from tests.support.redis import REDIS_URL, own_prefix

RESULT = CachedResult(job_id="j1", asset_ids=("a1", "a2"), cost_usd=0.08)


@pytest.fixture(params=["docstore", "redis"])
async def cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResultCache]:
    if request.param == "docstore":
        docs = SqliteDocStore(tmp_path / "docs.db")
        try:
            yield DocstoreResultCache(docs)
        finally:
            await docs.close()
    else:
        async with own_prefix() as prefix:
            yield RedisResultCache(REDIS_URL, prefix=prefix)


async def test_a_stored_result_is_found_under_its_key_only(cache: ResultCache) -> None:
    await cache.put("k1", RESULT, ttl_seconds=60)
    assert await cache.get("k1") == RESULT
    assert await cache.get("k2") is None


async def test_a_later_put_replaces_the_entry(cache: ResultCache) -> None:
    await cache.put("k1", RESULT, ttl_seconds=60)
    newer = CachedResult(job_id="j2", asset_ids=("a3",), cost_usd=0.04)
    await cache.put("k1", newer, ttl_seconds=60)
    assert await cache.get("k1") == newer


async def test_an_entry_expires_after_its_ttl(cache: ResultCache) -> None:
    await cache.put("k1", RESULT, ttl_seconds=1)
    await asyncio.sleep(1.2)
    assert await cache.get("k1") is None


async def test_an_unreachable_redis_is_a_miss_not_an_error() -> None:
    cache = RedisResultCache("redis://127.0.0.1:1", timeout_seconds=0.2)
    await cache.put("k1", RESULT, ttl_seconds=60)
    assert await cache.get("k1") is None
