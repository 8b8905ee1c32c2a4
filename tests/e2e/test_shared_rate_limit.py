"""Rate limits shared through Redis by two API processes, and failing open when Redis is unreachable.

Each test keys its limits under its own prefix (GENMEDIA_RATE_LIMIT_PREFIX) and deletes only those
keys, so runs sharing one Redis never collide.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import assert_error
from tests.e2e.conftest import Processes
from tests.support.client import StudioClient
from tests.support.redis import REDIS_URL, own_prefix, reachable
from tests.support.server import StudioProcess, free_port, mint_token

pytestmark = pytest.mark.timeout(20)

GENERATE = 'mutation { generateText(input: {prompt: "shared budget"}) { id } }'


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own in the shared Redis; its keys are deleted afterwards."""
    async with own_prefix() as prefix:
        yield prefix


async def generate(server: StudioProcess, token: str) -> httpx.Response:
    return await StudioClient(server.base_url, token).post(GENERATE)


async def metric(server: StudioProcess, name: str) -> float:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
        text = (await http.get("/metrics")).text
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    return values[0] if values else 0.0


async def test_two_api_processes_on_one_redis_share_one_budget(
    processes: Processes, redis_prefix: str
) -> None:
    settings = {
        "GENMEDIA_WORKERS": "0",
        "GENMEDIA_REDIS_URL": REDIS_URL,
        "GENMEDIA_RATE_LIMIT_PREFIX": redis_prefix,
        "GENMEDIA_RATE_GENERATE": "3/minute",
    }
    a = processes.serve(settings)
    b = processes.serve(settings)
    token = await mint_token(processes.data_dir, "shared@example.com")

    assert [(await generate(server, token)).status_code for server in (a, b, a)] == [200, 200, 200]
    for server in (b, a):
        refused = await generate(server, token)
        assert refused.status_code == 429, refused.text
        assert_error(refused.json()["errors"][0], "RATE_LIMITED")
        assert 1 <= int(refused.headers["retry-after"]) <= 60

    # Another caller has a budget of their own, on both processes.
    other = await mint_token(processes.data_dir, "other@example.com")
    assert (await generate(b, other)).status_code == 200

    import coredis

    keys = [key async for key in coredis.Redis.from_url(REDIS_URL).scan_iter(match=f"{redis_prefix}:*")]
    assert keys, "the limits live in Redis under the test's prefix"


async def test_an_unreachable_redis_fails_open_with_a_warning_and_a_metric(processes: Processes) -> None:
    server = processes.serve(
        {
            "GENMEDIA_WORKERS": "0",
            "GENMEDIA_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "GENMEDIA_RATE_GENERATE": "1/minute",
        }
    )
    token = await mint_token(processes.data_dir, "open@example.com")
    started = time.monotonic()
    statuses = [(await generate(server, token)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200], processes.logs()
    assert time.monotonic() - started < 5, "an outage adds no per-request wait"
    assert await metric(server, "genmedia_rate_limit_fail_open_total") >= 3
    log = server.log_path.read_text()
    assert "rate-limit storage unavailable" in log and "WARNING" in log
    assert log.count("rate-limit storage unavailable") == 1, "one warning per retry period, not per request"


async def test_redis_going_down_at_runtime_fails_open_then_limits_again(
    processes: Processes, tmp_path: Path
) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]

    def start_redis() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not reachable("127.0.0.1", port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        return process

    redis = start_redis()
    try:
        server = processes.serve(
            {
                "GENMEDIA_WORKERS": "0",
                "GENMEDIA_REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "GENMEDIA_RATE_GENERATE": "1/minute",
            }
        )
        token = await mint_token(processes.data_dir, "outage@example.com")
        assert (await generate(server, token)).status_code == 200
        assert (await generate(server, token)).status_code == 429

        redis.terminate()
        redis.wait(timeout=5)
        assert (await generate(server, token)).status_code == 200  # fails open
        assert await metric(server, "genmedia_rate_limit_fail_open_total") >= 1

        redis = start_redis()  # empty again: a fresh budget, enforced once the retry period passed
        await asyncio.sleep(5.2)
        statuses = [(await generate(server, token)).status_code for _ in range(2)]
        assert statuses == [200, 429], processes.logs()
        assert "rate-limit storage reachable again" in server.log_path.read_text()
    finally:
        if redis.poll() is None:
            redis.terminate()
            redis.wait(timeout=5)
