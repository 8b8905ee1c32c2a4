"""Finding assets: prefix search that ignores case and accents, RELEVANCE order with cursors that stay
honest across pages, and similarTo by word overlap (embeddings off) and by text embeddings (on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.docstore.sqlite import SqliteDocStore
from domain.assets import ASSETS
from schema.nodes import split_id
from tests.api.helpers import new_client, submit, wait_for_jobs
from tests.api.test_uploads import upload
from tests.conftest import MakeClient, assert_error
from tests.support.client import StudioClient
from tests.support.media import image_bytes
from tests.support.server import StudioProcess, serving

LIST = """query($filter: AssetFilter, $sort: AssetSort, $first: Int, $after: String, $last: Int, $before: String) {
  assets(filter: $filter, sort: $sort, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id title prompt } }
    pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
  }
}"""
UPDATE = "mutation($id: ID!, $title: String, $tags: [String!]) { updateAsset(id: $id, title: $title, tags: $tags) { id } }"
ADD_MEMBER = (
    "mutation($teamId: ID!, $email: String!) { addTeamMember(teamId: $teamId, email: $email) { id } }"
)
RELEVANCE = {"field": "RELEVANCE", "direction": "DESC"}


async def make_asset(
    client: StudioClient,
    prompt: str,
    title: str | None = None,
    tags: list[str] | None = None,
    team_id: str | None = None,
) -> str:
    values: dict[str, Any] = {"prompt": prompt, "maxOutputTokens": 8}
    if team_id is not None:
        values["teamId"] = team_id
    job = await submit(client, "generateText", values)
    await wait_for_jobs(client, timeout=90)
    found = await client.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": job["id"]})
    asset_id = str(found["job"]["assets"][0]["id"])
    if title is not None or tags is not None:
        await client.data(UPDATE, {"id": asset_id, "title": title, "tags": tags})
    return asset_id


async def listed(client: StudioClient, **variables: Any) -> dict[str, Any]:
    return dict((await client.data(LIST, variables))["assets"])


def prompts(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["prompt"] for edge in page["edges"]]


async def test_search_matches_word_prefixes_whatever_the_case_and_accents(user: StudioClient) -> None:
    await make_asset(user, "Crème brûlée on a PLATE")
    await make_asset(user, "a plain omelette")

    for search in ("creme", "CRÈ", "brul plat", "Brûlée"):
        page = await listed(user, filter={"search": search})
        assert prompts(page) == ["Crème brûlée on a PLATE"], search
    assert prompts(await listed(user, filter={"search": "pla"})) == [
        "a plain omelette",
        "Crème brûlée on a PLATE",
    ]
    assert (await listed(user, filter={"search": "late"}))["totalCount"] == 0  # not a word's start


async def test_relevance_puts_title_and_tag_matches_and_whole_words_first(user: StudioClient) -> None:
    prompt_only = await make_asset(user, "harbour at dusk with boats")
    titled = await make_asset(user, "a quiet morning", title="Harbour")
    tagged_prefix = await make_asset(user, "old town", tags=["harbours"])
    await make_asset(user, "mountain lake")  # no match at all

    page = await listed(user, filter={"search": "harbour"}, sort=RELEVANCE)
    assert [edge["node"]["id"] for edge in page["edges"]] == [titled, tagged_prefix, prompt_only]
    assert page["totalCount"] == 3

    oldest_first = await listed(
        user, filter={"search": "harbour"}, sort={"field": "RELEVANCE", "direction": "ASC"}
    )
    assert [edge["node"]["id"] for edge in oldest_first["edges"]] == [prompt_only, tagged_prefix, titled]


async def test_relevance_ranks_whole_word_matches_above_prefix_matches(user: StudioClient) -> None:
    both_whole = await make_asset(user, "red kite over the fields")
    one_prefix = await make_asset(user, "reddish kites at sea")

    page = await listed(user, filter={"search": "red kite"}, sort=RELEVANCE)
    assert [edge["node"]["id"] for edge in page["edges"]] == [both_whole, one_prefix]


async def test_relevance_cursors_page_through_every_match_once_and_refuse_a_changed_ranking(
    user: StudioClient,
) -> None:
    made = [
        await make_asset(user, f"lantern number {i}", title="Lantern" if i % 2 else None) for i in range(5)
    ]

    seen: list[str] = []
    after = None
    while True:
        page = await listed(user, filter={"search": "lantern"}, sort=RELEVANCE, first=2, after=after)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(made) and len(seen) == 5
    assert seen[:2] == [made[3], made[1]]  # titled ones first, newest first among equals

    tail = await listed(user, filter={"search": "lantern"}, sort=RELEVANCE, last=2)
    assert [edge["node"]["id"] for edge in tail["edges"]] == seen[3:]
    assert tail["pageInfo"]["hasPreviousPage"]
    before = await listed(
        user, filter={"search": "lantern"}, sort=RELEVANCE, last=3, before=tail["pageInfo"]["startCursor"]
    )
    assert [edge["node"]["id"] for edge in before["edges"]] == seen[:3]
    assert not before["pageInfo"]["hasPreviousPage"] and before["pageInfo"]["hasNextPage"]

    first_page = await listed(user, filter={"search": "lantern"}, sort=RELEVANCE, first=2)
    await make_asset(user, "lantern festival", title="Lantern lantern")  # ranks into the first page
    response = await user.post(
        LIST,
        {
            "filter": {"search": "lantern"},
            "sort": RELEVANCE,
            "first": 2,
            "after": first_page["pageInfo"]["endCursor"],
        },
    )
    (error,) = response.json()["errors"]
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "after"


async def test_similar_to_without_embeddings_ranks_by_shared_words_and_tags(user: StudioClient) -> None:
    fox = await make_asset(user, "a red fox in snow", tags=["winter"])
    forest = await make_asset(user, "a fox in the winter forest")
    reds = await make_asset(user, "red roses")
    await make_asset(user, "a bowl of noodles")

    page = await listed(user, filter={"similarTo": fox})
    ids = [edge["node"]["id"] for edge in page["edges"]]
    assert ids[:2] == [forest, reds]  # fox + winter shared, then red alone; the noodles share nothing
    assert fox not in ids


async def test_similar_to_an_asset_the_caller_cannot_see_is_not_found(
    user: StudioClient, stranger: StudioClient
) -> None:
    theirs = await make_asset(stranger, "a private sketch")
    response = await user.post(LIST, {"filter": {"similarTo": theirs}})
    (error,) = response.json()["errors"]
    assert_error(error, "NOT_FOUND")


async def test_similar_to_stays_within_the_library_listed_and_needs_a_sign_in(
    user: StudioClient, make_client: MakeClient, anonymous: StudioClient
) -> None:
    team_id = (await user.data('mutation { createTeam(name: "Dock crew") { id } }'))["createTeam"]["id"]
    member = await make_client("USER")
    email = (await member.data("{ me { email } }"))["me"]["email"]
    await user.data(ADD_MEMBER, {"teamId": team_id, "email": email})
    crane = await make_asset(user, "a yellow crane on the dock", team_id=team_id)
    cranes = await make_asset(user, "two yellow cranes at dawn", team_id=team_id)
    await make_asset(member, "a yellow crane of my own")

    in_team = await listed(member, filter={"teamId": team_id, "similarTo": crane})
    assert [edge["node"]["id"] for edge in in_team["edges"]] == [cranes]
    own = await listed(member, filter={"similarTo": crane})  # the member's own library
    assert [edge["node"]["prompt"] for edge in own["edges"]] == ["a yellow crane of my own"]

    response = await anonymous.post(LIST, {"filter": {"similarTo": crane}})
    (error,) = response.json()["errors"]
    assert_error(error, "UNAUTHENTICATED")


@pytest.fixture(scope="module")
def embedding_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StudioProcess, Path]]:
    """A server with GENMEDIA_EMBEDDINGS=local: new assets get a vector from the packaged model."""
    data_dir = tmp_path_factory.mktemp("embeddings") / "data"
    with serving(data_dir, {"GENMEDIA_EMBEDDINGS": "local", "GENMEDIA_WORKERS": "1"}) as server:
        yield server, data_dir


async def test_similar_to_with_embeddings_ranks_by_meaning(
    embedding_studio: tuple[StudioProcess, Path],
) -> None:
    server, data_dir = embedding_studio
    client = await new_client(server, data_dir, "embedder")
    fox = await make_asset(client, "a red fox in snow")
    noodles = await make_asset(client, "a bowl of noodles")
    forest = await make_asset(client, "a fox in the winter forest")

    page = await listed(client, filter={"similarTo": fox})
    assert [edge["node"]["id"] for edge in page["edges"]] == [forest, noodles]


async def test_an_edited_title_and_tags_remake_the_embedding(
    embedding_studio: tuple[StudioProcess, Path],
) -> None:
    server, data_dir = embedding_studio
    client = await new_client(server, data_dir, "retitler")
    fox = await make_asset(client, "a red fox in snow")
    dish = await make_asset(client, "a bowl of noodles")
    pasta = await make_asset(client, "a plate of spaghetti")
    stored_before = await stored_embedding(data_dir, dish)

    # The noodles turn out to be a picture of an arctic fox: retitled and retagged, they move closer.
    retitle = """mutation($id: ID!, $title: String!, $tags: [String!]) {
      updateAsset(id: $id, title: $title, tags: $tags) { id }
    }"""
    await client.data(retitle, {"id": dish, "title": "a red fox in the snow", "tags": ["fox", "snow"]})

    assert await stored_embedding(data_dir, dish) not in (None, stored_before)
    after = [edge["node"]["id"] for edge in (await listed(client, filter={"similarTo": fox}))["edges"]]
    assert after.index(dish) < after.index(pasta)


async def stored_embedding(data_dir: Path, asset_id: str) -> str | None:
    """The vector the server stored on the asset (read from its SQLite file)."""
    docs = SqliteDocStore(data_dir / "studio.db")
    try:
        doc = await docs.get(ASSETS, split_id(asset_id)[1])
    finally:
        await docs.close()
    assert doc is not None
    return doc.data.get("embedding")


async def test_an_upload_gets_an_embedding_of_its_title_and_tags(
    embedding_studio: tuple[StudioProcess, Path],
) -> None:
    server, data_dir = embedding_studio
    client = await new_client(server, data_dir, "uploader")
    asset = await upload(client, image_bytes("image/png"), "image/png", filename="red fox in snow.png")
    assert await stored_embedding(data_dir, asset["id"]) is not None
