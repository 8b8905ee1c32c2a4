"""Who may do what: every root field against every kind of caller, over HTTP and WebSocket.

EXPECTED is the one table of outcomes; a root field added to the schema without a row there
fails `test_every_root_field_has_a_row_in_the_table`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.api.helpers import around_now, new_client, receive, run, submit, wait_for_jobs
from tests.conftest import assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess

OK = "OK"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
BAD_USER_INPUT = "BAD_USER_INPUT"
CONFLICT = "CONFLICT"

ACTORS = (
    "anonymous",
    "garbage_token",
    "forged_token",
    "pending",
    "blocked",
    "viewer",
    "stranger",
    "admin",
    "owner",
)
SIGNED_OUT = {"anonymous": UNAUTHENTICATED, "garbage_token": UNAUTHENTICATED, "forged_token": UNAUTHENTICATED}
NOT_APPROVED = {"pending": FORBIDDEN, "blocked": FORBIDDEN}
REASONS = {"pending": "approval", "blocked": "blocked"}


def row(*, viewer: str, stranger: str, admin: str, owner: str) -> dict[str, str]:
    """Signed-out callers and unapproved accounts are refused everywhere except `me`."""
    return {
        **SIGNED_OUT,
        **NOT_APPROVED,
        "viewer": viewer,
        "stranger": stranger,
        "admin": admin,
        "owner": owner,
    }


# Every id-taking field targets the owner's objects: a finished text job, a finished image asset,
# the owner's user id. "stranger" and "viewer" are other people; "admin" may read everyone's.
EXPECTED: dict[str, dict[str, str]] = {
    # Query
    "node": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "me": {
        **SIGNED_OUT,
        "pending": OK,
        "blocked": OK,
        "viewer": OK,
        "stranger": OK,
        "admin": OK,
        "owner": OK,
    },
    "models": row(viewer=OK, stranger=OK, admin=OK, owner=OK),
    "asset": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "assets": row(viewer=OK, stranger=OK, admin=OK, owner=OK),
    "job": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "jobs": row(viewer=OK, stranger=OK, admin=OK, owner=OK),
    "usage": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=OK),  # of the owner's userId
    # Mutation
    "generateImage": row(viewer=FORBIDDEN, stranger=OK, admin=OK, owner=OK),
    "generateVideo": row(viewer=FORBIDDEN, stranger=OK, admin=OK, owner=OK),
    "generateText": row(viewer=FORBIDDEN, stranger=OK, admin=OK, owner=OK),
    "upscaleImage": row(viewer=FORBIDDEN, stranger=BAD_USER_INPUT, admin=OK, owner=OK),
    "cancelJob": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=CONFLICT, owner=CONFLICT),  # job finished
    "updateAsset": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    # Administration (the mutations target a bystander, so no actor's own token is revoked)
    "users": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    "auditLog": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    "setUserStatus": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    "setUserRole": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    "revokeSessions": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    # Subscription
    "jobProgress": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "myJobs": row(viewer=OK, stranger=OK, admin=OK, owner=OK),
    # Workflows (the owner's; deleteWorkflow targets a second one, and deleting twice is harmless)
    "workflow": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "workflows": row(viewer=OK, stranger=OK, admin=OK, owner=OK),
    "workflowRun": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "createWorkflow": row(viewer=FORBIDDEN, stranger=OK, admin=OK, owner=OK),
    "updateWorkflow": row(viewer=FORBIDDEN, stranger=NOT_FOUND, admin=OK, owner=OK),
    "cloneWorkflow": row(viewer=FORBIDDEN, stranger=NOT_FOUND, admin=OK, owner=OK),
    "deleteWorkflow": row(viewer=FORBIDDEN, stranger=NOT_FOUND, admin=OK, owner=OK),
    "runWorkflow": row(viewer=FORBIDDEN, stranger=NOT_FOUND, admin=OK, owner=OK),
    "workflowRunProgress": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
}


@dataclass
class World:
    """The owner's objects and a client per actor, made once for the module."""

    clients: dict[str, StudioClient]
    owner_id: str
    job_id: str
    asset_id: str
    bystander_id: str
    workflow_id: str = ""
    doomed_workflow_id: str = ""
    run_id: str = ""

    def ids(self, kind: str) -> str:
        return {
            "job": self.job_id,
            "asset": self.asset_id,
            "user": self.owner_id,
            "bystander": self.bystander_id,
            "workflow": self.workflow_id,
            "doomed_workflow": self.doomed_workflow_id,
            "run": self.run_id,
        }[kind]


@dataclass(frozen=True)
class Operation:
    document: str
    variables: Callable[[World], dict[str, Any]] = field(default=lambda world: {})
    quiet: bool = False  # a subscription that sends nothing until something changes

    @property
    def is_subscription(self) -> bool:
        return self.document.lstrip().startswith("subscription")


def _on(kind: str, name: str = "id") -> Callable[[World], dict[str, Any]]:
    return lambda world: {name: world.ids(kind)}


SPAN = 'from: "2000-01-01T00:00:00Z", to: "2000-12-31T00:00:00Z"'
WORKFLOW_INPUT = '{name: "authorized?", nodes: [{id: "t", kind: TEXT, input: {prompt: "hi", maxOutputTokens: 16}}], edges: []}'
OPERATIONS: dict[str, Operation] = {
    "node": Operation("query($id: ID!) { node(id: $id) { id } }", _on("job")),
    "me": Operation("{ me { id status } }"),
    "models": Operation("{ models { id } }"),
    "asset": Operation("query($id: ID!) { asset(id: $id) { id } }", _on("asset")),
    "assets": Operation("{ assets { totalCount } }"),
    "job": Operation("query($id: ID!) { job(id: $id) { id } }", _on("job")),
    "jobs": Operation("{ jobs { totalCount } }"),
    "usage": Operation(
        f"query($userId: ID!) {{ usage(query: {{{SPAN}, userId: $userId}}) {{ totals {{ jobs }} }} }}",
        _on("user", "userId"),
    ),
    "generateImage": Operation('mutation { generateImage(input: {prompt: "authorized?"}) { id } }'),
    "generateVideo": Operation(
        'mutation { generateVideo(input: {prompt: "authorized?", durationSeconds: 4}) { id } }'
    ),
    "generateText": Operation(
        'mutation { generateText(input: {prompt: "authorized?", maxOutputTokens: 16}) { id } }'
    ),
    "upscaleImage": Operation(
        "mutation($id: ID!) { upscaleImage(input: {assetId: $id}) { id } }", _on("asset")
    ),
    "cancelJob": Operation("mutation($id: ID!) { cancelJob(id: $id) { id } }", _on("job")),
    "updateAsset": Operation(
        "mutation($id: ID!) { updateAsset(id: $id, favorite: true) { id } }", _on("asset")
    ),
    "users": Operation("{ users(first: 5) { id } }"),
    "auditLog": Operation("{ auditLog(first: 5) { totalCount } }"),
    "setUserStatus": Operation(
        "mutation($userId: ID!) { setUserStatus(userId: $userId, status: ACTIVE) { id } }",
        _on("bystander", "userId"),
    ),
    "setUserRole": Operation(
        "mutation($userId: ID!) { setUserRole(userId: $userId, role: USER) { id } }",
        _on("bystander", "userId"),
    ),
    "revokeSessions": Operation(
        "mutation($userId: ID!) { revokeSessions(userId: $userId) { id } }", _on("bystander", "userId")
    ),
    "jobProgress": Operation("subscription($id: ID!) { jobProgress(id: $id) { job { id } } }", _on("job")),
    "myJobs": Operation("subscription { myJobs { job { id } } }", quiet=True),
    "workflow": Operation("query($id: ID!) { workflow(id: $id) { id } }", _on("workflow")),
    "workflows": Operation("{ workflows { id } }"),
    "workflowRun": Operation("query($id: ID!) { workflowRun(id: $id) { id } }", _on("run")),
    "createWorkflow": Operation(f"mutation {{ createWorkflow(input: {WORKFLOW_INPUT}) {{ id }} }}"),
    "updateWorkflow": Operation(
        f"mutation($id: ID!) {{ updateWorkflow(id: $id, input: {WORKFLOW_INPUT}) {{ id }} }}", _on("workflow")
    ),
    "cloneWorkflow": Operation("mutation($id: ID!) { cloneWorkflow(id: $id) { id } }", _on("workflow")),
    "deleteWorkflow": Operation("mutation($id: ID!) { deleteWorkflow(id: $id) }", _on("doomed_workflow")),
    "runWorkflow": Operation("mutation($id: ID!) { runWorkflow(id: $id) { id } }", _on("workflow")),
    "workflowRunProgress": Operation(
        "subscription($id: ID!) { workflowRunProgress(id: $id) { id } }", _on("run")
    ),
}
ROOT_FIELDS = """{ __schema {
  queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } }
} }"""


def forged(token: str) -> str:
    """The same claims with a signature that does not match them."""
    header, payload, signature = token.split(".")
    return f"{header}.{payload}.{signature[::-1]}"


@pytest.fixture(scope="module")
def world(studio: StudioProcess, studio_dir: Path) -> World:
    async def build() -> World:
        clients = {
            "anonymous": StudioClient(studio.base_url),
            "garbage_token": StudioClient(studio.base_url, "not-a-token"),
            "pending": await new_client(studio, studio_dir, "pending", status="PENDING"),
            "blocked": await new_client(studio, studio_dir, "blocked", status="BLOCKED"),
            "viewer": await new_client(studio, studio_dir, "viewer", role="VIEWER"),
            "stranger": await new_client(studio, studio_dir, "stranger"),
            "admin": await new_client(studio, studio_dir, "admin", role="ADMIN"),
            "owner": await new_client(studio, studio_dir, "owner"),
        }
        owner = clients["owner"]
        assert owner.token is not None
        clients["forged_token"] = StudioClient(studio.base_url, forged(owner.token))
        job = await submit(owner, "generateText", {"prompt": "the owner's words", "maxOutputTokens": 16})
        image = await submit(owner, "generateImage", {"prompt": "the owner's picture"})
        await wait_for_jobs(owner)
        found = await owner.data(
            "query($id: ID!) { job(id: $id) { assets { id } } me { id } }", {"id": image["id"]}
        )
        bystander = await new_client(studio, studio_dir, "bystander")
        bystander_id = (await bystander.data("{ me { id } }"))["me"]["id"]
        create = f"mutation {{ createWorkflow(input: {WORKFLOW_INPUT}) {{ id }} }}"
        workflow_id, doomed_id = [(await owner.data(create))["createWorkflow"]["id"] for _ in range(2)]
        run_it = "mutation($id: ID!) { runWorkflow(id: $id) { id } }"
        run_id = (await owner.data(run_it, {"id": workflow_id}))["runWorkflow"]["id"]
        await wait_for_jobs(owner)
        return World(
            clients,
            found["me"]["id"],
            job["id"],
            found["job"]["assets"][0]["id"],
            bystander_id,
            workflow_id,
            doomed_id,
            run_id,
        )

    return run(build())


def cases() -> Iterator[Any]:
    for name, expected in EXPECTED.items():
        for actor in ACTORS:
            yield pytest.param(name, actor, expected.get(actor), id=f"{name}-{actor}")


async def http_outcome(
    client: StudioClient, name: str, operation: Operation, world: World
) -> tuple[str, str]:
    body = await client.execute(operation.document, operation.variables(world))
    if body.get("errors"):
        error = body["errors"][0]
        code = error["extensions"]["code"]
        assert_error(error, code)
        assert (body.get("data") or {}).get(name) is None, body
        return str(code), str(error["message"])
    assert body["data"][name] is not None, body
    return OK, ""


async def ws_outcome(client: StudioClient, name: str, operation: Operation, world: World) -> tuple[str, str]:
    """Subscribe on a fresh socket. A refused connection (close 4403 before the ack) is UNAUTHENTICATED.

    For a quiet subscription a quick query on the same socket is the barrier: a refusal is raised
    as the stream starts, so it arrives before the query's answer.
    """
    async with client.socket() as socket:
        try:
            await socket.ack()
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4403, closed
            return UNAUTHENTICATED, closed.rcvd.reason
        op = await socket.subscribe(operation.document, operation.variables(world))
        barrier = await socket.subscribe("query { __typename }")
        barrier_done = False
        while True:
            message = await receive(socket)
            if message.get("id") == barrier and message["type"] == "complete":
                barrier_done = True
            if message.get("id") == op:
                assert message["type"] in ("next", "error"), message
                payload = message["payload"]
                errors = payload if message["type"] == "error" else payload.get("errors")
                if errors:
                    assert_error(errors[0], errors[0]["extensions"]["code"])
                    assert message["type"] == "error" or payload.get("data") is None, message
                    return str(errors[0]["extensions"]["code"]), str(errors[0]["message"])
                assert payload["data"][name] is not None, message
                return OK, ""
            if barrier_done and operation.quiet:
                return OK, ""


@pytest.mark.parametrize(("name", "actor", "expected"), list(cases()))
async def test_root_field_answers_each_kind_of_caller_as_the_table_says(
    world: World, name: str, actor: str, expected: str | None
) -> None:
    assert expected is not None, f"EXPECTED[{name!r}] has no entry for {actor!r}"
    operation = OPERATIONS[name]
    client = world.clients[actor]
    outcome = ws_outcome if operation.is_subscription else http_outcome
    code, message = await outcome(client, name, operation, world)
    assert code == expected, message
    if code == FORBIDDEN and actor in NOT_APPROVED:
        assert REASONS[actor] in message.lower(), "an unapproved user is told why"


async def test_every_root_field_has_a_row_in_the_table(world: World) -> None:
    schema = (await world.clients["owner"].data(ROOT_FIELDS))["__schema"]
    served = {
        item["name"]
        for root in ("queryType", "mutationType", "subscriptionType")
        for item in (schema[root] or {"fields": []})["fields"]
    }
    assert served == set(EXPECTED), {
        "served but missing from EXPECTED": sorted(served - set(EXPECTED)),
        "in EXPECTED but no longer served": sorted(set(EXPECTED) - served),
    }
    assert set(OPERATIONS) == set(EXPECTED)
    assert all(set(outcomes) == set(ACTORS) for outcomes in EXPECTED.values())


@pytest.mark.parametrize(("actor", "status"), [("pending", "PENDING"), ("blocked", "BLOCKED")])
async def test_unapproved_users_still_see_who_they_are_and_their_status(
    world: World, actor: str, status: str
) -> None:
    me = (await world.clients[actor].data("{ me { id status email role } }"))["me"]
    assert me["status"] == status and me["role"] == "USER"
    assert me["email"].startswith(f"{actor}-")


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        ("query($id: ID!) { node(id: $id) { id } }", "job"),
        ("query($id: ID!) { node(id: $id) { id } }", "asset"),
        ("query($id: ID!) { node(id: $id) { id } }", "user"),
        ("query($id: ID!) { job(id: $id) { id } }", "job"),
        ("query($id: ID!) { asset(id: $id) { id } }", "asset"),
        ("mutation($id: ID!) { cancelJob(id: $id) { id } }", "job"),
        ('mutation($id: ID!) { updateAsset(id: $id, title: "mine now") { id } }', "asset"),
    ],
    ids=["node-job", "node-asset", "node-user", "job", "asset", "cancelJob", "updateAsset"],
)
async def test_someone_elses_object_is_not_found_and_looks_like_a_missing_one(
    world: World, document: str, kind: str
) -> None:
    stranger = world.clients["stranger"]
    body = await stranger.execute(document, {"id": world.ids(kind)})
    (error,) = body["errors"]
    assert_error(error, NOT_FOUND)
    assert not any((body.get("data") or {}).values()), body
    prefix = {"job": "Job:", "asset": "Asset:", "user": "User:"}[kind]
    missing = base64.b64encode(f"{prefix}doesnotexist".encode()).decode()
    assert_error(await stranger.error(document, {"id": missing}), NOT_FOUND)


async def test_someone_elses_asset_cannot_be_upscaled_and_the_input_is_named(world: World) -> None:
    error = await world.clients["stranger"].error(
        "mutation($id: ID!) { upscaleImage(input: {assetId: $id}) { id } }", {"id": world.asset_id}
    )
    assert_error(error, BAD_USER_INPUT)
    assert error["extensions"]["field"] == "input.assetId"


async def test_admin_reads_another_users_job_asset_and_usage(world: World) -> None:
    admin, owner = world.clients["admin"], world.clients["owner"]
    document = """query($job: ID!, $asset: ID!, $user: ID!, $from: DateTime!, $to: DateTime!) {
      job(id: $job) { id owner { id email } }
      asset(id: $asset) { id owner { id } }
      usage(query: {from: $from, to: $to, userId: $user}) { totals { jobs texts images } }
    }"""
    variables = {"job": world.job_id, "asset": world.asset_id, "user": world.owner_id, **around_now()}
    seen_by_admin = await admin.data(document, variables)
    seen_by_owner = await owner.data(document, variables)
    assert seen_by_admin == seen_by_owner
    assert seen_by_admin["job"]["owner"]["id"] == world.owner_id
    assert seen_by_admin["usage"]["totals"]["texts"] >= 1 and seen_by_admin["usage"]["totals"]["images"] >= 1


async def test_a_users_email_is_shown_to_themselves_and_admins_only(world: World) -> None:
    document = "query($id: ID!) { job(id: $id) { owner { email } } }"
    owner_email = (await world.clients["owner"].data("{ me { email } }"))["me"]["email"]
    seen_by_admin = await world.clients["admin"].data(document, {"id": world.job_id})
    assert seen_by_admin["job"]["owner"]["email"] == owner_email
    error = await world.clients["stranger"].error(
        "query($id: ID!) { node(id: $id) { ... on User { email } } }", {"id": world.owner_id}
    )
    assert_error(error, NOT_FOUND)
    assert owner_email not in str(error)


@pytest.mark.parametrize(
    "payload",
    [{}, {"authorization": "Bearer not-a-token"}, {"authorization": "Basic dXNlcjpwYXNz"}],
    ids=["no-token", "garbage-token", "wrong-scheme"],
)
async def test_a_socket_without_valid_credentials_is_refused(world: World, payload: dict[str, str]) -> None:
    client = world.clients["owner"]
    async with client.socket(init_payload=payload) as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.ack()
            await socket.subscribe(OPERATIONS["jobProgress"].document, {"id": world.job_id})
            await receive(socket)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    assert not socket.acked


async def test_following_someone_elses_job_on_a_socket_yields_not_found_and_no_job(world: World) -> None:
    async with world.clients["stranger"].socket() as socket:
        assert (await socket.ack())["type"] == "connection_ack"
        op = await socket.subscribe(
            "subscription($id: ID!) { jobProgress(id: $id) { job { id status } } }", {"id": world.job_id}
        )
        messages = await socket.messages(op, timeout=15)
    errors = [error for m in messages if m["type"] in ("next", "error") for error in _errors(m)]
    assert len(errors) == 1
    assert_error(errors[0], NOT_FOUND)
    assert not any(m["type"] == "next" and m["payload"].get("data") for m in messages), messages


def _errors(message: dict[str, Any]) -> list[dict[str, Any]]:
    payload = message["payload"]
    return list(payload if message["type"] == "error" else payload.get("errors") or [])
