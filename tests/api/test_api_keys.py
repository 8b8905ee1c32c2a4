"""API keys as a script meets them, over real HTTP and WebSocket: made once, used as X-API-Key, scoped,
expiring, revocable, recorded at most once a minute, and stored only as a hash."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.api.helpers import receive, submit
from tests.conftest import MakeClient, assert_error
from tests.support.client import KeyClient, StudioClient, Subscriptions
from tests.support.server import StudioProcess

FIELDS = "id name prefix scopes createdAt lastUsedAt expiresAt revokedAt"
CREATE = f"""mutation($name: String!, $scopes: [String!], $expiresAt: DateTime) {{
  createApiKey(name: $name, scopes: $scopes, expiresAt: $expiresAt) {{ secret apiKey {{ {FIELDS} }} }}
}}"""
REVOKE = f"mutation($id: ID!) {{ revokeApiKey(id: $id) {{ {FIELDS} }} }}"
LIST = f"{{ apiKeys {{ {FIELDS} }} }}"
ME = "{ me { id } }"
GENERATE = 'mutation { generateText(input: {prompt: "a key at work", maxOutputTokens: 16}) { id } }'
SET_STATUS = (
    "mutation($userId: ID!, $status: UserStatus!) { setUserStatus(userId: $userId, status: $status) { id } }"
)


async def create_key(
    client: StudioClient, name: str = "a script", **variables: Any
) -> tuple[str, dict[str, Any]]:
    created = (await client.data(CREATE, {"name": name, **variables}))["createApiKey"]
    return str(created["secret"]), dict(created["apiKey"])


async def key_client(client: StudioClient, **variables: Any) -> KeyClient:
    secret, _ = await create_key(client, **variables)
    return KeyClient(client.base_url, secret)


async def listed(client: StudioClient, key_id: str) -> dict[str, Any]:
    (key,) = [key for key in (await client.data(LIST))["apiKeys"] if key["id"] == key_id]
    return dict(key)


async def refusal(client: StudioClient, document: str = ME) -> dict[str, Any]:
    error = await client.error(document)
    assert_error(error, error["extensions"]["code"])
    return error


# ------------------------------------------------------------------ creating and listing


async def test_the_secret_is_shown_once_and_never_listed(user: StudioClient) -> None:
    response = await user.post(CREATE, {"name": "nightly renders"})
    created = response.json()["data"]["createApiKey"]
    secret, key = created["secret"], created["apiKey"]
    assert secret.startswith(key["prefix"] + "_") and key["prefix"].startswith("gms_")
    assert len(secret) >= len(key["prefix"]) + 40
    assert key["name"] == "nightly renders" and key["scopes"] == ["read", "generate"]
    assert key["lastUsedAt"] is None and key["revokedAt"] is None
    assert datetime.fromisoformat(key["expiresAt"]) > datetime.now(UTC) + timedelta(days=300)
    listing = await user.post(LIST)
    assert key in listing.json()["data"]["apiKeys"]
    assert secret not in listing.text and secret[len(key["prefix"]) + 1 :] not in listing.text


async def test_a_key_acts_as_its_owner_over_http(user: StudioClient) -> None:
    keyed = await key_client(user)
    owner = (await user.data(ME))["me"]["id"]
    assert (await keyed.data(ME))["me"]["id"] == owner
    job = (await keyed.data(GENERATE))["generateText"]
    assert (await user.data("query($id: ID!) { job(id: $id) { id } }", {"id": job["id"]}))["job"]


async def test_a_key_opens_a_socket_in_connection_init_or_the_upgrade_header(user: StudioClient) -> None:
    keyed = await key_client(user)
    owner = (await user.data(ME))["me"]["id"]
    async with keyed.socket() as socket:
        assert (await socket.ack())["type"] == "connection_ack"
        await expect_me(socket, owner)
    url = user.base_url.replace("http", "ws", 1) + "/v1/graphql"
    async with websockets.connect(
        url,
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        additional_headers={"X-API-Key": keyed.secret},
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        socket = Subscriptions(ws)
        assert (await socket.ack())["type"] == "connection_ack"
        await expect_me(socket, owner)


async def expect_me(socket: Subscriptions, owner: str) -> None:
    op = await socket.subscribe(ME)
    first = (await socket.messages(op))[0]
    assert first["type"] == "next" and first["payload"]["data"]["me"]["id"] == owner, first


# ------------------------------------------------------------------ scopes


@pytest.mark.parametrize(
    ("scopes", "document", "missing"),
    [
        (["read"], GENERATE, "generate"),
        (["read", "write"], 'mutation { upscaleImage(input: {assetId: "QXNzZXQ6eA=="}) { id } }', "generate"),
        (["generate"], ME, "read"),
        (["generate"], "{ jobs { totalCount } }", "read"),
        (["read", "generate"], 'mutation { cancelJob(id: "Sm9iOng=") { id } }', "write"),
        (["write"], "{ apiKeys { id } }", "read"),
    ],
    ids=[
        "read-cannot-generate",
        "no-upscale",
        "generate-cannot-ask-me",
        "generate-cannot-list",
        "no-write",
        "write-cannot-read",
    ],
)
async def test_a_key_cannot_do_what_its_scopes_do_not_allow(
    user: StudioClient, scopes: list[str], document: str, missing: str
) -> None:
    keyed = await key_client(user, scopes=scopes)
    jobs_before = (await user.data("{ jobs { totalCount } }"))["jobs"]["totalCount"]
    error = await refusal(keyed, document)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert f"'{missing}'" in error["message"] and error["extensions"]["missingScopes"] == [missing]
    assert (await user.data("{ jobs { totalCount } }"))["jobs"]["totalCount"] == jobs_before


async def test_a_generate_only_key_generates(user: StudioClient) -> None:
    keyed = await key_client(user, scopes=["generate"])
    assert (await keyed.data(GENERATE))["generateText"]["id"]


async def test_a_key_without_read_cannot_subscribe(user: StudioClient) -> None:
    keyed = await key_client(user, scopes=["generate"])
    async with keyed.socket() as socket:
        assert (await socket.ack())["type"] == "connection_ack"
        op = await socket.subscribe("subscription { myJobs { job { id } } }")
        message = await receive(socket)
    assert message["id"] == op and message["type"] == "error", message
    assert_error(message["payload"][0], "FORBIDDEN")
    assert "'read'" in message["payload"][0]["message"]


@pytest.mark.parametrize("document", [CREATE, REVOKE], ids=["create", "revoke"])
async def test_a_key_cannot_create_or_revoke_keys(user: StudioClient, document: str) -> None:
    secret, key = await create_key(user, scopes=["read", "write", "generate"])
    keyed = KeyClient(user.base_url, secret)
    error = await keyed.error(document, {"name": "wider", "scopes": ["generate"], "id": key["id"]})
    assert_error(error, "FORBIDDEN")
    assert "sign in with a token" in error["message"]
    assert (await listed(user, key["id"]))["revokedAt"] is None


async def test_viewers_make_read_keys_only(make_client: MakeClient) -> None:
    viewer = await make_client("VIEWER")
    _, key = await create_key(viewer)
    assert key["scopes"] == ["read"]
    error = await viewer.error(CREATE, {"name": "x", "scopes": ["read", "generate"]})
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "scopes"


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("not-a-key", "malformed"),
        ("gms_0123456789abcdef0123456_" + "A" * 43, "unknown key"),
    ],
    ids=["malformed", "unknown"],
)
async def test_an_unknown_or_malformed_key_is_unauthenticated(
    studio: StudioProcess, secret: str, reason: str
) -> None:
    error = await refusal(KeyClient(studio.base_url, secret))
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and reason in error["message"]


async def test_a_wrong_secret_for_a_real_key_is_unknown(user: StudioClient) -> None:
    secret, _ = await create_key(user)
    gms, key_id, random_part = secret.split("_", 2)
    error = await refusal(KeyClient(user.base_url, f"{gms}_{key_id}_{random_part[::-1]}"))
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and "unknown key" in error["message"]


async def test_a_token_and_a_key_together_are_refused(user: StudioClient) -> None:
    secret, _ = await create_key(user)
    async with httpx.AsyncClient(base_url=user.base_url) as http:
        response = await http.post(
            "/v1/graphql", json={"query": ME}, headers={**user.headers, "X-API-Key": secret}
        )
    (error,) = response.json()["errors"]
    assert_error(error, "UNAUTHENTICATED")
    assert "not both" in error["message"]


async def test_a_revoked_key_stops_working_at_once(user: StudioClient) -> None:
    secret, key = await create_key(user)
    keyed = KeyClient(user.base_url, secret)
    assert (await keyed.data(ME))["me"]  # cached as valid in the server now
    revoked = (await user.data(REVOKE, {"id": key["id"]}))["revokeApiKey"]
    assert revoked["revokedAt"] is not None
    error = await refusal(keyed)
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and "revoked" in error["message"]
    async with keyed.socket() as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.ack()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    again = (await user.data(REVOKE, {"id": key["id"]}))["revokeApiKey"]
    assert again["revokedAt"] == revoked["revokedAt"]


async def test_a_key_stops_working_when_it_expires(user: StudioClient) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=2)
    keyed = await key_client(user, expiresAt=soon.isoformat())
    assert (await keyed.data(ME))["me"]
    deadline = time.monotonic() + 15
    while True:  # polled, bounded: the key works until its moment, then never again
        body = await keyed.execute(ME)
        if body.get("errors"):
            break
        assert time.monotonic() < deadline, "the key still works long after it expired"
        await asyncio.sleep(0.2)
    assert datetime.now(UTC) >= soon
    (error,) = body["errors"]
    assert_error(error, "UNAUTHENTICATED")
    assert "expired" in error["message"]


async def test_a_blocked_owners_keys_are_refused(admin: StudioClient, make_client: MakeClient) -> None:
    owner = await make_client()
    keyed = await key_client(owner)
    assert (await keyed.data(ME))["me"]
    owner_id = (await owner.data(ME))["me"]["id"]
    await admin.data(SET_STATUS, {"userId": owner_id, "status": "BLOCKED"})
    error = await refusal(keyed)
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and "blocked" in error["message"]


async def test_pending_users_cannot_make_keys(make_client: MakeClient) -> None:
    pending = await make_client(status="PENDING")
    error = await pending.error(CREATE, {"name": "early"})
    assert_error(error, "FORBIDDEN")
    assert "approval" in error["message"]


# ------------------------------------------------------------------ who sees a key


async def test_a_stranger_cannot_see_or_revoke_someone_elses_key(
    user: StudioClient, stranger: StudioClient, admin: StudioClient
) -> None:
    secret, key = await create_key(user)
    node = "query($id: ID!) { node(id: $id) { id ... on ApiKey { name } } }"
    assert_error(await stranger.error(REVOKE, {"id": key["id"]}), "NOT_FOUND")
    assert_error(await stranger.error(node, {"id": key["id"]}), "NOT_FOUND")
    assert key["id"] not in json.dumps((await stranger.data(LIST))["apiKeys"])
    assert (await KeyClient(user.base_url, secret).data(ME))["me"]  # still working
    assert (await user.data(node, {"id": key["id"]}))["node"]["name"] == key["name"]
    assert (await admin.data(node, {"id": key["id"]}))["node"]["name"] == key["name"]
    assert (await admin.data(REVOKE, {"id": key["id"]}))["revokeApiKey"]["revokedAt"]


async def test_a_user_holds_at_most_ten_active_keys(make_client: MakeClient) -> None:
    owner = await make_client()
    keys = [(await create_key(owner, name=f"key {i}"))[1] for i in range(10)]
    error = await owner.error(CREATE, {"name": "one too many"})
    assert_error(error, "CONFLICT")
    assert error["extensions"]["limit"] == 10
    await owner.data(REVOKE, {"id": keys[0]["id"]})
    assert (await create_key(owner, name="in its place"))[0]
    assert len((await owner.data(LIST))["apiKeys"]) == 11


# ------------------------------------------------------------------ lastUsedAt, storage, audit


async def test_last_used_is_recorded_at_most_once_a_minute(user: StudioClient) -> None:
    secret, key = await create_key(user)
    keyed = KeyClient(user.base_url, secret)
    assert (await listed(user, key["id"]))["lastUsedAt"] is None
    await keyed.data(ME)
    first = (await listed(user, key["id"]))["lastUsedAt"]
    assert first is not None
    again = await keyed.post("{ __typename }")
    assert again.headers["x-docstore-calls"] == "0"  # no read, no write: the key is cached and was recorded
    await keyed.data(ME)
    assert (await listed(user, key["id"]))["lastUsedAt"] == first


async def test_the_store_keeps_a_hash_never_the_secret(
    user: StudioClient, studio: StudioProcess, studio_dir: Path
) -> None:
    from backends.docstore.sqlite import SqliteDocStore
    from domain.apikeys import API_KEYS
    from schema.nodes import split_id

    secret, key = await create_key(user)
    await KeyClient(user.base_url, secret).data(ME)
    docs = SqliteDocStore(studio_dir / "studio.db")
    try:
        stored = await docs.get(API_KEYS, split_id(key["id"])[1])
    finally:
        await docs.close()
    assert stored is not None
    assert stored.data["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    random_part = secret.split("_", 2)[2]
    assert random_part not in json.dumps(stored.data)
    stored_files = await asyncio.to_thread(lambda: [*studio_dir.glob("studio.db*"), studio.log_path])
    for path in stored_files:
        assert random_part.encode() not in await asyncio.to_thread(path.read_bytes), path


async def test_creating_revoking_and_refused_keys_are_audited(
    user: StudioClient, admin: StudioClient
) -> None:
    secret, key = await create_key(user)
    await user.data(REVOKE, {"id": key["id"]})
    await KeyClient(user.base_url, secret).execute(ME)
    raw = __import__("base64").b64decode(key["id"]).decode().split(":", 1)[1]
    audit = """query($action: String) { auditLog(action: $action, first: 50) {
      edges { node { action target outcome requestId ip details actor { id } } } } }"""
    owner = (await user.data(ME))["me"]["id"]
    for action in ("apikey.create", "apikey.revoke"):
        events = [e["node"] for e in (await admin.data(audit, {"action": action}))["auditLog"]["edges"]]
        (event,) = [e for e in events if e["target"] == raw]
        assert event["outcome"] == "ok" and event["actor"]["id"] == owner
        assert event["requestId"] and event["ip"] == "127.0.0.1"
    refused = [
        e["node"] for e in (await admin.data(audit, {"action": "signin.refused"}))["auditLog"]["edges"]
    ]
    assert any(e["details"].get("key") == raw and "revoked" in e["details"]["reason"] for e in refused)
    assert secret not in json.dumps(refused)


async def test_a_submitted_job_from_a_key_is_the_owners(user: StudioClient) -> None:
    keyed = await key_client(user)
    job = await submit(keyed, "generateText", {"prompt": "owned", "maxOutputTokens": 16}, "id owner { id }")
    assert job["owner"]["id"] == (await user.data(ME))["me"]["id"]


async def test_a_key_revoked_while_its_socket_is_open_starts_nothing_more(user: StudioClient) -> None:
    secret, key = await create_key(user)
    keyed = KeyClient(user.base_url, secret)
    owner = (await user.data(ME))["me"]["id"]
    async with keyed.socket() as socket:
        assert (await socket.ack())["type"] == "connection_ack"
        await expect_me(socket, owner)
        await user.data(REVOKE, {"id": key["id"]})
        op = await socket.subscribe(ME)
        message = await receive(socket)
    assert message["id"] == op and message["type"] == "error", message
    assert_error(message["payload"][0], "UNAUTHENTICATED")
    assert "revoked" in message["payload"][0]["message"]
