"""Sharing over HTTP: an asset shared with a person or a team is visible to them until unshared."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import submit, wait_for_jobs
from tests.conftest import MakeClient, assert_error
from tests.support.client import StudioClient

SHARE_USER = """mutation($id: ID!, $email: String!) {
  shareAsset(assetId: $id, withUserEmail: $email) { id }
}"""
SHARE_TEAM = "mutation($id: ID!, $team: ID!) { shareAsset(assetId: $id, withTeamId: $team) { id } }"
UNSHARE_USER = "mutation($id: ID!, $user: ID!) { unshareAsset(assetId: $id, userId: $user) { id } }"
UNSHARE_TEAM = "mutation($id: ID!, $team: ID!) { unshareAsset(assetId: $id, teamId: $team) { id } }"
ASSET = "query($id: ID!) { asset(id: $id) { id owner { id } team { id } } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"
SHARED = "{ assets(filter: {sharedWithMe: true}) { totalCount edges { node { id } } } }"
UPSCALE = "mutation($id: ID!) { upscaleImage(input: {assetId: $id}) { id } }"
ME = "{ me { id email } }"


async def me(client: StudioClient) -> dict[str, str]:
    return dict((await client.data(ME))["me"])


async def image_of(client: StudioClient, prompt: str = "a shared harbour") -> str:
    job = await submit(client, "generateImage", {"prompt": prompt})
    await wait_for_jobs(client)
    found = await client.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": job["id"]})
    return str(found["job"]["assets"][0]["id"])


async def code_of(client: StudioClient, document: str, variables: dict[str, Any]) -> str:
    error = await client.error(document, variables)
    code = str(error["extensions"]["code"])
    assert_error(error, code)
    return code


async def test_an_asset_shared_with_a_person_is_theirs_to_read_until_unshared(
    user: StudioClient, make_client: MakeClient, stranger: StudioClient
) -> None:
    asset_id = await image_of(user)
    friend = await make_client()
    friend_who = await me(friend)
    assert await code_of(friend, ASSET, {"id": asset_id}) == "NOT_FOUND"
    await user.data(SHARE_USER, {"id": asset_id, "email": friend_who["email"]})
    seen = (await friend.data(ASSET, {"id": asset_id}))["asset"]
    assert seen["id"] == asset_id and seen["team"] is None
    assert (await friend.data(NODE, {"id": asset_id}))["node"] == {"id": asset_id}
    assert [e["node"]["id"] for e in (await friend.data(SHARED))["assets"]["edges"]] == [asset_id]
    assert (await friend.data("{ assets { totalCount } }"))["assets"]["totalCount"] == 0  # not theirs
    assert (await friend.data(UPSCALE, {"id": asset_id}))["upscaleImage"]["id"]
    for document in (ASSET, NODE):
        assert await code_of(stranger, document, {"id": asset_id}) == "NOT_FOUND"
    await user.data(UNSHARE_USER, {"id": asset_id, "user": friend_who["id"]})
    assert await code_of(friend, ASSET, {"id": asset_id}) == "NOT_FOUND"
    assert (await friend.data(SHARED))["assets"]["totalCount"] == 0
    assert await code_of(stranger, ASSET, {"id": asset_id}) == "NOT_FOUND"
    await wait_for_jobs(friend)


async def test_an_asset_shared_with_a_team_is_listed_for_its_members(
    user: StudioClient, make_client: MakeClient, stranger: StudioClient
) -> None:
    asset_id = await image_of(user)
    team_id = (await user.data('mutation { createTeam(name: "Harbour") { id } }'))["createTeam"]["id"]
    member = await make_client()
    add = "mutation($t: ID!, $e: String!) { addTeamMember(teamId: $t, email: $e, role: VIEWER) { id } }"
    await user.data(add, {"t": team_id, "e": (await me(member))["email"]})
    listing = "query($t: ID!) { team(id: $t) { assets { totalCount edges { node { id } } } } }"
    assert (await member.data(listing, {"t": team_id}))["team"]["assets"]["totalCount"] == 0
    await user.data(SHARE_TEAM, {"id": asset_id, "team": team_id})
    seen = (await member.data(listing, {"t": team_id}))["team"]["assets"]
    assert [e["node"]["id"] for e in seen["edges"]] == [asset_id]
    assert (await member.data(ASSET, {"id": asset_id}))["asset"]["id"] == asset_id
    assert await code_of(stranger, ASSET, {"id": asset_id}) == "NOT_FOUND"
    await user.data(UNSHARE_TEAM, {"id": asset_id, "team": team_id})
    assert await code_of(member, ASSET, {"id": asset_id}) == "NOT_FOUND"


async def test_a_viewer_reads_what_is_shared_with_them_but_never_generates_from_it(
    user: StudioClient, viewer: StudioClient
) -> None:
    asset_id = await image_of(user)
    await user.data(SHARE_USER, {"id": asset_id, "email": (await me(viewer))["email"]})
    assert (await viewer.data(ASSET, {"id": asset_id}))["asset"]["id"] == asset_id
    assert await code_of(viewer, UPSCALE, {"id": asset_id}) == "FORBIDDEN"
    assert await code_of(viewer, SHARE_USER, {"id": asset_id, "email": "someone@example.com"}) == "FORBIDDEN"


async def test_only_those_who_may_edit_an_asset_share_it(
    user: StudioClient, make_client: MakeClient, stranger: StudioClient
) -> None:
    asset_id = await image_of(user)
    friend = await make_client()
    await user.data(SHARE_USER, {"id": asset_id, "email": (await me(friend))["email"]})
    onward = {"id": asset_id, "email": (await me(stranger))["email"]}
    assert await code_of(friend, SHARE_USER, onward) == "FORBIDDEN"  # a reader, not an editor
    assert await code_of(stranger, SHARE_USER, onward) == "NOT_FOUND"
    assert (
        await code_of(friend, UNSHARE_USER, {"id": asset_id, "user": (await me(friend))["id"]}) == "FORBIDDEN"
    )


async def test_sharing_with_a_team_the_sharer_is_not_in_is_not_found(
    user: StudioClient, stranger: StudioClient
) -> None:
    asset_id = await image_of(user)
    team_id = (await stranger.data('mutation { createTeam(name: "Elsewhere") { id } }'))["createTeam"]["id"]
    assert await code_of(user, SHARE_TEAM, {"id": asset_id, "team": team_id}) == "NOT_FOUND"


async def test_the_owner_and_the_assets_own_team_cannot_be_unshared(
    user: StudioClient,
) -> None:
    team_id = (await user.data('mutation { createTeam(name: "Keepers") { id } }'))["createTeam"]["id"]
    job = await submit(user, "generateImage", {"prompt": "kept", "teamId": team_id})
    await wait_for_jobs(user)
    found = await user.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": job["id"]})
    asset_id = found["job"]["assets"][0]["id"]
    assert await code_of(user, UNSHARE_TEAM, {"id": asset_id, "team": team_id}) == "CONFLICT"
    assert await code_of(user, UNSHARE_USER, {"id": asset_id, "user": (await me(user))["id"]}) == "CONFLICT"


@pytest.mark.parametrize(
    ("variables", "field"),
    [({}, "withUserEmail"), ({"email": "a@example.com", "team": "VGVhbTp4"}, "withTeamId")],
    ids=["no-target", "two-targets"],
)
async def test_share_names_exactly_one_target(
    user: StudioClient, variables: dict[str, str], field: str
) -> None:
    document = """mutation($id: ID!, $email: String, $team: ID) {
      shareAsset(assetId: $id, withUserEmail: $email, withTeamId: $team) { id }
    }"""
    error = await user.error(document, {"id": "QXNzZXQ6eA==", **variables})
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == field


async def test_sharing_is_audited(user: StudioClient, make_client: MakeClient, admin: StudioClient) -> None:
    asset_id = await image_of(user)
    friend = await make_client()
    friend_who = await me(friend)
    await user.data(SHARE_USER, {"id": asset_id, "email": friend_who["email"]})
    await user.data(UNSHARE_USER, {"id": asset_id, "user": friend_who["id"]})
    audit = """query($actor: ID!) { auditLog(actorId: $actor, first: 10) { edges { node { action outcome ip details } } } }"""
    events = [
        e["node"] for e in (await admin.data(audit, {"actor": (await me(user))["id"]}))["auditLog"]["edges"]
    ]
    assert [(e["action"], e["outcome"]) for e in events][:2] == [
        ("asset.unshare", "ok"),
        ("asset.share", "ok"),
    ]
    assert all(e["ip"] for e in events[:2])
