"""Administration over HTTP: approving, blocking, roles, ending sessions, and the audit log."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from tests.conftest import MakeClient, assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess, mint_token

ME = "{ me { id status role } }"
MODELS = "{ models { id } }"
SET_STATUS = "mutation($userId: ID!, $status: UserStatus!) { setUserStatus(userId: $userId, status: $status) { id status } }"
SET_ROLE = "mutation($userId: ID!, $role: Role!) { setUserRole(userId: $userId, role: $role) { id role } }"
REVOKE = "mutation($userId: ID!) { revokeSessions(userId: $userId) { id } }"
AUDIT = """query($action: String, $actorId: ID, $first: Int, $after: String) {
  auditLog(action: $action, actorId: $actorId, first: $first, after: $after) {
    totalCount
    edges { cursor node { id action target outcome requestId ip at details actor { id } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def email() -> str:
    return f"managed-{uuid.uuid4().hex[:12]}@example.com"


async def user_id(client: StudioClient) -> str:
    return str((await client.data(ME))["me"]["id"])


async def code_of(client: StudioClient, document: str, variables: dict[str, object] | None = None) -> str:
    body = await client.execute(document, variables)
    assert body.get("errors"), body
    error = body["errors"][0]
    assert_error(error, error["extensions"]["code"])
    return str(error["extensions"]["code"])


async def test_approving_a_pending_user_lets_their_token_in_at_once(
    admin: StudioClient, make_client: MakeClient
) -> None:
    pending = await make_client(status="PENDING")
    assert await code_of(pending, MODELS) == "FORBIDDEN"
    target = await user_id(pending)
    changed = await admin.data(SET_STATUS, {"userId": target, "status": "ACTIVE"})
    assert changed["setUserStatus"] == {"id": target, "status": "ACTIVE"}
    assert (await pending.data(MODELS))["models"]


async def test_blocking_refuses_the_existing_token_at_once(
    admin: StudioClient, make_client: MakeClient
) -> None:
    victim = await make_client()
    assert (await victim.data(MODELS))["models"]  # cached as ACTIVE in the server now
    await admin.data(SET_STATUS, {"userId": await user_id(victim), "status": "BLOCKED"})
    assert await code_of(victim, MODELS) in ("UNAUTHENTICATED", "FORBIDDEN")
    assert await code_of(victim, ME) == "UNAUTHENTICATED"  # the token itself is revoked


async def test_revoking_sessions_refuses_old_tokens_but_not_new_ones(
    admin: StudioClient, make_client: MakeClient, studio: StudioProcess, studio_dir: Path
) -> None:
    address = email()
    victim = await make_client(email=address)
    target = await user_id(victim)
    await admin.data(REVOKE, {"userId": target})
    body = await victim.execute(ME)
    assert_error(body["errors"][0], "UNAUTHENTICATED")
    assert "revoked" in body["errors"][0]["message"]
    await asyncio.sleep(1.05)  # revocation covers its whole second
    fresh = StudioClient(studio.base_url, await mint_token(studio_dir, address))
    assert (await fresh.data(ME))["me"]["id"] == target


async def test_roles_change_and_take_effect(admin: StudioClient, make_client: MakeClient) -> None:
    person = await make_client()
    target = await user_id(person)
    assert (await admin.data(SET_ROLE, {"userId": target, "role": "VIEWER"}))["setUserRole"][
        "role"
    ] == "VIEWER"
    assert await code_of(person, 'mutation { generateText(input: {prompt: "hi"}) { id } }') == "FORBIDDEN"
    assert (await admin.data(SET_ROLE, {"userId": target, "role": "ADMIN"}))["setUserRole"]["role"] == "ADMIN"
    assert (await person.data("{ users(first: 1) { id } }"))["users"]


async def test_an_admin_cannot_demote_or_block_themselves(admin: StudioClient) -> None:
    me = await user_id(admin)
    assert await code_of(admin, SET_ROLE, {"userId": me, "role": "USER"}) == "CONFLICT"
    assert await code_of(admin, SET_STATUS, {"userId": me, "status": "BLOCKED"}) == "CONFLICT"
    assert (await admin.data(ME))["me"]["role"] == "ADMIN"


async def test_unknown_users_are_not_found(admin: StudioClient) -> None:
    missing = "VXNlcjpub2JvZHk="  # User:nobody
    assert await code_of(admin, REVOKE, {"userId": missing}) == "NOT_FOUND"
    assert await code_of(admin, SET_ROLE, {"userId": missing, "role": "USER"}) == "NOT_FOUND"


async def test_non_admins_are_refused_and_audited_as_denied(
    admin: StudioClient, user: StudioClient, viewer: StudioClient, anonymous: StudioClient
) -> None:
    target = await user_id(viewer)
    assert await code_of(user, SET_ROLE, {"userId": target, "role": "ADMIN"}) == "FORBIDDEN"
    assert await code_of(viewer, "{ auditLog { totalCount } }") == "FORBIDDEN"
    assert await code_of(anonymous, REVOKE, {"userId": target}) == "UNAUTHENTICATED"
    events = (await admin.data(AUDIT, {"actorId": await user_id(user)}))["auditLog"]["edges"]
    assert [(e["node"]["action"], e["node"]["outcome"]) for e in events] == [("user.role.set", "denied")]


async def test_audit_log_records_actor_target_outcome_and_request_id(
    admin: StudioClient, make_client: MakeClient
) -> None:
    person = await make_client(status="PENDING")
    target = await user_id(person)
    response = await admin.post(SET_STATUS, {"userId": target, "status": "ACTIVE"})
    assert not response.json().get("errors"), response.text
    admin_id = await user_id(admin)
    log = (await admin.data(AUDIT, {"action": "user.status.set", "actorId": admin_id, "first": 1}))[
        "auditLog"
    ]
    event = log["edges"][0]["node"]
    assert event["actor"] == {"id": admin_id}
    assert event["outcome"] == "ok"
    assert event["requestId"] == response.headers["x-request-id"]
    assert event["ip"]
    assert event["details"]["status"] == "ACTIVE"
    assert event["details"]["before"]["status"] == "PENDING"


async def test_refused_sign_ins_are_audited(admin: StudioClient, studio: StudioProcess) -> None:
    response = await StudioClient(studio.base_url, "not-a-token").post(ME)
    log = (await admin.data(AUDIT, {"action": "signin.refused", "first": 20}))["auditLog"]
    ids = [edge["node"]["requestId"] for edge in log["edges"]]
    assert response.headers["x-request-id"] in ids


async def test_audit_log_pages_newest_first(admin: StudioClient, make_client: MakeClient) -> None:
    person = await make_client()
    target = await user_id(person)
    for _ in range(3):
        await admin.data(SET_ROLE, {"userId": target, "role": "USER"})
    admin_id = await user_id(admin)
    seen: list[str] = []
    after = None
    while True:
        log = (
            await admin.data(
                AUDIT, {"actorId": admin_id, "action": "user.role.set", "first": 2, "after": after}
            )
        )["auditLog"]
        seen += [edge["node"]["at"] for edge in log["edges"]]
        if not log["pageInfo"]["hasNextPage"]:
            break
        after = log["pageInfo"]["endCursor"]
    assert len(seen) == log["totalCount"] >= 3
    assert seen == sorted(seen, reverse=True)


async def test_users_lists_by_status_and_pages(admin: StudioClient, make_client: MakeClient) -> None:
    pending = await make_client(status="PENDING")
    target = await user_id(pending)
    listed = (await admin.data("{ users(status: PENDING, first: 100) { id status } }"))["users"]
    assert {"id": target, "status": "PENDING"} in listed
    first = (await admin.data("{ users(first: 2) { id } }"))["users"]
    after = first[-1]["id"]
    rest = (
        await admin.data("query($after: String) { users(first: 2, after: $after) { id } }", {"after": after})
    )["users"]
    assert not {u["id"] for u in first} & {u["id"] for u in rest}


async def test_bad_admin_input_is_refused(admin: StudioClient) -> None:
    assert (
        await code_of(admin, SET_STATUS, {"userId": "not a global id!", "status": "ACTIVE"})
        == "BAD_USER_INPUT"
    )
    assert (
        await code_of(admin, SET_STATUS, {"userId": "VXNlcjpub2JvZHk=", "status": "GONE"}) == "BAD_USER_INPUT"
    )
    assert await code_of(admin, "{ users(first: 1000) { id } }") == "BAD_USER_INPUT"
    assert await code_of(admin, '{ auditLog(after: "garbage") { totalCount } }') == "BAD_USER_INPUT"
