"""A bigger page must not mean more docstore round trips: related objects are loaded in batches.

X-Docstore-Calls counts the round trips of one HTTP request. Each measurement is preceded by a cheap
request with the same token, so the sign-in lookup (cached per token for a few seconds) is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import new_client, run, submit, submit_all, wait_for_jobs
from tests.support.client import StudioClient
from tests.support.server import StudioProcess

IMAGES = 4
UPSCALES = 4
TEXTS = 52
TOTAL = IMAGES + UPSCALES + TEXTS  # 60
# Largest first: the upscales (which have a parent), then their sources.
ASSETS = """query($first: Int!) {
  assets(first: $first, sort: {field: BYTES, direction: DESC}) {
    totalCount
    edges { node { id owner { id email } job { id status costUsd } parent { id } } }
  }
}"""
JOBS = """query($first: Int!) {
  jobs(first: $first) {
    edges { node { id owner { id email } assets { id job { id } parent { id } } } }
  }
}"""
MOST_CALLS = 5  # query + count + users + jobs + assets, each one batch


@dataclass
class Collection:
    client: StudioClient
    jobs: int


@pytest.fixture(scope="module")
def collection(studio: StudioProcess, studio_dir: Path) -> Collection:
    """A fresh user with 60 assets: 4 images, 4 upscales of them (with parents) and 52 texts."""

    async def build() -> Collection:
        client = await new_client(studio, studio_dir, "collector")
        source = await submit(client, "generateImage", {"prompt": "dock cranes", "count": IMAGES})
        await wait_for_jobs(client)
        images = await client.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": source["id"]})
        await submit_all(
            client, "generateText", [{"prompt": f"tally {i}", "maxOutputTokens": 8} for i in range(TEXTS)]
        )
        # Submitted last, so the newest jobs (the first page of `jobs`) include upscales and parents.
        await submit_all(client, "upscaleImage", [{"assetId": a["id"]} for a in images["job"]["assets"]])
        await wait_for_jobs(client, timeout=45)
        return Collection(client, 1 + UPSCALES + TEXTS)

    return run(build())


async def measured(client: StudioClient, document: str, first: int) -> tuple[int, dict[str, Any]]:
    """(docstore calls, data) of one request, with the token's sign-in already cached."""
    await client.data("{ me { id } }")
    response = await client.post(document, {"first": first})
    body = response.json()
    assert not body.get("errors"), body
    return int(response.headers["x-docstore-calls"]), body["data"]


async def test_a_page_of_assets_with_owner_job_and_parent_costs_the_same_for_5_and_60(
    collection: Collection,
) -> None:
    small_calls, small = await measured(collection.client, ASSETS, 5)
    large_calls, large = await measured(collection.client, ASSETS, TOTAL)

    assert len(small["assets"]["edges"]) == 5 and len(large["assets"]["edges"]) == TOTAL
    assert large["assets"]["totalCount"] == TOTAL
    for data in (small, large):
        nodes = [edge["node"] for edge in data["assets"]["edges"]]
        assert len({n["owner"]["email"] for n in nodes}) == 1
        assert all(n["job"]["status"] == "SUCCEEDED" and n["job"]["costUsd"] > 0 for n in nodes)
        assert any(n["parent"] for n in nodes), "the page must load parents to count their batch"
    assert small_calls == large_calls, (small_calls, large_calls)
    assert large_calls <= MOST_CALLS


async def test_a_page_of_jobs_with_their_assets_costs_the_same_for_5_and_56(collection: Collection) -> None:
    # Every job but the oldest (the source images): were those on the page, the parents would
    # already be loaded with it and the large page would need one batch fewer.
    everything_but_the_sources = collection.jobs - 1
    small_calls, small = await measured(collection.client, JOBS, 5)
    large_calls, large = await measured(collection.client, JOBS, everything_but_the_sources)

    assert len(small["jobs"]["edges"]) == 5 and len(large["jobs"]["edges"]) == everything_but_the_sources
    for data in (small, large):
        assert any(a["parent"] for edge in data["jobs"]["edges"] for a in edge["node"]["assets"])
    assets = [a for edge in large["jobs"]["edges"] for a in edge["node"]["assets"]]
    assert len(assets) == UPSCALES + TEXTS
    assert small_calls == large_calls, (small_calls, large_calls)
    assert large_calls <= MOST_CALLS


def readme_gallery_query() -> str:
    """The gallery query exactly as the README shows it."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("query Gallery(")
    return text[start : text.index("```", start)]


async def test_the_readme_gallery_query_answers_a_page_in_a_bounded_number_of_calls(
    collection: Collection,
) -> None:
    await collection.client.data("{ me { id } }")
    response = await collection.client.post(readme_gallery_query(), {"after": None})
    body = response.json()
    assert not body.get("errors"), body
    page = body["data"]["assets"]
    nodes = [edge["node"] for edge in page["edges"]]
    assert len(nodes) == page["totalCount"] == IMAGES + UPSCALES  # the texts are filtered out
    assert all(node["kind"] == "IMAGE" and node["thumbnailUrl"] and node["url"] for node in nodes)
    assert all(node["owner"]["id"] and node["job"]["model"] for node in nodes)
    assert all(node["collections"]["edges"] == [] for node in nodes)
    # A page, its total, owners, jobs and collections: one batch each, whatever the page size.
    assert int(response.headers["x-docstore-calls"]) <= MOST_CALLS + 1
