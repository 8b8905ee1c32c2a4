"""The Redis the tests share (127.0.0.1:6379 unless GENMEDIA_TEST_REDIS_URL says otherwise).

Missing Redis fails the run in CI and skips elsewhere; each test keys its data under a prefix of
its own and deletes only those keys.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.conftest import IN_CI

REDIS_URL = os.environ.get("GENMEDIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def redis_address(url: str) -> tuple[str, int]:
    netloc = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = netloc.partition(":")
    return host or "127.0.0.1", int(port or 6379)


def require_redis() -> None:
    """Fail (in CI) or skip (elsewhere) when the test Redis is not reachable."""
    if not reachable(*redis_address(REDIS_URL)):
        if IN_CI:
            pytest.fail(f"Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")


@asynccontextmanager
async def own_prefix() -> AsyncIterator[str]:
    """A key prefix of the caller's own in the test Redis; its keys are deleted afterwards."""
    require_redis()
    import coredis

    prefix = f"genmedia-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        client = coredis.Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(keys)
