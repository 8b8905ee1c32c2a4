"""The trash as users and operators meet it: delete hides, restore brings back, purge removes for good."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import submit, wait_for_jobs
from tests.conftest import MakeClient, assert_error
from tests.e2e.helpers import run_cli
from tests.support.client import StudioClient
from tests.support.server import StudioProcess, studio_env

DELETE = "mutation($id: ID!) { deleteAsset(id: $id) { id deletedAt purgeAt } }"
RESTORE = "mutation($id: ID!) { restoreAsset(id: $id) { id deletedAt purgeAt } }"
PURGE = "mutation($days: Int) { purgeDeleted(olderThanDays: $days) }"
ASSET = "query($id: ID!) { asset(id: $id) { id } }"
TRASH = (
    "{ assets(filter: {deleted: true}, first: 100) { totalCount edges { node { id deletedAt purgeAt } } } }"
)
LIBRARY = "{ assets(first: 100) { edges { node { id } } } }"
COLLECTION = "query($id: ID!) { collection(id: $id) { assets { totalCount edges { node { id } } } } }"


def raw_id(global_id: str) -> str:
    return base64.b64decode(global_id).decode().partition(":")[2]


async def images(client: StudioClient, count: int, prompt: str = "driftwood") -> list[str]:
    job = await submit(client, "generateImage", {"prompt": prompt, "count": count})
    await wait_for_jobs(client)
    found = await client.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": job["id"]})
    return [asset["id"] for asset in found["job"]["assets"]]


def ids(data: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in data["assets"]["edges"]]


def blob_file(studio_dir: Path, asset_id: str) -> Path:
    raw = raw_id(asset_id)
    return studio_dir / "blobs" / "assets" / raw[-2:] / f"{raw}.png"


async def test_a_deleted_asset_is_hidden_and_listed_in_the_trash_with_its_purge_date(
    user: StudioClient,
) -> None:
    (asset,) = await images(user, 1)

    deleted = (await user.data(DELETE, {"id": asset}))["deleteAsset"]

    moment = datetime.fromisoformat(deleted["deletedAt"])
    assert datetime.fromisoformat(deleted["purgeAt"]) - moment == timedelta(days=30)
    assert_error(await user.error(ASSET, {"id": asset}), "NOT_FOUND")
    assert_error(await user.error("query($id: ID!) { node(id: $id) { id } }", {"id": asset}), "NOT_FOUND")
    assert asset not in ids(await user.data(LIBRARY))
    trash = await user.data(TRASH)
    assert ids(trash) == [asset] and trash["assets"]["edges"][0]["node"]["purgeAt"] == deleted["purgeAt"]
    again = (await user.data(DELETE, {"id": asset}))["deleteAsset"]
    assert again["deletedAt"] == deleted["deletedAt"], "deleting twice changes nothing"


async def test_a_deleted_asset_cannot_be_upscaled(user: StudioClient) -> None:
    (asset,) = await images(user, 1)
    await user.data(DELETE, {"id": asset})
    error = await user.error(
        "mutation($id: ID!) { upscaleImage(input: {assetId: $id}) { id } }", {"id": asset}
    )
    assert_error(error, "BAD_USER_INPUT")


async def test_restore_brings_the_asset_back_into_its_collections_in_its_place(user: StudioClient) -> None:
    first, second, third = await images(user, 3)
    made = (await user.data('mutation { createCollection(name: "Keep") { id } }'))["createCollection"]
    await user.data(
        "mutation($c: ID!, $a: [ID!]!) { addToCollection(collectionId: $c, assetIds: $a) { id } }",
        {"c": made["id"], "a": [first, second, third]},
    )

    await user.data(DELETE, {"id": second})
    hidden = (await user.data(COLLECTION, made))["collection"]["assets"]
    assert ids({"assets": hidden}) == [first, third] and hidden["totalCount"] == 2

    restored = (await user.data(RESTORE, {"id": second}))["restoreAsset"]
    assert restored["deletedAt"] is None and restored["purgeAt"] is None
    assert ids((await user.data(COLLECTION, made))["collection"]) == [first, second, third]
    assert (await user.data(ASSET, {"id": second}))["asset"]["id"] == second
    assert second not in ids(await user.data(TRASH))


async def test_restoring_an_asset_that_is_not_deleted_is_a_conflict(user: StudioClient) -> None:
    (asset,) = await images(user, 1)
    assert_error(await user.error(RESTORE, {"id": asset}), "CONFLICT")


@pytest.mark.parametrize("document", [DELETE, RESTORE], ids=["deleteAsset", "restoreAsset"])
async def test_strangers_cannot_delete_or_restore_and_learn_nothing(
    user: StudioClient, stranger: StudioClient, document: str
) -> None:
    live, trashed = await images(user, 2)
    await user.data(DELETE, {"id": trashed})
    for asset in (live, trashed):
        assert_error(await stranger.error(document, {"id": asset}), "NOT_FOUND")
    assert (await user.data(ASSET, {"id": live}))["asset"]
    assert trashed in ids(await user.data(TRASH))


async def test_only_administrators_purge(user: StudioClient, viewer: StudioClient) -> None:
    for client in (user, viewer):
        assert_error(await client.error(PURGE, {"days": 30}), "FORBIDDEN")


async def test_purge_removes_old_trash_with_its_blobs_and_never_a_restored_asset(
    user: StudioClient, admin: StudioClient, studio_dir: Path
) -> None:
    doomed, saved, kept = await images(user, 3)
    made = (await user.data('mutation { createCollection(name: "Purged") { id } }'))["createCollection"]
    await user.data(
        "mutation($c: ID!, $a: [ID!]!) { addToCollection(collectionId: $c, assetIds: $a) { id } }",
        {"c": made["id"], "a": [doomed, saved]},
    )
    for asset in (doomed, saved):
        await user.data(DELETE, {"id": asset})
    await user.data(RESTORE, {"id": saved})
    assert all(blob_file(studio_dir, a).exists() for a in (doomed, saved, kept))

    await admin.data(PURGE, {"days": 30})
    assert doomed in ids(await user.data(TRASH)), "a 30-day purge leaves a fresh deletion alone"
    purged = (await admin.data(PURGE, {"days": 0}))["purgeDeleted"]

    assert purged >= 1
    assert not blob_file(studio_dir, doomed).exists()
    assert blob_file(studio_dir, saved).exists() and blob_file(studio_dir, kept).exists()
    assert doomed not in ids(await user.data(TRASH))
    assert_error(await user.error(RESTORE, {"id": doomed}), "NOT_FOUND")
    assert ids((await user.data(COLLECTION, made))["collection"]) == [saved]
    assert (await admin.data(PURGE, {"days": 0}))["purgeDeleted"] == 0, "a second run finds nothing left"
    audited = "query($action: String) { auditLog(action: $action, first: 100) { edges { node { target } } } }"
    for action, asset in (("asset.purge", doomed), ("asset.delete", saved), ("asset.restore", saved)):
        assert raw_id(asset) in str(await admin.data(audited, {"action": action})), action


async def test_genmedia_purge_removes_old_trash_and_a_dry_run_removes_nothing(
    studio: StudioProcess, studio_dir: Path, make_client: MakeClient
) -> None:
    owner = await make_client()
    first, second = await images(owner, 2, "pebbles")
    for asset in (first, second):
        await owner.data(DELETE, {"id": asset})
    env = studio_env(studio_dir, studio.port)

    dry = await run_cli("purge", "--older-than-days", "0", "--dry-run", env=env)
    assert dry.returncode == 0, dry
    assert int(dry.stdout.split()[0]) >= 2, dry.stdout
    assert set(ids(await owner.data(TRASH))) == {first, second}

    done = await run_cli("purge", "--older-than-days", "0", env=env)
    assert done.returncode == 0, done
    assert int(done.stdout.split()[0]) >= 2, done.stdout
    assert ids(await owner.data(TRASH)) == []
    assert not blob_file(studio_dir, first).exists() and not blob_file(studio_dir, second).exists()

    again = await run_cli("purge", "--older-than-days", "0", env=env)
    assert again.returncode == 0 and again.stdout.split()[0] == "0", again


async def test_a_video_from_frames_and_an_upscale_are_derivatives_of_their_sources(
    user: StudioClient, stranger: StudioClient
) -> None:
    first, last = await images(user, 2, "lighthouse")
    await submit(
        user,
        "generateVideo",
        {
            "prompt": "light sweeps",
            "durationSeconds": 4,
            "firstFrameAssetId": first,
            "lastFrameAssetId": last,
        },
    )
    await submit(user, "upscaleImage", {"assetId": first})
    await wait_for_jobs(user)
    document = "query($id: ID!) { asset(id: $id) { derivatives { id kind parent { id } } } }"

    from_first = (await user.data(document, {"id": first}))["asset"]["derivatives"]
    from_last = (await user.data(document, {"id": last}))["asset"]["derivatives"]

    assert sorted(d["kind"] for d in from_first) == ["IMAGE", "VIDEO"]
    assert all(d["parent"]["id"] == first for d in from_first)
    assert [d["kind"] for d in from_last] == ["VIDEO"]
    video = from_last[0]["id"]
    await user.data(DELETE, {"id": video})
    assert [d["kind"] for d in (await user.data(document, {"id": first}))["asset"]["derivatives"]] == [
        "IMAGE"
    ]
    assert_error(await stranger.error(document, {"id": first}), "NOT_FOUND")
