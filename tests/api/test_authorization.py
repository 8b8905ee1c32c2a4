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

import httpx
import pytest
import websockets

from domain.terms import DEFAULT_TERMS_VERSION
from tests.api.helpers import around_now, new_client, receive, run, submit, wait_for_jobs
from tests.conftest import assert_error
from tests.support.client import KeyClient, StudioClient
from tests.support.media import image_bytes
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
    "team_member",
)
SIGNED_OUT = {"anonymous": UNAUTHENTICATED, "garbage_token": UNAUTHENTICATED, "forged_token": UNAUTHENTICATED}
NOT_APPROVED = {"pending": FORBIDDEN, "blocked": FORBIDDEN}
REASONS = {"pending": "approval", "blocked": "blocked"}


def row(
    *, viewer: str, stranger: str, admin: str, owner: str, team_member: str | None = None
) -> dict[str, str]:
    """Signed-out callers and unapproved accounts are refused everywhere except `me`.

    `team_member` is an EDITOR of the owner's team; outside that team they are a stranger, so
    their outcome is the stranger's unless the row says otherwise."""
    return {
        **SIGNED_OUT,
        **NOT_APPROVED,
        "viewer": viewer,
        "stranger": stranger,
        "admin": admin,
        "owner": owner,
        "team_member": stranger if team_member is None else team_member,
    }


# Every id-taking field targets the owner's objects: a finished text job, a finished image asset,
# the owner's user id. "stranger" and "viewer" are other people; "admin" may read everyone's.
# The owner also owns a team in which "team_member" is an EDITOR (and a leaver a VIEWER), with a
# finished image made in the team: the team fields target those.
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
        "team_member": OK,
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
    "createUpload": row(viewer=FORBIDDEN, stranger=OK, admin=OK, owner=OK),
    "completeUpload": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=NOT_FOUND, owner=OK),  # uploader only
    # Administration (the mutations target a bystander, so no actor's own token is revoked)
    "users": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    "auditLog": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    "setUserStatus": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    "setUserRole": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    "revokeSessions": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    # API keys (revokeApiKey targets the owner's key; revoking twice is fine)
    "apiKeys": row(viewer=OK, stranger=OK, admin=OK, owner=OK),
    "createApiKey": row(viewer=OK, stranger=OK, admin=OK, owner=OK),
    "revokeApiKey": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    # Teams and sharing (team management: owners only; admins see teams but do not manage them)
    "team": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK, team_member=OK),
    "createTeam": row(viewer=FORBIDDEN, stranger=OK, admin=OK, owner=OK),
    "addTeamMember": row(
        viewer=NOT_FOUND, stranger=NOT_FOUND, admin=FORBIDDEN, owner=OK, team_member=FORBIDDEN
    ),
    "setTeamMemberRole": row(
        viewer=NOT_FOUND, stranger=NOT_FOUND, admin=FORBIDDEN, owner=OK, team_member=FORBIDDEN
    ),
    "removeTeamMember": row(
        viewer=NOT_FOUND, stranger=NOT_FOUND, admin=FORBIDDEN, owner=OK, team_member=FORBIDDEN
    ),
    "shareAsset": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK, team_member=OK),  # team asset
    "unshareAsset": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK, team_member=OK),
    # Terms of service and quotas (setQuota targets a bystander, setting the default value)
    "currentTerms": dict.fromkeys(ACTORS, OK),  # anyone may read the terms, even with a bad token
    "acceptTerms": row(viewer=OK, stranger=OK, admin=OK, owner=OK),
    "setQuota": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    "purgeDeleted": row(viewer=FORBIDDEN, stranger=FORBIDDEN, admin=OK, owner=FORBIDDEN),
    # Collections (the owner's) and the trash: each delete and restore takes an asset of its own
    "collection": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "collections": row(viewer=OK, stranger=OK, admin=OK, owner=OK),
    "createCollection": row(viewer=FORBIDDEN, stranger=OK, admin=OK, owner=OK),
    "updateCollection": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "deleteCollection": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "addToCollection": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "removeFromCollection": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "deleteAsset": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "restoreAsset": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
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
    # Batches (the owner's finished batch)
    "batch": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
    "generateBatch": row(viewer=FORBIDDEN, stranger=OK, admin=OK, owner=OK),
    "batchProgress": row(viewer=NOT_FOUND, stranger=NOT_FOUND, admin=OK, owner=OK),
}


@dataclass
class World:
    """The owner's objects and a client per actor, made once for the module."""

    clients: dict[str, StudioClient]
    owner_id: str
    job_id: str
    asset_id: str
    bystander_id: str
    api_key_id: str = ""
    bystander_email: str = ""
    team_id: str = ""
    team_asset_id: str = ""
    team_member_id: str = ""
    leaver_id: str = ""
    collection_id: str = ""
    # One per call, so every actor meets a fresh one: the owner's collections to delete, live assets
    # to delete, trashed assets to restore.
    spare: dict[str, list[str]] = field(default_factory=dict)
    upload_id: str = ""  # the owner's upload, its bytes sent, not yet completed
    workflow_id: str = ""
    doomed_workflow_id: str = ""
    run_id: str = ""
    batch_id: str = ""

    def ids(self, kind: str) -> str:
        if kind in self.spare:
            return self.spare[kind].pop()
        return {
            "job": self.job_id,
            "asset": self.asset_id,
            "user": self.owner_id,
            "bystander": self.bystander_id,
            "api_key": self.api_key_id,
            "bystander_email": self.bystander_email,
            "team": self.team_id,
            "team_asset": self.team_asset_id,
            "team_member": self.team_member_id,
            "leaver": self.leaver_id,
            "collection": self.collection_id,
            "upload": self.upload_id,
            "workflow": self.workflow_id,
            "doomed_workflow": self.doomed_workflow_id,
            "run": self.run_id,
            "batch": self.batch_id,
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
    "createUpload": Operation(
        'mutation { createUpload(filename: "a.png", mimeType: "image/png", bytes: 100) { uploadUrl } }'
    ),
    "completeUpload": Operation("mutation($id: ID!) { completeUpload(assetId: $id) { id } }", _on("upload")),
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
    "apiKeys": Operation("{ apiKeys { id } }"),
    "createApiKey": Operation(
        'mutation { createApiKey(name: "authorized?", scopes: ["read"]) { apiKey { id } } }'
    ),
    "revokeApiKey": Operation("mutation($id: ID!) { revokeApiKey(id: $id) { id } }", _on("api_key")),
    "team": Operation("query($id: ID!) { team(id: $id) { id } }", _on("team")),
    "createTeam": Operation('mutation { createTeam(name: "authorized?") { id } }'),
    "addTeamMember": Operation(
        "mutation($t: ID!, $e: String!) { addTeamMember(teamId: $t, email: $e) { id } }",
        lambda world: {"t": world.team_id, "e": world.bystander_email},
    ),
    "setTeamMemberRole": Operation(
        "mutation($t: ID!, $u: ID!) { setTeamMemberRole(teamId: $t, userId: $u, role: EDITOR) { id } }",
        lambda world: {"t": world.team_id, "u": world.team_member_id},
    ),
    "removeTeamMember": Operation(
        "mutation($t: ID!, $u: ID!) { removeTeamMember(teamId: $t, userId: $u) { id } }",
        lambda world: {"t": world.team_id, "u": world.leaver_id},
    ),
    "shareAsset": Operation(
        "mutation($id: ID!, $e: String!) { shareAsset(assetId: $id, withUserEmail: $e) { id } }",
        lambda world: {"id": world.team_asset_id, "e": world.bystander_email},
    ),
    "unshareAsset": Operation(
        "mutation($id: ID!, $u: ID!) { unshareAsset(assetId: $id, userId: $u) { id } }",
        lambda world: {"id": world.team_asset_id, "u": world.bystander_id},
    ),
    "currentTerms": Operation("{ currentTerms { version url publishedAt } }"),
    "acceptTerms": Operation(
        "mutation($version: String!) { acceptTerms(version: $version) { id acceptedTermsVersion } }",
        lambda world: {"version": DEFAULT_TERMS_VERSION},
    ),
    "setQuota": Operation(
        "mutation($userId: ID!) { setQuota(userId: $userId, imagesPerDay: 1000) { id } }",
        _on("bystander", "userId"),
    ),
    "purgeDeleted": Operation("mutation { purgeDeleted }"),
    "collection": Operation("query($id: ID!) { collection(id: $id) { id } }", _on("collection")),
    "collections": Operation("{ collections { totalCount } }"),
    "createCollection": Operation('mutation { createCollection(name: "authorized?") { id } }'),
    "updateCollection": Operation(
        'mutation($id: ID!) { updateCollection(id: $id, description: "seen") { id } }', _on("collection")
    ),
    "deleteCollection": Operation(
        "mutation($id: ID!) { deleteCollection(id: $id) }", _on("doomed_collection")
    ),
    "addToCollection": Operation(
        "mutation($c: ID!, $a: ID!) { addToCollection(collectionId: $c, assetIds: [$a]) { id } }",
        lambda world: {"c": world.collection_id, "a": world.asset_id},
    ),
    "removeFromCollection": Operation(
        "mutation($c: ID!, $a: ID!) { removeFromCollection(collectionId: $c, assetIds: [$a]) { id } }",
        lambda world: {"c": world.collection_id, "a": world.asset_id},
    ),
    "deleteAsset": Operation("mutation($id: ID!) { deleteAsset(id: $id) { id } }", _on("live_asset")),
    "restoreAsset": Operation("mutation($id: ID!) { restoreAsset(id: $id) { id } }", _on("trashed_asset")),
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
    "batch": Operation("query($id: ID!) { batch(id: $id) { id } }", _on("batch")),
    "generateBatch": Operation(
        'mutation { generateBatch(input: {images: [{prompt: "authorized?"}]}) { id } }'
    ),
    "batchProgress": Operation("subscription($id: ID!) { batchProgress(id: $id) { id } }", _on("batch")),
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
            "team_member": await new_client(studio, studio_dir, "team_member"),
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
        key = await owner.data('mutation { createApiKey(name: "matrix") { apiKey { id } } }')
        every_scope = await owner.data(
            'mutation { createApiKey(name: "matrix, every scope", scopes: ["read", "write", "generate"]) '
            "{ secret } }"
        )
        clients["owner_key"] = KeyClient(studio.base_url, every_scope["createApiKey"]["secret"])
        seen = (await bystander.data("{ me { id email } }"))["me"]
        team_id = (await owner.data('mutation { createTeam(name: "The owner\'s team") { id } }'))[
            "createTeam"
        ]["id"]
        add = "mutation($t: ID!, $e: String!, $r: TeamRole!) { addTeamMember(teamId: $t, email: $e, role: $r) { id } }"
        member, leaver = clients["team_member"], await new_client(studio, studio_dir, "leaver")
        joined = {}
        for client, role in ((member, "EDITOR"), (leaver, "VIEWER")):
            who = (await client.data("{ me { id email } }"))["me"]
            await owner.data(add, {"t": team_id, "e": who["email"], "r": role})
            joined[role] = who["id"]
        team_job = await submit(owner, "generateImage", {"prompt": "the team's picture", "teamId": team_id})
        await wait_for_jobs(owner)
        made = await owner.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": team_job["id"]})
        create = f"mutation {{ createWorkflow(input: {WORKFLOW_INPUT}) {{ id }} }}"
        workflow_id, doomed_id = [(await owner.data(create))["createWorkflow"]["id"] for _ in range(2)]
        run_it = "mutation($id: ID!) { runWorkflow(id: $id) { id } }"
        run_id = (await owner.data(run_it, {"id": workflow_id}))["runWorkflow"]["id"]
        batch = 'mutation { generateBatch(input: {images: [{prompt: "the owner\'s batch"}]}) { id } }'
        batch_id = (await owner.data(batch))["generateBatch"]["id"]
        await wait_for_jobs(owner)
        world = World(
            clients,
            found["me"]["id"],
            job["id"],
            found["job"]["assets"][0]["id"],
            seen["id"],
            api_key_id=key["createApiKey"]["apiKey"]["id"],
            bystander_email=seen["email"],
            team_id=team_id,
            team_asset_id=made["job"]["assets"][0]["id"],
            team_member_id=joined["EDITOR"],
            leaver_id=joined["VIEWER"],
            upload_id=await uploaded(owner, image_bytes("image/png")),
            workflow_id=workflow_id,
            doomed_workflow_id=doomed_id,
            run_id=run_id,
            batch_id=batch_id,
        )
        await _furnish(world, owner)
        return world

    return run(build())


async def _furnish(world: World, owner: StudioClient) -> None:
    """The owner's collection, and for each actor a collection to delete, an asset to delete, one to restore."""
    create = 'mutation { createCollection(name: "the owner\'s") { id } }'
    world.collection_id = (await owner.data(create))["createCollection"]["id"]
    callers = len(ACTORS) + 1  # every actor, and the owner's API key
    world.spare["doomed_collection"] = [
        (await owner.data(create))["createCollection"]["id"] for _ in range(callers)
    ]
    jobs = [
        await submit(owner, "generateImage", {"prompt": "spare", "count": 4})
        for _ in range(-(-2 * callers // 4))
    ]
    await wait_for_jobs(owner)
    spares: list[str] = []
    for made in jobs:
        found = await owner.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": made["id"]})
        spares += [asset["id"] for asset in found["job"]["assets"]]
    world.spare["live_asset"] = spares[:callers]
    world.spare["trashed_asset"] = spares[callers : 2 * callers]
    for asset_id in world.spare["trashed_asset"]:
        await owner.data("mutation($id: ID!) { deleteAsset(id: $id) { id } }", {"id": asset_id})


async def uploaded(client: StudioClient, data: bytes) -> str:
    """Start an upload and send its bytes, leaving it to be completed: the asset id."""
    ticket = (
        await client.data(
            'mutation($n: Int!) { createUpload(filename: "a.png", mimeType: "image/png", bytes: $n) '
            "{ asset { id } uploadUrl method headers } }",
            {"n": len(data)},
        )
    )["createUpload"]
    async with httpx.AsyncClient(timeout=30) as http:
        sent = await http.request(
            ticket["method"], ticket["uploadUrl"], headers=ticket["headers"], content=data
        )
    assert sent.status_code == 201, sent.text
    return str(ticket["asset"]["id"])


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


# Keys may not manage keys; with every scope, an owner's key may do everything else the owner may.
KEY_DIFFERS = {"createApiKey": FORBIDDEN, "revokeApiKey": FORBIDDEN}


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_the_owners_key_with_every_scope_answers_like_the_owner(world: World, name: str) -> None:
    operation = OPERATIONS[name]
    outcome = ws_outcome if operation.is_subscription else http_outcome
    code, message = await outcome(world.clients["owner_key"], name, operation, world)
    assert code == KEY_DIFFERS.get(name, EXPECTED[name]["owner"]), message


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
    await wait_for_jobs(owner)  # the matrix's generations as the owner end first: the totals hold still
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
