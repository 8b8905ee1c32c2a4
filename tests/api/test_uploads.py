"""Uploads through the real server: a signed PUT to /files, then completeUpload checks what arrived."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from backends.blobs.localfs import LocalBlobStore
from backends.blobs.localfs_uploads import upload_signature
from backends.docstore.sqlite import SqliteDocStore
from domain.uploads import UPLOADS
from tests.api.helpers import around_now, submit, wait_for_jobs
from tests.conftest import assert_error
from tests.support.client import StudioClient
from tests.support.media import image_bytes, mp4_bytes

CREATE = """mutation($filename: String!, $mimeType: String!, $bytes: Int!, $teamId: ID) {
  createUpload(filename: $filename, mimeType: $mimeType, bytes: $bytes, teamId: $teamId) {
    asset { id kind title model mimeType bytes contentSha256 }
    uploadUrl method headers expiresAt maxBytes
  }
}"""
COMPLETE = """mutation($assetId: ID!) {
  completeUpload(assetId: $assetId) {
    id kind title model prompt mimeType bytes width height durationSeconds contentSha256 url thumbnailUrl
  }
}"""
ASSET = "query($id: ID!) { asset(id: $id) { id } }"
LISTED = "{ assets(first: 100) { totalCount edges { node { id } } } }"
EXTENSION = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "video/mp4": "mp4"}


def raw_id(global_id: str) -> str:
    return base64.b64decode(global_id).decode().partition(":")[2]


async def create(client: StudioClient, data: bytes, mime: str, **values: Any) -> dict[str, Any]:
    variables = {"filename": f"mine.{EXTENSION[mime]}", "mimeType": mime, "bytes": len(data), **values}
    return dict((await client.data(CREATE, variables))["createUpload"])


async def put(ticket: dict[str, Any], data: bytes, url: str | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.request(
            ticket["method"], url or ticket["uploadUrl"], headers=ticket["headers"], content=data
        )


async def upload(client: StudioClient, data: bytes, mime: str, **values: Any) -> dict[str, Any]:
    """Create, PUT and complete: the asset."""
    ticket = await create(client, data, mime, **values)
    assert (await put(ticket, data)).status_code == 201
    return dict((await client.data(COMPLETE, {"assetId": ticket["asset"]["id"]}))["completeUpload"])


def files_of(studio_dir: Path, asset_id: str) -> list[Path]:
    """Every stored file (staging or final, with sidecars and temp files) of one upload."""
    blobs = studio_dir / "blobs"
    raw = raw_id(asset_id)
    return [
        path for folder in ("tmp/uploads", "assets") for path in (blobs / folder / raw[-2:]).glob(f"*{raw}*")
    ]


async def listed_ids(client: StudioClient) -> set[str]:
    return {edge["node"]["id"] for edge in (await client.data(LISTED))["assets"]["edges"]}


async def assert_nothing_left(client: StudioClient, studio_dir: Path, asset_id: str) -> None:
    assert files_of(studio_dir, asset_id) == []
    assert_error(await client.error(ASSET, {"id": asset_id}), "NOT_FOUND")
    assert asset_id not in await listed_ids(client)


# ---------------------------------------------------------------- the happy path


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg", "image/webp", "video/mp4"])
async def test_each_accepted_type_becomes_a_visible_asset_with_its_facts(
    user: StudioClient, studio_dir: Path, mime: str
) -> None:
    data = mp4_bytes() if mime == "video/mp4" else image_bytes(mime, 160, 96)
    ticket = await create(user, data, mime)
    asset_id = ticket["asset"]["id"]
    assert ticket["method"] == "PUT" and ticket["maxBytes"] == len(data)
    assert ticket["asset"]["model"] == "upload" and ticket["asset"]["title"] == f"mine.{EXTENSION[mime]}"
    assert_error(await user.error(ASSET, {"id": asset_id}), "NOT_FOUND")  # pending: not visible yet
    assert asset_id not in await listed_ids(user)

    assert (await put(ticket, data)).status_code == 201
    asset = (await user.data(COMPLETE, {"assetId": asset_id}))["completeUpload"]

    assert asset["id"] == asset_id
    assert asset["kind"] == ("VIDEO" if mime == "video/mp4" else "IMAGE")
    assert (asset["mimeType"], asset["bytes"], asset["model"], asset["prompt"]) == (
        mime,
        len(data),
        "upload",
        None,
    )
    assert asset["contentSha256"] == hashlib.sha256(data).hexdigest()
    assert (asset["width"], asset["height"]) == ((64, 48) if mime == "video/mp4" else (160, 96))
    if mime == "video/mp4":
        assert asset["durationSeconds"] == pytest.approx(1.0, abs=0.2)
        assert asset["thumbnailUrl"] is None
    else:
        assert asset["thumbnailUrl"]
    async with httpx.AsyncClient(timeout=30) as http:
        downloaded = await http.get(asset["url"])
    assert downloaded.status_code == 200 and downloaded.content == data
    assert downloaded.headers["content-type"] == mime
    assert (await user.data(ASSET, {"id": asset_id}))["asset"]["id"] == asset_id
    assert asset_id in await listed_ids(user)
    # Only the asset's own copy remains: the staging object is gone.
    assert [path.parent.parent.name for path in files_of(studio_dir, asset_id)] == ["assets", "assets"]


async def test_completing_twice_returns_the_same_asset(user: StudioClient) -> None:
    data = image_bytes("image/png")
    first = await upload(user, data, "image/png")

    again = (await user.data(COMPLETE, {"assetId": first["id"]}))["completeUpload"]

    assert again == {**first, "url": again["url"], "thumbnailUrl": again["thumbnailUrl"]}
    listed = (await user.data(LISTED))["assets"]
    assert [edge["node"]["id"] for edge in listed["edges"]].count(first["id"]) == 1


async def test_an_uploaded_image_feeds_generation_and_costs_nothing(user: StudioClient) -> None:
    usage = "query($from: DateTime!, $to: DateTime!) { usage(query: {from: $from, to: $to}) { totals { jobs images costUsd } } }"
    before = (await user.data(usage, around_now()))["usage"]["totals"]
    image = await upload(user, image_bytes("image/jpeg", 128, 128), "image/jpeg")
    assert (await user.data(usage, around_now()))["usage"]["totals"] == before

    jobs = [
        await submit(user, "generateImage", {"prompt": "in this style", "referenceAssetIds": [image["id"]]}),
        await submit(user, "upscaleImage", {"assetId": image["id"]}),
        await submit(
            user,
            "generateVideo",
            {"prompt": "it moves", "durationSeconds": 4, "firstFrameAssetId": image["id"]},
        ),
    ]
    await wait_for_jobs(user, timeout=60)

    for job in jobs:
        found = await user.data(
            "query($id: ID!) { job(id: $id) { status error { message } } }", {"id": job["id"]}
        )
        assert found["job"]["status"] == "SUCCEEDED", found


# ---------------------------------------------------------------- refusals leave nothing behind


async def test_a_put_over_the_declared_size_is_refused_413_and_nothing_is_kept(
    user: StudioClient, studio_dir: Path
) -> None:
    data = image_bytes("image/png", 160, 96)
    ticket = await create(user, data[:100], "image/png")  # declares 100 bytes

    response = await put(ticket, data)

    assert response.status_code == 413
    assert files_of(studio_dir, ticket["asset"]["id"]) == []
    error = await user.error(COMPLETE, {"assetId": ticket["asset"]["id"]})
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "assetId" and "uploadUrl" in error["message"]
    await assert_nothing_left(user, studio_dir, ticket["asset"]["id"])


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


@pytest.mark.parametrize("change", ["max", "type", "sig", "expires", "path"])
async def test_a_tampered_upload_url_is_refused_403(
    user: StudioClient, studio_dir: Path, change: str
) -> None:
    data = image_bytes("image/png")
    ticket = await create(user, data, "image/png")
    url = ticket["uploadUrl"]
    tampered = {
        "max": _with_query(url, max="999999999"),
        "type": _with_query(url, type="text/html"),
        "sig": _with_query(url, sig="0" * 64),
        "expires": _with_query(url, expires=str(int(time.time()) + 99_999)),
        "path": url.replace("/uploads/", "/assets/"),
    }[change]

    response = await put(ticket, data, tampered)

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This upload link is invalid."
    assert files_of(studio_dir, ticket["asset"]["id"]) == []


async def test_an_expired_upload_url_is_refused_403(user: StudioClient, studio_dir: Path) -> None:
    data = image_bytes("image/png")
    ticket = await create(user, data, "image/png")
    # The same link, signed with the studio's own key, but for a moment already past.
    store = LocalBlobStore(
        studio_dir / "blobs",
        base_url="http://unused",
        secret=(studio_dir / "secrets" / "url-signing.key").read_bytes(),
    )
    parts = urlsplit(ticket["uploadUrl"])
    key = parts.path.removeprefix("/files/")
    past = int(time.time()) - 5
    expired = _with_query(
        ticket["uploadUrl"], expires=str(past), sig=upload_signature(store, key, past, len(data), "image/png")
    )

    response = await put(ticket, data, expired)

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This upload link has expired."
    assert files_of(studio_dir, ticket["asset"]["id"]) == []


async def test_bytes_of_another_type_than_declared_are_refused(user: StudioClient, studio_dir: Path) -> None:
    jpeg = image_bytes("image/jpeg")
    ticket = await create(user, jpeg, "image/png")  # declared PNG, the bytes are JPEG
    assert (await put(ticket, jpeg)).status_code == 201

    error = await user.error(COMPLETE, {"assetId": ticket["asset"]["id"]})

    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "mimeType"
    assert "image/png" in error["message"] and "image/jpeg" in error["message"]
    await assert_nothing_left(user, studio_dir, ticket["asset"]["id"])
    again = await user.error(COMPLETE, {"assetId": ticket["asset"]["id"]})
    assert (again["extensions"]["field"], again["message"]) == ("mimeType", error["message"])


async def test_a_truncated_image_is_refused(user: StudioClient, studio_dir: Path) -> None:
    png = image_bytes("image/png", 160, 96)
    ticket = await create(user, png, "image/png")
    assert (await put(ticket, png[: len(png) // 2])).status_code == 201

    error = await user.error(COMPLETE, {"assetId": ticket["asset"]["id"]})

    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "file" and "truncated or corrupt" in error["message"]
    await assert_nothing_left(user, studio_dir, ticket["asset"]["id"])


async def test_completing_before_anything_was_uploaded_is_refused(
    user: StudioClient, studio_dir: Path
) -> None:
    data = image_bytes("image/webp")
    ticket = await create(user, data, "image/webp")

    error = await user.error(COMPLETE, {"assetId": ticket["asset"]["id"]})

    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "assetId"
    await assert_nothing_left(user, studio_dir, ticket["asset"]["id"])
    # The ticket still stands until it expires: the upload can still happen.
    assert (await put(ticket, data)).status_code == 201
    assert (await user.data(COMPLETE, {"assetId": ticket["asset"]["id"]}))["completeUpload"][
        "kind"
    ] == "IMAGE"


async def test_an_expired_ticket_is_refused_and_its_upload_removed(
    user: StudioClient, studio_dir: Path
) -> None:
    data = image_bytes("image/png")
    ticket = await create(user, data, "image/png")
    assert (await put(ticket, data)).status_code == 201
    docs = SqliteDocStore(studio_dir / "studio.db")
    try:  # the hour passes
        await docs.update(
            UPLOADS, raw_id(ticket["asset"]["id"]), {"expires_at": "2000-01-01T00:00:00.000000Z"}
        )
    finally:
        await docs.close()

    error = await user.error(COMPLETE, {"assetId": ticket["asset"]["id"]})

    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "assetId" and "expired" in error["message"]
    await assert_nothing_left(user, studio_dir, ticket["asset"]["id"])


async def test_a_stranger_cannot_complete_someone_elses_upload(
    user: StudioClient, stranger: StudioClient, studio_dir: Path
) -> None:
    data = image_bytes("image/png")
    ticket = await create(user, data, "image/png")
    assert (await put(ticket, data)).status_code == 201

    assert_error(await stranger.error(COMPLETE, {"assetId": ticket["asset"]["id"]}), "NOT_FOUND")

    assert len(files_of(studio_dir, ticket["asset"]["id"])) == 2  # the upload and its sidecar, untouched
    completed = (await user.data(COMPLETE, {"assetId": ticket["asset"]["id"]}))["completeUpload"]
    assert_error(await stranger.error(ASSET, {"id": completed["id"]}), "NOT_FOUND")


async def test_uploading_into_a_team_one_is_not_in_is_not_found(user: StudioClient) -> None:
    team = base64.b64encode(b"Team:someone-elses-team").decode()
    error = await user.error(
        CREATE, {"filename": "a.png", "mimeType": "image/png", "bytes": 10, "teamId": team}
    )
    assert_error(error, "NOT_FOUND")
