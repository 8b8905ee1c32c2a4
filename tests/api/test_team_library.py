"""A team's collections, uploads and workflows: owners and editors make and change them, viewers read,
outsiders see nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import submit, wait_for_jobs
from tests.api.test_teams import create_team, join
from tests.conftest import MakeClient, assert_error
from tests.support.client import StudioClient
from tests.support.media import image_bytes

NEW_COLLECTION = """mutation($name: String!, $teamId: ID) {
  createCollection(name: $name, teamId: $teamId) { id team { id } }
}"""
COLLECTION = "query($id: ID!) { collection(id: $id) { id name team { id name } assets { totalCount } } }"
RENAME = "mutation($id: ID!, $name: String!) { updateCollection(id: $id, name: $name) { id name } }"
FILE = "mutation($c: ID!, $a: [ID!]!) { addToCollection(collectionId: $c, assetIds: $a) { id } }"
TEAM_COLLECTIONS = "query($id: ID!) { team(id: $id) { collections { totalCount edges { node { id } } } } }"
NEW_UPLOAD = """mutation($n: Int!, $teamId: ID) {
  createUpload(filename: "crew.png", mimeType: "image/png", bytes: $n, teamId: $teamId) {
    asset { id } uploadUrl method headers
  }
}"""
COMPLETE = "mutation($id: ID!) { completeUpload(assetId: $id) { id team { id } } }"
NEW_WORKFLOW = """mutation($teamId: ID) {
  createWorkflow(input: {name: "crew", teamId: $teamId,
    nodes: [{id: "t", kind: TEXT, input: {prompt: "a shanty", maxOutputTokens: 16}}], edges: []}) {
    id team { id }
  }
}"""
WORKFLOW = "query($id: ID!) { workflow(id: $id) { id team { id } } }"


class Crew:
    """A team with an owner, an editor, a viewer, and someone outside it."""

    def __init__(
        self,
        team_id: str,
        owner: StudioClient,
        editor: StudioClient,
        viewer: StudioClient,
        outsider: StudioClient,
    ) -> None:
        self.team_id = team_id
        self.owner, self.editor, self.viewer, self.outsider = owner, editor, viewer, outsider


async def crew(user: StudioClient, make_client: MakeClient) -> Crew:
    team_id = await create_team(user, "Harbour crew")
    editor, viewer, outsider = await make_client(), await make_client(), await make_client()
    await join(user, team_id, editor, "EDITOR")
    await join(user, team_id, viewer, "VIEWER")
    return Crew(team_id, user, editor, viewer, outsider)


async def code(client: StudioClient, document: str, variables: dict[str, Any]) -> str:
    error = await client.error(document, variables)
    assert_error(error, str(error["extensions"]["code"]))
    return str(error["extensions"]["code"])


async def test_a_team_collection_is_changed_by_editors_read_by_viewers_and_hidden_from_outsiders(
    user: StudioClient, make_client: MakeClient
) -> None:
    team = await crew(user, make_client)
    made = (await team.editor.data(NEW_COLLECTION, {"name": "Moodboard", "teamId": team.team_id}))[
        "createCollection"
    ]
    assert made["team"] == {"id": team.team_id}
    assert await code(team.viewer, NEW_COLLECTION, {"name": "Mine", "teamId": team.team_id}) == "FORBIDDEN"
    assert await code(team.outsider, NEW_COLLECTION, {"name": "Mine", "teamId": team.team_id}) == "NOT_FOUND"

    await team.owner.data(RENAME, {"id": made["id"], "name": "Moodboard v2"})
    job = await submit(team.editor, "generateImage", {"prompt": "a crew photo", "teamId": team.team_id})
    await wait_for_jobs(team.editor)
    found = await team.editor.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": job["id"]})
    await team.editor.data(FILE, {"c": made["id"], "a": [found["job"]["assets"][0]["id"]]})

    seen = (await team.viewer.data(COLLECTION, {"id": made["id"]}))["collection"]
    assert seen["name"] == "Moodboard v2" and seen["team"]["id"] == team.team_id
    assert seen["assets"]["totalCount"] == 1
    assert await code(team.viewer, RENAME, {"id": made["id"], "name": "mine now"}) == "FORBIDDEN"
    assert await code(team.outsider, COLLECTION, {"id": made["id"]}) == "NOT_FOUND"

    listed = (await team.viewer.data(TEAM_COLLECTIONS, {"id": team.team_id}))["team"]["collections"]
    assert [edge["node"]["id"] for edge in listed["edges"]] == [made["id"]]


async def test_editors_upload_into_the_team_and_viewers_may_not(
    user: StudioClient, make_client: MakeClient
) -> None:
    team = await crew(user, make_client)
    data = image_bytes("image/png")
    assert await code(team.viewer, NEW_UPLOAD, {"n": len(data), "teamId": team.team_id}) == "FORBIDDEN"
    assert await code(team.outsider, NEW_UPLOAD, {"n": len(data), "teamId": team.team_id}) == "NOT_FOUND"

    ticket = (await team.editor.data(NEW_UPLOAD, {"n": len(data), "teamId": team.team_id}))["createUpload"]
    async with httpx.AsyncClient(timeout=30) as http:
        sent = await http.request(
            ticket["method"], ticket["uploadUrl"], headers=ticket["headers"], content=data
        )
    assert sent.status_code == 201, sent.text
    asset = (await team.editor.data(COMPLETE, {"id": ticket["asset"]["id"]}))["completeUpload"]
    assert asset["team"] == {"id": team.team_id}
    # The whole team sees it; nobody else does.
    seen = await team.viewer.data("query($id: ID!) { asset(id: $id) { id } }", {"id": asset["id"]})
    assert seen["asset"]["id"] == asset["id"]
    assert (
        await code(team.outsider, "query($id: ID!) { asset(id: $id) { id } }", {"id": asset["id"]})
        == "NOT_FOUND"
    )


async def test_a_team_workflow_is_visible_to_members_only(
    user: StudioClient, make_client: MakeClient
) -> None:
    team = await crew(user, make_client)
    assert await code(team.viewer, NEW_WORKFLOW, {"teamId": team.team_id}) == "FORBIDDEN"
    made = (await team.editor.data(NEW_WORKFLOW, {"teamId": team.team_id}))["createWorkflow"]
    assert made["team"] == {"id": team.team_id}
    assert (await team.viewer.data(WORKFLOW, {"id": made["id"]}))["workflow"]["team"] == {"id": team.team_id}
    assert await code(team.outsider, WORKFLOW, {"id": made["id"]}) == "NOT_FOUND"
