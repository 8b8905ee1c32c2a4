"""Teams over HTTP: members and roles, the last owner, team work and who sees it, private fields."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from tests.api.helpers import around_now, submit, wait_for_jobs
from tests.conftest import MakeClient, assert_error
from tests.support.client import StudioClient

CREATE = "mutation($name: String!) { createTeam(name: $name) { id name createdAt } }"
ADD = """mutation($teamId: ID!, $email: String!, $role: TeamRole!) {
  addTeamMember(teamId: $teamId, email: $email, role: $role) { id members { totalCount } }
}"""
ADD_DEFAULT = """mutation($teamId: ID!, $email: String!) {
  addTeamMember(teamId: $teamId, email: $email) { id members { edges { node { role user { id } } } } }
}"""
SET_ROLE = """mutation($teamId: ID!, $userId: ID!, $role: TeamRole!) {
  setTeamMemberRole(teamId: $teamId, userId: $userId, role: $role) { id }
}"""
REMOVE = "mutation($teamId: ID!, $userId: ID!) { removeTeamMember(teamId: $teamId, userId: $userId) { id } }"
TEAM = "query($id: ID!) { team(id: $id) { id name } }"
MEMBERS = """query($id: ID!, $first: Int, $after: String) {
  team(id: $id) { members(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { role joinedAt user { id } } }
  } }
}"""
TEAM_ASSETS = (
    """query($id: ID!) { team(id: $id) { assets { totalCount edges { node { id team { id } } } } } }"""
)
ME = "{ me { id email } }"


def raw_id(global_id: str) -> str:
    return base64.b64decode(global_id).decode().partition(":")[2]


def address(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}@example.com"


async def me(client: StudioClient) -> dict[str, str]:
    return dict((await client.data(ME))["me"])


async def create_team(client: StudioClient, name: str = "Coast crew") -> str:
    return str((await client.data(CREATE, {"name": name}))["createTeam"]["id"])


async def join(owner: StudioClient, team_id: str, member: StudioClient, role: str) -> str:
    """Add `member` to the owner's team with `role`; the member's user id."""
    who = await me(member)
    await owner.data(ADD, {"teamId": team_id, "email": who["email"], "role": role})
    return who["id"]


async def code_of(client: StudioClient, document: str, variables: dict[str, Any]) -> str:
    error = await client.error(document, variables)
    code = str(error["extensions"]["code"])
    assert_error(error, code)
    return code


async def test_the_creator_owns_a_new_team_and_sees_it_in_their_teams(user: StudioClient) -> None:
    team_id = await create_team(user, "  Night shift  ")
    seen = await user.data("{ me { teams { role team { id name } } } }")
    assert {"role": "OWNER", "team": {"id": team_id, "name": "Night shift"}} in seen["me"]["teams"]
    node = await user.data("query($id: ID!) { node(id: $id) { ... on Team { name } } }", {"id": team_id})
    assert node["node"] == {"name": "Night shift"}


async def test_a_viewer_cannot_create_a_team(viewer: StudioClient) -> None:
    assert await code_of(viewer, CREATE, {"name": "Readers"}) == "FORBIDDEN"


async def test_added_members_see_the_team_at_once_and_outsiders_do_not(
    user: StudioClient, make_client: MakeClient, stranger: StudioClient, admin: StudioClient
) -> None:
    team_id = await create_team(user)
    member = await make_client()
    assert await code_of(member, TEAM, {"id": team_id}) == "NOT_FOUND"  # cached as an outsider now
    await join(user, team_id, member, "VIEWER")
    assert (await member.data(TEAM, {"id": team_id}))["team"]["id"] == team_id
    assert (await member.data("{ me { teams { role } } }"))["me"]["teams"] == [{"role": "VIEWER"}]
    assert await code_of(stranger, TEAM, {"id": team_id}) == "NOT_FOUND"
    assert await code_of(stranger, "query($id: ID!) { node(id: $id) { id } }", {"id": team_id}) == "NOT_FOUND"
    assert (await admin.data(TEAM, {"id": team_id}))["team"]["id"] == team_id


async def test_add_team_member_defaults_to_viewer(user: StudioClient, make_client: MakeClient) -> None:
    team_id = await create_team(user)
    member = await make_client()
    who = await me(member)
    added = await user.data(ADD_DEFAULT, {"teamId": team_id, "email": who["email"].upper()})
    roles = {
        edge["node"]["user"]["id"]: edge["node"]["role"]
        for edge in added["addTeamMember"]["members"]["edges"]
    }
    assert roles[who["id"]] == "VIEWER"


async def test_an_address_without_an_account_is_added_and_finds_the_team_at_first_sign_in(
    user: StudioClient, make_client: MakeClient
) -> None:
    team_id = await create_team(user)
    newcomer_email = address("newcomer")
    added = await user.data(ADD, {"teamId": team_id, "email": newcomer_email, "role": "EDITOR"})
    assert added["addTeamMember"]["members"]["totalCount"] == 2
    newcomer = await make_client(email=newcomer_email)
    teams = (await newcomer.data("{ me { teams { role team { id } } } }"))["me"]["teams"]
    assert teams == [{"role": "EDITOR", "team": {"id": team_id}}]


async def test_adding_someone_again_is_harmless_but_with_another_role_a_conflict(
    user: StudioClient, make_client: MakeClient
) -> None:
    team_id = await create_team(user)
    member = await make_client()
    await join(user, team_id, member, "EDITOR")
    email = (await me(member))["email"]
    await user.data(ADD, {"teamId": team_id, "email": email, "role": "EDITOR"})
    assert await code_of(user, ADD, {"teamId": team_id, "email": email, "role": "VIEWER"}) == "CONFLICT"
    teams = (await member.data("{ me { teams { role } } }"))["me"]["teams"]
    assert teams == [{"role": "EDITOR"}]


@pytest.mark.parametrize("role", ["EDITOR", "VIEWER"])
async def test_only_owners_manage_members_others_are_forbidden_or_told_nothing(
    user: StudioClient, make_client: MakeClient, stranger: StudioClient, role: str
) -> None:
    team_id = await create_team(user)
    member = await make_client()
    member_id = await join(user, team_id, member, role)
    owner_id = (await me(user))["id"]
    someone = {"teamId": team_id, "email": address("someone"), "role": "VIEWER"}
    assert await code_of(member, ADD, someone) == "FORBIDDEN"
    assert (
        await code_of(member, SET_ROLE, {"teamId": team_id, "userId": member_id, "role": "OWNER"})
        == "FORBIDDEN"
    )
    assert await code_of(member, REMOVE, {"teamId": team_id, "userId": owner_id}) == "FORBIDDEN"
    assert await code_of(stranger, ADD, someone) == "NOT_FOUND"
    assert await code_of(stranger, REMOVE, {"teamId": team_id, "userId": member_id}) == "NOT_FOUND"
    members = (await user.data(MEMBERS, {"id": team_id}))["team"]["members"]
    assert members["totalCount"] == 2


async def test_a_team_never_loses_its_last_owner(user: StudioClient, make_client: MakeClient) -> None:
    team_id = await create_team(user)
    owner_id = (await me(user))["id"]
    demote = {"teamId": team_id, "userId": owner_id, "role": "EDITOR"}
    assert await code_of(user, SET_ROLE, demote) == "CONFLICT"
    assert await code_of(user, REMOVE, {"teamId": team_id, "userId": owner_id}) == "CONFLICT"
    second = await make_client()
    second_id = await join(user, team_id, second, "EDITOR")
    await user.data(SET_ROLE, {"teamId": team_id, "userId": second_id, "role": "OWNER"})
    await user.data(SET_ROLE, demote)  # another owner exists now
    assert (
        await code_of(user, ADD, {"teamId": team_id, "email": address("x"), "role": "VIEWER"}) == "FORBIDDEN"
    )
    assert await code_of(second, REMOVE, {"teamId": team_id, "userId": second_id}) == "CONFLICT"
    await second.data(REMOVE, {"teamId": team_id, "userId": owner_id})
    assert await code_of(user, TEAM, {"id": team_id}) == "NOT_FOUND"  # removed: an outsider at once


async def test_setting_the_role_of_someone_not_in_the_team_is_not_found_and_removing_them_is_harmless(
    user: StudioClient, stranger: StudioClient
) -> None:
    team_id = await create_team(user)
    outsider = (await me(stranger))["id"]
    assert (
        await code_of(user, SET_ROLE, {"teamId": team_id, "userId": outsider, "role": "EDITOR"})
        == "NOT_FOUND"
    )
    await user.data(REMOVE, {"teamId": team_id, "userId": outsider})
    assert await code_of(stranger, TEAM, {"id": team_id}) == "NOT_FOUND"


async def test_members_page_in_join_order_with_a_total(user: StudioClient, make_client: MakeClient) -> None:
    team_id = await create_team(user)
    for _ in range(4):
        await user.data(ADD, {"teamId": team_id, "email": address("crew"), "role": "VIEWER"})
    first = (await user.data(MEMBERS, {"id": team_id, "first": 2}))["team"]["members"]
    assert first["totalCount"] == 5 and first["pageInfo"]["hasNextPage"]
    assert first["edges"][0]["node"]["role"] == "OWNER"
    rest = await user.data(MEMBERS, {"id": team_id, "first": 10, "after": first["pageInfo"]["endCursor"]})
    rest_edges = rest["team"]["members"]["edges"]
    assert len(rest_edges) == 3 and not rest["team"]["members"]["pageInfo"]["hasNextPage"]
    ids = [e["node"]["user"]["id"] for e in first["edges"] + rest_edges]
    assert len(set(ids)) == 5


async def test_editors_generate_into_the_team_and_every_member_sees_the_work(
    user: StudioClient, make_client: MakeClient, stranger: StudioClient
) -> None:
    team_id = await create_team(user)
    editor, reader = await make_client(), await make_client()
    await join(user, team_id, editor, "EDITOR")
    await join(user, team_id, reader, "VIEWER")
    job = await submit(
        editor, "generateImage", {"prompt": "a team lighthouse", "teamId": team_id}, "id team { id }"
    )
    assert job["team"] == {"id": team_id}
    await wait_for_jobs(editor)
    asset_id = (await editor.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": job["id"]}))[
        "job"
    ]["assets"][0]["id"]
    for member in (user, editor, reader):
        seen = (await member.data(TEAM_ASSETS, {"id": team_id}))["team"]["assets"]
        assert seen["totalCount"] == 1 and seen["edges"][0]["node"] == {
            "id": asset_id,
            "team": {"id": team_id},
        }
        listed = await member.data(
            "query($team: ID!) { assets(filter: {teamId: $team}) { totalCount } }", {"team": team_id}
        )
        assert listed["assets"]["totalCount"] == 1
        assert (await member.data("query($id: ID!) { job(id: $id) { id } }", {"id": job["id"]}))["job"]
        jobs = await member.data(
            "query($t: ID!) { jobs(filter: {teamId: $t}) { totalCount } }", {"t": team_id}
        )
        assert jobs["jobs"]["totalCount"] == 1
    assert (
        await code_of(stranger, "query($id: ID!) { asset(id: $id) { id } }", {"id": asset_id}) == "NOT_FOUND"
    )
    assert (
        await code_of(
            stranger, "query($t: ID!) { assets(filter: {teamId: $t}) { totalCount } }", {"t": team_id}
        )
        == "NOT_FOUND"
    )
    team_jobs = "query($t: ID!) { jobs(filter: {teamId: $t}) { totalCount } }"
    assert await code_of(stranger, team_jobs, {"t": team_id}) == "NOT_FOUND"
    titled = 'mutation($id: ID!) { updateAsset(id: $id, title: "ours") { title } }'
    assert (await user.data(titled, {"id": asset_id}))["updateAsset"]["title"] == "ours"  # team owner edits
    assert await code_of(reader, titled, {"id": asset_id}) == "FORBIDDEN"  # team viewer reads only
    cancel = "mutation($id: ID!) { cancelJob(id: $id) { id } }"
    assert await code_of(reader, cancel, {"id": job["id"]}) == "FORBIDDEN"
    assert await code_of(user, cancel, {"id": job["id"]}) == "CONFLICT"  # allowed, but already finished


async def test_team_viewers_and_outsiders_cannot_generate_into_a_team(
    user: StudioClient, make_client: MakeClient, stranger: StudioClient
) -> None:
    team_id = await create_team(user)
    reader = await make_client()
    await join(user, team_id, reader, "VIEWER")
    document = "mutation($input: GenerateTextInput!) { generateText(input: $input) { id } }"
    values = {"input": {"prompt": "into the team", "teamId": team_id}}
    assert await code_of(reader, document, values) == "FORBIDDEN"
    assert await code_of(stranger, document, values) == "NOT_FOUND"
    assert (await reader.data("{ jobs { totalCount } }"))["jobs"]["totalCount"] == 0


async def test_team_usage_is_for_owners_and_admins(
    user: StudioClient, make_client: MakeClient, admin: StudioClient
) -> None:
    team_id = await create_team(user)
    editor = await make_client()
    await join(user, team_id, editor, "EDITOR")
    await submit(editor, "generateText", {"prompt": "team words", "maxOutputTokens": 16, "teamId": team_id})
    await submit(editor, "generateText", {"prompt": "my own words", "maxOutputTokens": 16})
    await wait_for_jobs(editor)
    span = around_now()
    field = "query($id: ID!, $from: DateTime!, $to: DateTime!) { team(id: $id) { usage(from: $from, to: $to) { texts } } }"
    report = """query($team: ID!, $from: DateTime!, $to: DateTime!) {
      usage(query: {from: $from, to: $to, teamId: $team, groupBy: [TEAM]}) { rows { key } totals { texts } }
    }"""
    for reader in (user, admin):
        assert (await reader.data(field, {"id": team_id, **span}))["team"]["usage"]["texts"] == 1
        grouped = (await reader.data(report, {"team": team_id, **span}))["usage"]
        assert grouped["totals"]["texts"] == 1
        assert grouped["rows"][0]["key"] == [raw_id(team_id)]
    assert await code_of(editor, field, {"id": team_id, **span}) == "FORBIDDEN"
    assert await code_of(editor, report, {"team": team_id, **span}) == "FORBIDDEN"


async def test_email_and_usage_are_for_the_person_their_team_owners_and_admins(
    user: StudioClient, make_client: MakeClient
) -> None:
    team_id = await create_team(user)
    editor, reader = await make_client(), await make_client()
    editor_who = await me(editor)
    await join(user, team_id, editor, "EDITOR")
    await join(user, team_id, reader, "VIEWER")
    span = around_now()
    listing = """query($id: ID!) { team(id: $id) { members { edges { node { user { id email } } } } } }"""
    emails = {
        e["node"]["user"]["id"]: e["node"]["user"]["email"]
        for e in (await user.data(listing, {"id": team_id}))["team"]["members"]["edges"]
    }
    assert emails[editor_who["id"]] == editor_who["email"]
    body = await reader.execute(listing, {"id": team_id})
    assert_error(body["errors"][0], "FORBIDDEN")
    assert editor_who["email"] not in str(body)
    usage = "query($u: ID!, $from: DateTime!, $to: DateTime!) { usage(query: {from: $from, to: $to, userId: $u}) { totals { jobs } } }"
    assert (await user.data(usage, {"u": editor_who["id"], **span}))["usage"]["totals"]["jobs"] == 0
    assert await code_of(reader, usage, {"u": editor_who["id"], **span}) == "FORBIDDEN"
    owner_id = (await me(user))["id"]
    assert await code_of(editor, usage, {"u": owner_id, **span}) == "FORBIDDEN"  # members do not see owners'


async def test_team_changes_are_audited(
    user: StudioClient, make_client: MakeClient, admin: StudioClient
) -> None:
    team_id = await create_team(user)
    member = await make_client()
    member_id = await join(user, team_id, member, "VIEWER")
    await user.data(SET_ROLE, {"teamId": team_id, "userId": member_id, "role": "EDITOR"})
    await user.data(REMOVE, {"teamId": team_id, "userId": member_id})
    await code_of(member, REMOVE, {"teamId": team_id, "userId": member_id})
    owner_id = (await me(user))["id"]
    audit = """query($actor: ID!) { auditLog(actorId: $actor, first: 20) { edges { node { action target outcome requestId details } } } }"""
    events = [e["node"] for e in (await admin.data(audit, {"actor": owner_id}))["auditLog"]["edges"]]
    actions = [(e["action"], e["outcome"]) for e in events]
    for wanted in ("team.create", "team.member.add", "team.member.role", "team.member.remove"):
        assert (wanted, "ok") in actions, actions
    assert all(e["requestId"] for e in events)
    denied = [e["node"] for e in (await admin.data(audit, {"actor": member_id}))["auditLog"]["edges"]]
    assert [(e["action"], e["outcome"]) for e in denied] == [("team.member.remove", "denied")]


async def test_a_team_member_follows_a_team_job_live(user: StudioClient, make_client: MakeClient) -> None:
    team_id = await create_team(user)
    reader = await make_client()
    await join(user, team_id, reader, "VIEWER")
    job = await submit(
        user, "generateText", {"prompt": "live for the team", "maxOutputTokens": 16, "teamId": team_id}
    )
    async with reader.socket() as socket:
        await socket.ack()
        op = await socket.subscribe(
            "subscription($id: ID!) { jobProgress(id: $id) { job { id status } } }", {"id": job["id"]}
        )
        messages = await socket.messages(op)
    statuses = [m["payload"]["data"]["jobProgress"]["job"]["status"] for m in messages if m["type"] == "next"]
    assert statuses[-1] == "SUCCEEDED" and messages[-1]["type"] == "complete"
