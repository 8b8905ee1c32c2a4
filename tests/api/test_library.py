"""The library as a user browses it: paging, sorting, filtering, searching, editing; jobs, models, usage."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import around_now, new_client, run, submit, submit_all, wait_for_jobs
from tests.conftest import assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess

CREME = "Crème brûlée recipe"
NOTES = 22
IMAGES = 2  # one image job with count 2
TEXTS = NOTES + 1
ASSET = "id kind prompt title tags favorite bytes model createdAt"
ASSETS = f"""query($filter: AssetFilter, $sort: AssetSort, $first: Int, $after: String, $last: Int, $before: String) {{
  assets(filter: $filter, sort: $sort, first: $first, after: $after, last: $last, before: $before) {{
    totalCount
    edges {{ cursor node {{ {ASSET} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}"""
JOBS = """query($filter: JobFilter, $first: Int, $after: String) {
  jobs(filter: $filter, first: $first, after: $after) {
    totalCount
    edges { cursor node { id kind status } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""
UPDATE = f"""mutation($id: ID!, $title: String, $tags: [String!], $favorite: Boolean) {{
  updateAsset(id: $id, title: $title, tags: $tags, favorite: $favorite) {{ {ASSET} }}
}}"""


@dataclass
class Library:
    """A fresh user's library: notes and a recipe as text, two harbour images, one cancelled video."""

    client: StudioClient
    stranger: StudioClient
    assets: list[dict[str, Any]]  # newest first, as the library lists them by default
    models: dict[str, str]  # kind -> default model id

    def ids(self, kind: str | None = None) -> set[str]:
        return {a["id"] for a in self.assets if kind is None or a["kind"] == kind}

    def note(self, index: int) -> dict[str, Any]:
        return next(a for a in self.assets if a["prompt"] == f"Note {index:02d} about gardening")


@pytest.fixture(scope="module")
def library(studio: StudioProcess, studio_dir: Path) -> Library:
    async def build() -> Library:
        client = await new_client(studio, studio_dir, "librarian")
        stranger = await new_client(studio, studio_dir, "browser")
        notes = [
            {"prompt": f"Note {i:02d} about gardening", "maxOutputTokens": 8 + 4 * i} for i in range(NOTES)
        ]
        await submit_all(client, "generateText", [*notes, {"prompt": CREME, "maxOutputTokens": 40}])
        await submit(client, "generateImage", {"prompt": "Harbour at dawn", "count": IMAGES})
        video = await submit(client, "generateVideo", {"prompt": "never mind", "durationSeconds": 8})
        await client.data("mutation($id: ID!) { cancelJob(id: $id) { id } }", {"id": video["id"]})
        await wait_for_jobs(client)
        listed = await client.data(ASSETS, {"first": 100})
        models = await client.data("{ models { id kind isDefault } }")
        return Library(
            client,
            stranger,
            [edge["node"] for edge in listed["assets"]["edges"]],
            {m["kind"]: m["id"] for m in models["models"] if m["isDefault"]},
        )

    return run(build())


async def page(client: StudioClient, **variables: Any) -> dict[str, Any]:
    return dict((await client.data(ASSETS, variables))["assets"])


async def found(client: StudioClient, **filter_: Any) -> set[str]:
    """Ids of every asset the filter matches (one page holds them all), checked against totalCount."""
    result = await page(client, filter=filter_, first=100)
    assert result["totalCount"] == len(result["edges"])
    return {edge["node"]["id"] for edge in result["edges"]}


def ids_of(result: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in result["edges"]]


async def test_the_library_holds_every_result_newest_first(library: Library) -> None:
    assert len(library.assets) == TEXTS + IMAGES
    assert Counter(a["kind"] for a in library.assets) == {"TEXT": TEXTS, "IMAGE": IMAGES}
    created = [datetime.fromisoformat(a["createdAt"]) for a in library.assets]
    assert created == sorted(created, reverse=True)


async def test_paging_forward_visits_every_asset_once_with_right_page_flags(library: Library) -> None:
    seen: list[str] = []
    after = None
    for number in range(1, 10):
        result = await page(library.client, first=7, after=after)
        assert result["totalCount"] == TEXTS + IMAGES
        assert result["pageInfo"]["hasPreviousPage"] is (number > 1)
        assert result["pageInfo"]["endCursor"] == result["edges"][-1]["cursor"]
        seen += ids_of(result)
        after = result["pageInfo"]["endCursor"]
        if not result["pageInfo"]["hasNextPage"]:
            break
    assert number == 4 and len(result["edges"]) == 25 - 3 * 7
    assert seen == [a["id"] for a in library.assets]


async def test_paging_backward_from_the_end_visits_every_asset_once(library: Library) -> None:
    seen: list[str] = []
    before = None
    for number in range(1, 10):
        result = await page(library.client, last=10, before=before)
        assert result["pageInfo"]["hasNextPage"] is (number > 1)
        assert result["pageInfo"]["startCursor"] == result["edges"][0]["cursor"]
        seen = ids_of(result) + seen
        before = result["pageInfo"]["startCursor"]
        if not result["pageInfo"]["hasPreviousPage"]:
            break
    assert number == 3 and len(result["edges"]) == 5
    assert seen == [a["id"] for a in library.assets]


@pytest.mark.parametrize(("field", "key"), [("CREATED_AT", "createdAt"), ("BYTES", "bytes")])
async def test_sorting_orders_the_whole_library_both_ways(library: Library, field: str, key: str) -> None:
    ascending = (await page(library.client, sort={"field": field, "direction": "ASC"}, first=100))["edges"]
    descending = (await page(library.client, sort={"field": field, "direction": "DESC"}, first=100))["edges"]
    values = [edge["node"][key] for edge in ascending]
    if key == "createdAt":
        values = [datetime.fromisoformat(value) for value in values]
    assert values == sorted(values) and values[0] != values[-1]
    assert ids_of({"edges": ascending}) == ids_of({"edges": descending})[::-1]
    assert set(ids_of({"edges": ascending})) == library.ids()


@pytest.mark.parametrize("kinds", [["IMAGE"], ["TEXT"], ["IMAGE", "TEXT"], ["VIDEO"]])
async def test_filtering_by_kind(library: Library, kinds: list[str]) -> None:
    expected = set().union(*(library.ids(kind) for kind in kinds))
    assert await found(library.client, kinds=kinds) == expected


@pytest.mark.parametrize("search", ["creme", "BRU", "brûlée", "Crème recipe", "recip"])
async def test_search_matches_word_prefixes_ignoring_case_and_accents(library: Library, search: str) -> None:
    (creme,) = (a["id"] for a in library.assets if a["prompt"] == CREME)
    assert await found(library.client, search=search) == {creme}


@pytest.mark.parametrize(
    ("search", "word"), [("harbour", "Harbour"), ("GARDEN", "gardening"), ("creme garden", None)]
)
async def test_search_needs_every_word(library: Library, search: str, word: str | None) -> None:
    expected = {a["id"] for a in library.assets if word is not None and word in a["prompt"]}
    assert await found(library.client, search=search) == expected


async def test_filtering_by_creation_window_keeps_what_lies_strictly_inside(library: Library) -> None:
    oldest_first = library.assets[::-1]
    start, end = oldest_first[4]["createdAt"], oldest_first[15]["createdAt"]
    inside = {
        a["id"]
        for a in oldest_first
        if datetime.fromisoformat(start)
        < datetime.fromisoformat(a["createdAt"])
        < datetime.fromisoformat(end)
    }
    assert 5 <= len(inside) <= 10
    assert await found(library.client, createdAfter=start, createdBefore=end) == inside


@pytest.mark.parametrize("kind", ["IMAGE", "TEXT", "VIDEO"])
async def test_filtering_by_model(library: Library, kind: str) -> None:
    assert await found(library.client, model=library.models[kind]) == library.ids(kind)


async def test_editing_an_asset_shows_up_everywhere_the_owner_looks(library: Library) -> None:
    target = library.note(3)
    updated = (
        await library.client.data(
            UPDATE,
            {
                "id": target["id"],
                "title": "  Lighthouse sonnet ",
                "tags": ["Poetry", " sea  shanty "],
                "favorite": True,
            },
        )
    )["updateAsset"]
    assert (updated["title"], updated["tags"], updated["favorite"]) == (
        "Lighthouse sonnet",
        ["poetry", "sea shanty"],
        True,
    )
    again = await library.client.data(
        f"query($id: ID!) {{ asset(id: $id) {{ {ASSET} }} }}", {"id": target["id"]}
    )
    assert again["asset"] == updated
    assert await found(library.client, search="lighthouse SONN") == {target["id"]}
    assert await found(library.client, tags=["poetry"]) == {target["id"]}
    assert await found(library.client, tags=["POETRY", "sea shanty"]) == {target["id"]}
    favorites = await found(library.client, favorite=True)
    assert target["id"] in favorites and library.note(4)["id"] not in favorites


async def test_tags_filter_needs_all_of_them_and_favorites_are_undone(library: Library) -> None:
    first, second = library.note(10), library.note(11)
    await library.client.data(UPDATE, {"id": first["id"], "tags": ["herbs", "basil"], "favorite": True})
    await library.client.data(UPDATE, {"id": second["id"], "tags": ["herbs"]})
    assert await found(library.client, tags=["herbs"]) == {first["id"], second["id"]}
    assert await found(library.client, tags=["herbs", "basil"]) == {first["id"]}
    assert first["id"] in await found(library.client, favorite=True)
    await library.client.data(UPDATE, {"id": first["id"], "favorite": False})
    assert first["id"] not in await found(library.client, favorite=True)
    assert first["id"] in await found(library.client, favorite=False)


async def test_total_count_of_non_favorites_leaves_favorites_out(library: Library) -> None:
    target = library.note(12)
    await library.client.data(UPDATE, {"id": target["id"], "favorite": True})
    result = await page(library.client, filter={"favorite": False}, first=100)
    assert target["id"] not in ids_of(result)
    assert result["totalCount"] == len(result["edges"])


async def test_a_page_without_favorites_is_still_full(library: Library) -> None:
    newest = ids_of(await page(library.client, first=4))
    for asset_id in newest:
        await library.client.data(UPDATE, {"id": asset_id, "favorite": True})
    try:
        result = await page(library.client, filter={"favorite": False}, first=5)
        assert len(result["edges"]) == 5 and result["pageInfo"]["hasNextPage"]
        assert not set(newest) & set(ids_of(result))
    finally:
        for asset_id in newest:
            await library.client.data(UPDATE, {"id": asset_id, "favorite": False})


async def test_someone_else_cannot_edit_an_asset_and_it_stays_as_it_was(library: Library) -> None:
    target = library.note(5)
    error = await library.stranger.error(UPDATE, {"id": target["id"], "title": "mine now", "favorite": True})
    assert_error(error, "NOT_FOUND")
    after = await library.client.data(
        f"query($id: ID!) {{ asset(id: $id) {{ {ASSET} }} }}", {"id": target["id"]}
    )
    assert after["asset"] == target
    assert await found(library.client, search="mine") == set()


async def test_jobs_page_through_every_job_newest_first(library: Library) -> None:
    seen: list[str] = []
    after = None
    while True:
        result = (await library.client.data(JOBS, {"first": 10, "after": after}))["jobs"]
        assert result["totalCount"] == NOTES + 3
        assert result["pageInfo"]["hasPreviousPage"] is bool(seen)
        seen += [edge["node"]["id"] for edge in result["edges"]]
        after = result["pageInfo"]["endCursor"]
        if not result["pageInfo"]["hasNextPage"]:
            break
    assert len(seen) == len(set(seen)) == NOTES + 3


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({"statuses": ["SUCCEEDED"]}, {("TEXT", "SUCCEEDED"): TEXTS, ("IMAGE", "SUCCEEDED"): 1}),
        ({"statuses": ["CANCELLED"]}, {("VIDEO", "CANCELLED"): 1}),
        ({"statuses": ["FAILED", "QUEUED", "RUNNING"]}, {}),
        ({"kinds": ["IMAGE", "VIDEO"]}, {("IMAGE", "SUCCEEDED"): 1, ("VIDEO", "CANCELLED"): 1}),
        ({"kinds": ["TEXT"], "statuses": ["SUCCEEDED", "CANCELLED"]}, {("TEXT", "SUCCEEDED"): TEXTS}),
    ],
    ids=["succeeded", "cancelled", "unfinished-or-failed", "image-or-video", "text-and-status"],
)
async def test_jobs_filter_by_status_and_kind(
    library: Library, filter_: dict[str, Any], expected: dict[tuple[str, str], int]
) -> None:
    result = (await library.client.data(JOBS, {"filter": filter_, "first": 100}))["jobs"]
    assert Counter((e["node"]["kind"], e["node"]["status"]) for e in result["edges"]) == expected
    assert result["totalCount"] == sum(expected.values())


async def test_node_finds_the_owners_asset_job_and_user(library: Library) -> None:
    first = library.assets[0]
    known = await library.client.data(
        "query($id: ID!) { asset(id: $id) { job { id } owner { id } } }", {"id": first["id"]}
    )
    document = "query($id: ID!) { node(id: $id) { __typename id } }"
    for type_name, node_id in (
        ("Asset", first["id"]),
        ("Job", known["asset"]["job"]["id"]),
        ("User", known["asset"]["owner"]["id"]),
    ):
        assert (await library.client.data(document, {"id": node_id}))["node"] == {
            "__typename": type_name,
            "id": node_id,
        }


async def test_models_lists_one_priced_default_model_per_kind(library: Library) -> None:
    query = "{ models { id kind displayName unitCostUsd costUnit isDefault } }"
    models = (await library.client.data(query))["models"]
    defaults = [m for m in models if m["isDefault"]]
    assert sorted(m["kind"] for m in defaults) == ["IMAGE", "TEXT", "UPSCALE", "VIDEO"]
    assert all(m["unitCostUsd"] > 0 and m["costUnit"] and m["displayName"] for m in models)


async def test_usage_report_counts_the_jobs_just_made_by_day_kind_and_model(library: Library) -> None:
    window = around_now()
    report = await library.client.data(
        """query($from: DateTime!, $to: DateTime!) {
              usage(query: {from: $from, to: $to, groupBy: [DAY, KIND, MODEL]}) {
                groupBy rows { key totals { images texts videos jobs costUsd } }
                totals { images texts videos jobs failedJobs costUsd }
              }
              me { usage(from: $from, to: $to) { images texts videos jobs failedJobs costUsd } }
            }""",
        window,
    )
    usage = report["usage"]
    assert usage["groupBy"] == ["DAY", "KIND", "MODEL"]
    by_kind: dict[str, Counter[str]] = {}
    for row in usage["rows"]:
        day, kind, model = row["key"]
        assert len(day) == 10 and model == library.models[kind]
        by_kind.setdefault(kind, Counter()).update(row["totals"])
    assert set(by_kind) == {"TEXT", "IMAGE"}, "a cancelled job costs nothing and is not counted"
    assert (by_kind["TEXT"]["texts"], by_kind["TEXT"]["jobs"]) == (TEXTS, TEXTS)
    assert (by_kind["IMAGE"]["images"], by_kind["IMAGE"]["jobs"]) == (IMAGES, 1)
    assert by_kind["TEXT"]["costUsd"] > 0 and by_kind["IMAGE"]["costUsd"] > 0
    totals = usage["totals"]
    assert (totals["texts"], totals["images"], totals["videos"], totals["jobs"]) == (
        TEXTS,
        IMAGES,
        0,
        TEXTS + 1,
    )
    assert totals["costUsd"] == pytest.approx(by_kind["TEXT"]["costUsd"] + by_kind["IMAGE"]["costUsd"])
    assert report["me"]["usage"] == totals
