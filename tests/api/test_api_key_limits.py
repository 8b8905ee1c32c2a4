"""Rate limits of API keys, against a server with tiny limits: each key has its own budget, and every
key of a user still shares the user's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_api_keys import create_key
from tests.conftest import assert_error
from tests.support.client import KeyClient, StudioClient
from tests.support.server import StudioProcess, mint_token, serving

pytestmark = pytest.mark.timeout(30)

LIMITS = {
    "GENMEDIA_WORKERS": "0",
    "GENMEDIA_RATE_READ": "6/minute",
    "GENMEDIA_RATE_KEY_READ": "3/minute",
    "GENMEDIA_RATE_GENERATE": "3/minute",
    "GENMEDIA_RATE_KEY_GENERATE": "1/minute",
}
ME = "{ me { id } }"
GENERATE = 'mutation { generateText(input: {prompt: "again"}) { id } }'


@pytest.fixture(scope="module")
def limited_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("key-limits") / "data"


@pytest.fixture(scope="module")
def limited(limited_dir: Path) -> Iterator[StudioProcess]:
    with serving(limited_dir, LIMITS) as server:
        yield server


@pytest.fixture
async def owner(limited: StudioProcess, limited_dir: Path) -> StudioClient:
    email = f"key-limits-{uuid.uuid4().hex[:12]}@example.com"
    return StudioClient(limited.base_url, await mint_token(limited_dir, email))


def refused_by(response_status: int, body: dict[str, object], limit: int) -> None:
    assert response_status == 429, body
    (error,) = body["errors"]  # type: ignore[misc]
    assert_error(error, "RATE_LIMITED")
    assert f"the limit is {limit} per" in error["message"], error


async def test_a_key_has_its_own_read_budget_inside_its_owners(owner: StudioClient) -> None:
    first = KeyClient(owner.base_url, (await create_key(owner, name="first"))[0])  # user: 1 read
    second = KeyClient(owner.base_url, (await create_key(owner, name="second"))[0])  # user: 2 reads
    for _ in range(3):
        assert (await first.post(ME)).status_code == 200  # user: 5 reads
    response = await first.post(ME)
    refused_by(response.status_code, response.json(), 3)  # the key's budget, not the user's
    assert (await second.post(ME)).status_code == 200  # user: 6 reads, the second key: 1
    response = await second.post(ME)
    refused_by(response.status_code, response.json(), 6)  # the owner's budget binds every key
    response = await owner.post(ME)
    refused_by(response.status_code, response.json(), 6)


async def test_a_key_has_its_own_generate_budget(owner: StudioClient) -> None:
    keyed = KeyClient(owner.base_url, (await create_key(owner, scopes=["generate"]))[0])
    assert (await keyed.post(GENERATE)).status_code == 200
    response = await keyed.post(GENERATE)
    refused_by(response.status_code, response.json(), 1)
    assert response.headers["retry-after"]
    assert (await owner.post(GENERATE)).status_code == 200  # the owner's budget has room left
