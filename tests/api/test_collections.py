"""Collections as a gallery uses them: make, fill in order, browse, filter the library, file new results."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import new_client, run, submit, wait_for_jobs
from tests.conftest import MakeClient, assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess

COLLECTION = "id name description owner { id } createdAt updatedAt"
CREATE = f"""mutation($name: String!, $description: String, $teamId: ID) {{
  createCollection(name: $name, description: $description, teamId: $teamId) {{ {COLLECTION} }}
}}"""
ADD = """mutation($collectionId: ID!, $assetIds: [ID!]!) {
  addToCollection(collectionId: $collectionId, assetIds: $assetIds) { id assets(first: 50) { totalCount edges { node { id } } } }
}"""
REMOVE = """mutation($collectionId: ID!, $assetIds: [ID!]!) {
  removeFromCollection(collectionId: $collectionId, assetIds: $assetIds) { id assets { totalCount edges { node { id } } } }
}"""
ONE = """query($id: ID!, $first: Int, $after: String) {
  collection(id: $id) {
    id name
    assets(first: $first, after: $after) {
      totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor }
    }
  }
}"""
ASSET_COLLECTIONS = (
    "query($id: ID!) { asset(id: $id) { collections { totalCount edges { node { id name } } } } }"
)
IN_COLLECTION = """query($filter: AssetFilter) { assets(filter: $filter, first: 50) { totalCount edges { node { id kind } } } }"""
IMAGES = 6


def gid(type_name: str, raw: str) -> str:
    return base64.b64encode(f"{type_name}:{raw}".encode()).decode()


@dataclass
class Shelf:
    client: StudioClient
    stranger: StudioClient
    images: list[str]  # the owner's images, oldest job first
    text: str
    strangers_image: str

    async def create(self, name: str, description: str | None = None) -> dict[str, Any]:
        data = await self.client.data(CREATE, {"name": name, "description": description})
        return dict(data["createCollection"])

    async def add(self, collection_id: str, asset_ids: list[str]) -> list[str]:
        data = await self.client.data(ADD, {"collectionId": collection_id, "assetIds": asset_ids})
        return [edge["node"]["id"] for edge in data["addToCollection"]["assets"]["edges"]]


async def _job_assets(client: StudioClient, job_id: str) -> list[str]:
    found = await client.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": job_id})
    return [asset["id"] for asset in found["job"]["assets"]]


@pytest.fixture(scope="module")
def shelf(studio: StudioProcess, studio_dir: Path) -> Shelf:
    async def build() -> Shelf:
        client = await new_client(studio, studio_dir, "curator")
        stranger = await new_client(studio, studio_dir, "onlooker")
        first = await submit(client, "generateImage", {"prompt": "tide pools at noon", "count": 4})
        second = await submit(client, "generateImage", {"prompt": "kelp forest", "count": 2})
        text = await submit(client, "generateText", {"prompt": "a caption", "maxOutputTokens": 8})
        theirs = await submit(stranger, "generateImage", {"prompt": "someone else's shore"})
        await wait_for_jobs(client)
        await wait_for_jobs(stranger)
        images = await _job_assets(client, first["id"]) + await _job_assets(client, second["id"])
        return Shelf(
            client,
            stranger,
            images,
            (await _job_assets(client, text["id"]))[0],
            (await _job_assets(stranger, theirs["id"]))[0],
        )

    return run(build())


async def test_a_new_collection_is_listed_read_and_renamed_by_its_owner(shelf: Shelf) -> None:
    made = await shelf.create("Shoreline", "  pictures of the coast ")
    assert made["name"] == "Shoreline" and made["description"] == "pictures of the coast"

    listed = await shelf.client.data("{ collections(first: 100) { totalCount edges { node { id name } } } }")
    assert made["id"] in [edge["node"]["id"] for edge in listed["collections"]["edges"]]
    node = await shelf.client.data("query($id: ID!) { node(id: $id) { ... on Collection { name } } }", made)
    assert node["node"]["name"] == "Shoreline"

    renamed = await shelf.client.data(
        'mutation($id: ID!) { updateCollection(id: $id, name: "Coast", description: "") { name description } }',
        {"id": made["id"]},
    )
    assert renamed["updateCollection"] == {"name": "Coast", "description": None}


@pytest.mark.parametrize(
    "document",
    [
        "query($id: ID!) { collection(id: $id) { id } }",
        "query($id: ID!) { node(id: $id) { id } }",
        'mutation($id: ID!) { updateCollection(id: $id, name: "mine") { id } }',
        "mutation($id: ID!) { deleteCollection(id: $id) }",
    ],
    ids=["collection", "node", "updateCollection", "deleteCollection"],
)
async def test_someone_elses_collection_is_not_found(shelf: Shelf, document: str) -> None:
    made = await shelf.create("Private")
    assert_error(await shelf.stranger.error(document, {"id": made["id"]}), "NOT_FOUND")
    listed = await shelf.stranger.data("{ collections { edges { node { id } } } }")
    assert made["id"] not in str(listed)
    assert (await shelf.client.data(ONE, {"id": made["id"]}))["collection"]["name"] == "Private"


async def test_assets_keep_the_order_they_were_added_in_and_adding_twice_changes_nothing(
    shelf: Shelf,
) -> None:
    made = await shelf.create("Ordered")
    a, b, c, d = shelf.images[3], shelf.images[0], shelf.images[5], shelf.images[1]

    assert await shelf.add(made["id"], [a, b]) == [a, b]
    assert await shelf.add(made["id"], [c, a, b]) == [a, b, c]
    assert await shelf.add(made["id"], [d, d]) == [a, b, c, d]

    first = (await shelf.client.data(ONE, {"id": made["id"], "first": 3}))["collection"]["assets"]
    assert [e["node"]["id"] for e in first["edges"]] == [a, b, c] and first["pageInfo"]["hasNextPage"]
    after = first["pageInfo"]["endCursor"]
    rest = (await shelf.client.data(ONE, {"id": made["id"], "first": 3, "after": after}))["collection"]
    assert [e["node"]["id"] for e in rest["assets"]["edges"]] == [d]
    assert rest["assets"]["totalCount"] == 4 and not rest["assets"]["pageInfo"]["hasNextPage"]


async def test_an_asset_in_many_collections_lists_them_in_the_order_it_joined(shelf: Shelf) -> None:
    asset = shelf.images[2]
    first, second = await shelf.create("First home"), await shelf.create("Second home")
    await shelf.add(second["id"], [asset])
    await shelf.add(first["id"], [asset])

    found = (await shelf.client.data(ASSET_COLLECTIONS, {"id": asset}))["asset"]["collections"]
    names = [edge["node"]["name"] for edge in found["edges"]]
    assert names[-2:] == ["Second home", "First home"]


async def test_only_assets_the_caller_may_see_can_be_added_and_none_is_named(shelf: Shelf) -> None:
    made = await shelf.create("Careful")
    missing = gid("Asset", "doesnotexist")
    for foreign in (shelf.strangers_image, missing, gid("Job", "whatever")):
        error = await shelf.client.error(
            ADD, {"collectionId": made["id"], "assetIds": [shelf.images[0], foreign]}
        )
        assert_error(error, "NOT_FOUND")
        assert foreign not in error["message"] and shelf.images[0] not in error["message"]
    assert (await shelf.client.data(ONE, {"id": made["id"]}))["collection"]["assets"]["totalCount"] == 0


async def test_a_stranger_cannot_fill_someone_elses_collection(shelf: Shelf) -> None:
    made = await shelf.create("Mine alone")
    error = await shelf.stranger.error(ADD, {"collectionId": made["id"], "assetIds": [shelf.strangers_image]})
    assert_error(error, "NOT_FOUND")


async def test_removing_is_idempotent_and_keeps_the_others_in_order(shelf: Shelf) -> None:
    made = await shelf.create("Trimmed")
    a, b, c = shelf.images[:3]
    await shelf.add(made["id"], [a, b, c])
    for _ in range(2):
        data = await shelf.client.data(REMOVE, {"collectionId": made["id"], "assetIds": [b, shelf.text]})
        assets = data["removeFromCollection"]["assets"]
        assert [e["node"]["id"] for e in assets["edges"]] == [a, c] and assets["totalCount"] == 2
    left = (await shelf.client.data(ASSET_COLLECTIONS, {"id": b}))["asset"]["collections"]
    assert made["id"] not in str(left)


async def test_the_library_filters_by_collection_and_combines_it_with_other_filters(shelf: Shelf) -> None:
    made = await shelf.create("Mixed")
    await shelf.add(made["id"], [shelf.images[4], shelf.text])

    everything = (await shelf.client.data(IN_COLLECTION, {"filter": {"collectionId": made["id"]}}))["assets"]
    assert {e["node"]["id"] for e in everything["edges"]} == {shelf.images[4], shelf.text}
    assert everything["totalCount"] == 2
    texts = await shelf.client.data(
        IN_COLLECTION, {"filter": {"collectionId": made["id"], "kinds": ["TEXT"]}}
    )
    assert [e["node"]["id"] for e in texts["assets"]["edges"]] == [shelf.text]
    searched = await shelf.client.data(
        IN_COLLECTION, {"filter": {"collectionId": made["id"], "search": "kelp"}}
    )
    assert [e["node"]["id"] for e in searched["assets"]["edges"]] == [shelf.images[4]]

    error = await shelf.stranger.error(IN_COLLECTION, {"filter": {"collectionId": made["id"]}})
    assert_error(error, "NOT_FOUND")


async def test_deleting_a_collection_keeps_its_assets(shelf: Shelf) -> None:
    made = await shelf.create("Short-lived")
    await shelf.add(made["id"], shelf.images[:2])

    assert (await shelf.client.data("mutation($id: ID!) { deleteCollection(id: $id) }", made))[
        "deleteCollection"
    ]

    assert_error(await shelf.client.error(ONE, {"id": made["id"]}), "NOT_FOUND")
    for asset in shelf.images[:2]:
        found = await shelf.client.data(ASSET_COLLECTIONS, {"id": asset})
        assert made["id"] not in str(found)
    assert_error(
        await shelf.client.error(IN_COLLECTION, {"filter": {"collectionId": made["id"]}}), "NOT_FOUND"
    )


async def test_generated_results_are_filed_into_the_collection_named_at_submit(shelf: Shelf) -> None:
    made = await shelf.create("Fresh")
    await shelf.add(made["id"], [shelf.images[0]])
    job = await submit(
        shelf.client, "generateImage", {"prompt": "sea glass", "count": 2, "collectionId": made["id"]}
    )
    await wait_for_jobs(shelf.client)

    made_now = await _job_assets(shelf.client, job["id"])
    listed = (await shelf.client.data(ONE, {"id": made["id"]}))["collection"]["assets"]
    assert [e["node"]["id"] for e in listed["edges"]] == [shelf.images[0], *made_now]


async def test_results_cannot_be_filed_into_a_collection_the_caller_may_not_edit(shelf: Shelf) -> None:
    made = await shelf.create("Not yours")
    document = "mutation($input: GenerateImageInput!) { generateImage(input: $input) { id } }"
    error = await shelf.stranger.error(document, {"input": {"prompt": "x", "collectionId": made["id"]}})
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "input.collectionId"


async def test_a_page_of_a_collection_costs_the_same_docstore_calls_for_2_and_6_assets(shelf: Shelf) -> None:
    made = await shelf.create("Counted")
    await shelf.add(made["id"], shelf.images)
    document = """query($id: ID!, $first: Int) { collection(id: $id) { assets(first: $first) {
      totalCount edges { node { id owner { id } job { id } collections { totalCount } derivatives { id } } } } } }"""

    async def calls(first: int) -> int:
        await shelf.client.data("{ me { id } }")
        response = await shelf.client.post(document, {"id": made["id"], "first": first})
        body = response.json()
        assert not body.get("errors"), body
        assert len(body["data"]["collection"]["assets"]["edges"]) == first
        return int(response.headers["x-docstore-calls"])

    assert await calls(2) == await calls(IMAGES)


async def test_team_collections_are_not_found_for_non_members(shelf: Shelf) -> None:
    team = gid("Team", "someone-elses-team")
    assert_error(await shelf.client.error(CREATE, {"name": "Team's", "teamId": team}), "NOT_FOUND")
    error = await shelf.client.error("query($t: ID) { collections(teamId: $t) { totalCount } }", {"t": team})
    assert_error(error, "NOT_FOUND")


async def test_viewers_cannot_create_collections(make_client: MakeClient) -> None:
    viewer = await make_client("VIEWER")
    assert_error(await viewer.error(CREATE, {"name": "Look only"}), "FORBIDDEN")
