"""A big library costs no more docstore calls per page than a small one, on page 5 as on page 1.

The libraries are written straight into the server's SQLite store (1,000 assets through real jobs
would take minutes); each is read through the API of a server of its own. X-Docstore-Calls counts
one request's docstore round trips; a cheap request first keeps the sign-in lookup out of the count.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import new_client, run
from tests.support.client import StudioClient
from tests.support.server import StudioProcess, serving

PAGE = """query($filter: AssetFilter, $sort: AssetSort, $after: String) {
  assets(filter: $filter, sort: $sort, first: 20, after: $after) {
    totalCount
    edges { node { id title tags favorite } }
    pageInfo { endCursor hasNextPage }
  }
}"""
SHAPES: dict[str, dict[str, Any]] = {
    "plain": {},
    "tag": {"filter": {"tags": ["blue"]}},
    "search": {"filter": {"search": "lant"}},
    "favorite": {"filter": {"favorite": True}},
    "kind": {"filter": {"kinds": ["IMAGE"]}},
    "relevance": {"filter": {"search": "lantern"}, "sort": {"field": "RELEVANCE", "direction": "DESC"}},
}


async def seed_library(data_dir: Path, user_id: str, size: int) -> None:
    """`size` assets of one owner, as the runner writes them: every other one an image and about a
    lantern, every third tagged blue, every fourth a favorite."""
    from backends.docstore.sqlite import SqliteDocStore
    from domain.assets import ASSETS
    from domain.library import asset_terms

    start = datetime(2026, 1, 1, tzinfo=UTC)
    docs = SqliteDocStore(data_dir / "studio.db")

    async def write(tx: Any) -> None:
        for index in range(size):
            moment = (start + timedelta(minutes=index)).isoformat()
            asset: dict[str, Any] = {
                "kind": "IMAGE" if index % 2 else "TEXT",
                "title": f"Lantern {index}" if index % 10 == 1 else None,
                "prompt": f"a paper lantern number {index}" if index % 2 else f"a quiet street {index}",
                "model": "local-text",
                "mime_type": "text/plain",
                "bytes": 100 + index,
                "blob_key": f"assets/seed/{user_id}-{index}.txt",
                "owner_id": user_id,
                "team_id": None,
                "tags": ["blue"] if index % 3 == 0 else [],
                "favorited_by": [user_id] if index % 4 == 0 else [],
                "created_at": moment,
                "updated_at": moment,
                "deleted": False,
                "deleted_at": None,
                "readers": [f"user:{user_id}"],
            }
            asset["search_terms"] = asset_terms(asset)
            tx.set(ASSETS, f"seed-{user_id}-{index:05d}", asset)

    try:
        await docs.run_transaction(write)
    finally:
        await docs.close()


@pytest.fixture(scope="module")
def scale_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StudioProcess, Path]]:
    data_dir = tmp_path_factory.mktemp("scale") / "data"
    with serving(data_dir, {"GENMEDIA_WORKERS": "0", "GENMEDIA_RATE_READ": "6000/minute"}) as server:
        yield server, data_dir


def library_of(scale_studio: tuple[StudioProcess, Path], label: str, size: int) -> tuple[StudioClient, str]:
    server, data_dir = scale_studio

    async def build() -> tuple[StudioClient, str]:
        from schema.nodes import split_id

        client = await new_client(server, data_dir, label)
        _, user_id = split_id((await client.data("{ me { id } }"))["me"]["id"])
        await seed_library(data_dir, user_id, size)
        return client, user_id

    return run(build())


async def calls_for_page(client: StudioClient, shape: dict[str, Any], page: int) -> int:
    """Docstore calls of the request for page `page` (20 assets each) of the listing."""
    after = None
    for _ in range(page - 1):
        body = await client.data(PAGE, {**shape, "after": after})
        assert body["assets"]["pageInfo"]["hasNextPage"], shape
        after = body["assets"]["pageInfo"]["endCursor"]
    await client.data("{ me { id } }")
    response = await client.post(PAGE, {**shape, "after": after})
    body = response.json()
    assert not body.get("errors"), body
    assert len(body["data"]["assets"]["edges"]) == 20, shape
    return int(response.headers["x-docstore-calls"])


def test_a_thousand_asset_library_pages_with_as_many_calls_as_a_hundred_asset_one(
    scale_studio: tuple[StudioProcess, Path],
) -> None:
    from schema.nodes import encode_id

    big, big_id = library_of(scale_studio, "big", 1000)
    small, small_id = library_of(scale_studio, "small", 100)

    def like(user_id: str) -> dict[str, Any]:  # like a lantern: shares words with half the library
        return {"filter": {"similarTo": encode_id("Asset", f"seed-{user_id}-00001")}}

    async def measure() -> dict[str, tuple[int, int, int]]:
        found = {}
        for name, shape in SHAPES.items():
            found[name] = (
                await calls_for_page(big, shape, 1),
                await calls_for_page(big, shape, 5),
                await calls_for_page(small, shape, 1),
            )
        found["similar"] = (
            await calls_for_page(big, like(big_id), 1),
            await calls_for_page(big, like(big_id), 5),
            await calls_for_page(small, like(small_id), 1),
        )
        return found

    calls = run(measure())
    for name, (big_first, big_fifth, small_first) in calls.items():
        assert big_first == big_fifth == small_first, (name, calls)
        assert big_first <= 2, (name, calls)  # the query, and its count or the similarTo asset
