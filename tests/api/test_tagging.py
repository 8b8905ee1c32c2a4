"""Automatic tags: every new image and video is tagged as it is stored; people may still edit them."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.api.helpers import submit, wait_for_jobs
from tests.api.test_uploads import upload
from tests.support.client import StudioClient
from tests.support.media import mp4_bytes

COLOURS = {"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray"}
ASSET = "id kind tags"
ASSETS = f"""query($filter: AssetFilter) {{
  assets(filter: $filter, first: 50) {{ edges {{ node {{ {ASSET} }} }} }}
}}"""
JOB = f"query($id: ID!) {{ job(id: $id) {{ status assets {{ {ASSET} }} }} }}"
UPDATE = f"mutation($id: ID!, $tags: [String!]) {{ updateAsset(id: $id, tags: $tags) {{ {ASSET} }} }}"
ASSET_BY_ID = f"query($id: ID!) {{ asset(id: $id) {{ {ASSET} }} }}"


async def made(client: StudioClient, field: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The assets of one finished job."""
    job = await submit(client, field, values)
    await wait_for_jobs(client)
    finished = (await client.data(JOB, {"id": job["id"]}))["job"]
    assert finished["status"] == "SUCCEEDED"
    return list(finished["assets"])


async def found(client: StudioClient, **filters: Any) -> set[str]:
    listed = await client.data(ASSETS, {"filter": filters})
    return {edge["node"]["id"] for edge in listed["assets"]["edges"]}


async def test_a_new_image_is_tagged_with_its_subject_and_a_colour(user: StudioClient) -> None:
    [image] = await made(user, "generateImage", {"prompt": "a red fox in the snow"})

    assert "fox" in image["tags"]
    assert set(image["tags"]) & COLOURS
    assert not {"a", "in", "the"} & set(image["tags"])


async def test_a_new_video_is_tagged_too(user: StudioClient) -> None:
    [video] = await made(user, "generateVideo", {"prompt": "a lighthouse at dusk", "durationSeconds": 4})

    assert "lighthouse" in video["tags"]
    assert set(video["tags"]) & COLOURS


async def test_text_is_not_tagged(user: StudioClient) -> None:
    [text] = await made(user, "generateText", {"prompt": "a haiku about a red fox", "maxOutputTokens": 16})

    assert text["tags"] == []


async def test_automatic_tags_are_searchable_and_filterable(user: StudioClient) -> None:
    [image] = await made(user, "generateImage", {"prompt": "an otter juggling pebbles"})

    assert await found(user, tags=["otter"]) == {image["id"]}
    assert image["id"] in await found(user, search="jugg")


async def test_an_edit_of_the_tags_sticks(user: StudioClient) -> None:
    [image] = await made(user, "generateImage", {"prompt": "a heron by the pond"})
    assert "heron" in image["tags"]

    edited = (await user.data(UPDATE, {"id": image["id"], "tags": ["bird", "Wetland"]}))["updateAsset"]

    assert edited["tags"] == ["bird", "wetland"]
    assert (await user.data(ASSET_BY_ID, {"id": image["id"]}))["asset"]["tags"] == ["bird", "wetland"]
    assert await found(user, tags=["heron"]) == set()
    assert await found(user, tags=["wetland"]) == {image["id"]}


async def test_an_uploaded_image_is_tagged_with_its_colours(user: StudioClient) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 70, 210)).save(buffer, "PNG")
    asset = await upload(user, buffer.getvalue(), "image/png")

    tags = (await user.data(ASSET_BY_ID, {"id": asset["id"]}))["asset"]["tags"]
    assert tags == ["blue"]
    assert asset["id"] in await found(user, tags=["blue"])


async def test_an_uploaded_video_is_tagged_with_the_colours_of_a_frame(user: StudioClient) -> None:
    asset = await upload(user, mp4_bytes(colour="green"), "video/mp4")

    tags = (await user.data(ASSET_BY_ID, {"id": asset["id"]}))["asset"]["tags"]
    assert tags == ["green"]
