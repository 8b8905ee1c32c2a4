"""With Redis configured, the identical-request cache lives there and every process shares it."""

from __future__ import annotations

from typing import Any

import coredis
import pytest

from tests.e2e.conftest import Processes
from tests.e2e.helpers import poll
from tests.support.client import StudioClient
from tests.support.redis import REDIS_URL, own_prefix
from tests.support.server import mint_token

pytestmark = pytest.mark.timeout(30)

ASK = 'mutation { job: generateImage(input: {prompt: "a shared seed", seed: 3}) { id status cached assets { id } } }'
READ = "query($id: ID!) { job(id: $id) { status assets { id } } }"


async def job_of(client: StudioClient, job_id: str) -> dict[str, Any]:
    return dict((await client.data(READ, {"id": job_id}))["job"])


async def test_a_result_made_through_one_process_is_served_from_redis_by_another(
    processes: Processes,
) -> None:
    async with own_prefix() as prefix:
        env = {"GENMEDIA_REDIS_URL": REDIS_URL, "GENMEDIA_RATE_LIMIT_PREFIX": prefix}
        first_api = processes.serve(env)
        second_api = processes.serve({**env, "GENMEDIA_WORKERS": "0"})
        token = await mint_token(processes.data_dir, "shared-cache@example.com")

        made = (await StudioClient(first_api.base_url, token).data(ASK))["job"]
        client = StudioClient(first_api.base_url, token)
        done = await poll(
            lambda: job_of(client, made["id"]), lambda job: job["status"] == "SUCCEEDED", timeout=20
        )
        keys = [
            key
            async for key in coredis.Redis.from_url(REDIS_URL).scan_iter(match=f"{prefix}:request-cache:*")
        ]
        assert len(keys) == 1, keys

        # The second process has no workers: only the shared cache can answer at once.
        again = (await StudioClient(second_api.base_url, token).data(ASK))["job"]
        assert (again["status"], again["cached"]) == ("SUCCEEDED", True)
        assert again["assets"] == done["assets"]
