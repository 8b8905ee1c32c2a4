"""Bad input is refused before anything happens: BAD_USER_INPUT naming the input path, nothing created.

Variables are named after the arguments they fill (`$input`, `$filter`, ...), so a GraphQL-level
type error names the same path as a validation error from the studio's own rules.
`test_every_argument_of_every_root_field_has_a_bad_value_case` keeps CASES complete.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import new_client, receive, run, submit, wait_for_jobs
from tests.conftest import assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess

TEXT_ASSET = "<the caller's text asset>"
A_JOB = "<the caller's job>"
LONG = "x" * 4001


def gid(type_name: str, raw: str) -> str:
    return base64.b64encode(f"{type_name}:{raw}".encode()).decode()


MISSING_ASSET = gid("Asset", "doesnotexist")
NOT_BASE64 = "not a global id!"
NO_TYPE = base64.b64encode(b"just-an-id").decode()


@dataclass(frozen=True)
class Case:
    root: str  # the root field the case exercises
    document: str
    variables: dict[str, Any]
    field: str  # the expected extensions.field


def _mutation(field: str, input_type: str) -> str:
    return f"mutation($input: {input_type}!) {{ {field}(input: $input) {{ id }} }}"


IMAGE = _mutation("generateImage", "GenerateImageInput")
VIDEO = _mutation("generateVideo", "GenerateVideoInput")
TEXT = _mutation("generateText", "GenerateTextInput")
UPSCALE = _mutation("upscaleImage", "UpscaleImageInput")
ASSETS = """query($filter: AssetFilter, $sort: AssetSort, $first: Int, $after: String, $last: Int, $before: String) {
  assets(filter: $filter, sort: $sort, first: $first, after: $after, last: $last, before: $before) { totalCount }
}"""
JOBS = """query($filter: JobFilter, $first: Int, $after: String) {
  jobs(filter: $filter, first: $first, after: $after) { totalCount }
}"""
USAGE = "query($query: UsageQuery!) { usage(query: $query) { totals { jobs } } }"
UPDATE = """mutation($id: ID!, $title: String, $tags: [String!], $favorite: Boolean) {
  updateAsset(id: $id, title: $title, tags: $tags, favorite: $favorite) { id }
}"""
BY_ID = {
    "node": "query($id: ID!) { node(id: $id) { id } }",
    "asset": "query($id: ID!) { asset(id: $id) { id } }",
    "job": "query($id: ID!) { job(id: $id) { id } }",
    "cancelJob": "mutation($id: ID!) { cancelJob(id: $id) { id } }",
    "updateAsset": UPDATE,
    "revokeApiKey": "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
    "team": "query($id: ID!) { team(id: $id) { id } }",
    "collection": "query($id: ID!) { collection(id: $id) { id } }",
    "updateCollection": "mutation($id: ID!) { updateCollection(id: $id) { id } }",
    "deleteCollection": "mutation($id: ID!) { deleteCollection(id: $id) }",
    "deleteAsset": "mutation($id: ID!) { deleteAsset(id: $id) { id } }",
    "restoreAsset": "mutation($id: ID!) { restoreAsset(id: $id) { id } }",
    "workflow": "query($id: ID!) { workflow(id: $id) { id } }",
    "workflowRun": "query($id: ID!) { workflowRun(id: $id) { id } }",
    "cloneWorkflow": "mutation($id: ID!) { cloneWorkflow(id: $id) { id } }",
    "deleteWorkflow": "mutation($id: ID!) { deleteWorkflow(id: $id) }",
    "runWorkflow": "mutation($id: ID!) { runWorkflow(id: $id) { id } }",
    "batch": "query($id: ID!) { batch(id: $id) { id } }",
}
COLLECTIONS = "query($teamId: ID, $first: Int, $after: String) { collections(teamId: $teamId, first: $first, after: $after) { totalCount } }"
CREATE_COLLECTION = """mutation($name: String!, $description: String, $teamId: ID) {
  createCollection(name: $name, description: $description, teamId: $teamId) { id }
}"""
UPDATE_COLLECTION = """mutation($id: ID!, $name: String, $description: String) {
  updateCollection(id: $id, name: $name, description: $description) { id }
}"""
FILE = "mutation($collectionId: ID!, $assetIds: [ID!]!) {{ {0}(collectionId: $collectionId, assetIds: $assetIds) {{ id }} }}"
ADD_TO = FILE.format("addToCollection")
REMOVE_FROM = FILE.format("removeFromCollection")
PURGE = "mutation($olderThanDays: Int) { purgeDeleted(olderThanDays: $olderThanDays) }"
A_COLLECTION = base64.b64encode(b"Collection:missing").decode()
MISSING_ASSETS = [base64.b64encode(f"Asset:m{i}".encode()).decode() for i in range(51)]
USERS = "query($status: UserStatus, $first: Int, $after: String) { users(status: $status, first: $first, after: $after) { id } }"
AUDIT_LOG = """query($action: String, $actorId: ID, $first: Int, $after: String) {
  auditLog(action: $action, actorId: $actorId, first: $first, after: $after) { totalCount }
}"""
SET_STATUS = (
    "mutation($userId: ID!, $status: UserStatus!) { setUserStatus(userId: $userId, status: $status) { id } }"
)
SET_ROLE = "mutation($userId: ID!, $role: Role!) { setUserRole(userId: $userId, role: $role) { id } }"
REVOKE = "mutation($userId: ID!) { revokeSessions(userId: $userId) { id } }"
SOMEONE = gid("User", "someone")
CREATE_KEY = """mutation($name: String!, $scopes: [String!], $expiresAt: DateTime) {
  createApiKey(name: $name, scopes: $scopes, expiresAt: $expiresAt) { apiKey { id } }
}"""
A_TEAM = gid("Team", "someteam")
CREATE_TEAM = "mutation($name: String!) { createTeam(name: $name) { id } }"
ADD_MEMBER = """mutation($teamId: ID!, $email: String!, $role: TeamRole!) {
  addTeamMember(teamId: $teamId, email: $email, role: $role) { id }
}"""
SET_MEMBER_ROLE = """mutation($teamId: ID!, $userId: ID!, $role: TeamRole!) {
  setTeamMemberRole(teamId: $teamId, userId: $userId, role: $role) { id }
}"""
REMOVE_MEMBER = (
    "mutation($teamId: ID!, $userId: ID!) { removeTeamMember(teamId: $teamId, userId: $userId) { id } }"
)
SHARE = """mutation($assetId: ID!, $withUserEmail: String, $withTeamId: ID) {
  shareAsset(assetId: $assetId, withUserEmail: $withUserEmail, withTeamId: $withTeamId) { id }
}"""
UNSHARE = """mutation($assetId: ID!, $userId: ID, $teamId: ID) {
  unshareAsset(assetId: $assetId, userId: $userId, teamId: $teamId) { id }
}"""
ACCEPT_TERMS = "mutation($version: String!) { acceptTerms(version: $version) { id } }"
SET_QUOTA = """mutation($userId: ID!, $imagesPerDay: Int, $videosPerMonth: Int, $monthlyBudgetUsd: Float) {
  setQuota(userId: $userId, imagesPerDay: $imagesPerDay, videosPerMonth: $videosPerMonth,
           monthlyBudgetUsd: $monthlyBudgetUsd) { id }
}"""
PROGRESS = "subscription($id: ID!) { jobProgress(id: $id) { job { id } } }"
MY_JOBS = "subscription($statuses: [JobStatus!]) { myJobs(statuses: $statuses) { job { id } } }"
DAY_1, DAY_2 = "2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z"
CREATE_UPLOAD = """mutation($filename: String!, $mimeType: String!, $bytes: Int!, $teamId: ID) {
  createUpload(filename: $filename, mimeType: $mimeType, bytes: $bytes, teamId: $teamId) { uploadUrl }
}"""
COMPLETE_UPLOAD = "mutation($assetId: ID!) { completeUpload(assetId: $assetId) { id } }"
MISSING_WORKFLOW = gid("Workflow", "doesnotexist")
CREATE_WORKFLOW = "mutation($input: WorkflowInput!) { createWorkflow(input: $input) { id } }"
UPDATE_WORKFLOW = (
    "mutation($id: ID!, $input: WorkflowInput!) { updateWorkflow(id: $id, input: $input) { id } }"
)
CLONE_WORKFLOW = "mutation($id: ID!, $name: String) { cloneWorkflow(id: $id, name: $name) { id } }"
RUN_WORKFLOW = "mutation($id: ID!, $webhook: WebhookInput) { runWorkflow(id: $id, webhook: $webhook) { id } }"
WORKFLOWS = "query($teamId: ID, $first: Int, $after: String) { workflows(teamId: $teamId, first: $first, after: $after) { id } }"
RUN_PROGRESS = "subscription($id: ID!) { workflowRunProgress(id: $id) { id } }"
BATCH = _mutation("generateBatch", "GenerateBatchInput")
BATCH_PROGRESS = "subscription($id: ID!) { batchProgress(id: $id) { id } }"


def image(**values: Any) -> Case:
    return Case("generateImage", IMAGE, {"input": {"prompt": "a lighthouse"} | values}, "")


def video(**values: Any) -> Case:
    return Case(
        "generateVideo", VIDEO, {"input": {"prompt": "a lighthouse", "durationSeconds": 4} | values}, ""
    )


def text(**values: Any) -> Case:
    return Case("generateText", TEXT, {"input": {"prompt": "a lighthouse"} | values}, "")


def upscale(**values: Any) -> Case:
    return Case("upscaleImage", UPSCALE, {"input": {"assetId": MISSING_ASSET} | values}, "")


def assets(**variables: Any) -> Case:
    return Case("assets", ASSETS, variables, "")


def jobs(**variables: Any) -> Case:
    return Case("jobs", JOBS, variables, "")


def usage(**values: Any) -> Case:
    return Case("usage", USAGE, {"query": {"from": DAY_1, "to": DAY_2} | values}, "")


def update(**variables: Any) -> Case:
    return Case("updateAsset", UPDATE, {"id": TEXT_ASSET} | variables, "")


def create_upload(**variables: Any) -> Case:
    return Case(
        "createUpload",
        CREATE_UPLOAD,
        {"filename": "a.png", "mimeType": "image/png", "bytes": 10} | variables,
        "",
    )


def workflow_draft(**values: Any) -> dict[str, Any]:
    nodes = [{"id": "t", "kind": "TEXT", "input": {"prompt": "a note"}}]
    return {"name": "a workflow", "nodes": nodes, "edges": []} | values


def create_workflow(**values: Any) -> Case:
    return Case("createWorkflow", CREATE_WORKFLOW, {"input": workflow_draft(**values)}, "")


def update_workflow(**values: Any) -> Case:
    variables = {"id": MISSING_WORKFLOW, "input": workflow_draft(**values)}
    return Case("updateWorkflow", UPDATE_WORKFLOW, variables, "")


def batch(**values: Any) -> Case:
    return Case("generateBatch", BATCH, {"input": values}, "")


A_PICTURE = {"prompt": "a lighthouse"}
A_CLIP = {"prompt": "a lighthouse", "durationSeconds": 4}


def at(case: Case, field: str) -> Case:
    return Case(case.root, case.document, case.variables, field)


CASES: dict[str, Case] = {
    # generateImage
    "image-empty-prompt": at(image(prompt=""), "input.prompt"),
    "image-whitespace-prompt": at(image(prompt="  \n\t "), "input.prompt"),
    "image-prompt-over-4000-chars": at(image(prompt=LONG), "input.prompt"),
    "image-prompt-with-nul": at(image(prompt="red\x00fox"), "input.prompt"),
    "image-prompt-not-a-string": at(image(prompt=42), "input.prompt"),
    "image-negative-prompt-too-long": at(image(negativePrompt=LONG), "input.negativePrompt"),
    "image-count-0": at(image(count=0), "input.count"),
    "image-count-5": at(image(count=5), "input.count"),
    "image-unknown-aspect-ratio": at(image(aspectRatio="2:1"), "input.aspectRatio"),
    "image-negative-seed": at(image(seed=-1), "input.seed"),
    "image-seed-beyond-int": at(image(seed=2**31), "input.seed"),
    "image-unknown-model": at(image(model="imagen-99"), "input.model"),
    "image-text-model": at(image(model="gemini-3-flash"), "input.model"),
    "image-reference-malformed": at(image(referenceAssetIds=[NOT_BASE64]), "input.referenceAssetIds"),
    "image-reference-is-a-job": at(image(referenceAssetIds=[A_JOB]), "input.referenceAssetIds"),
    "image-reference-is-text": at(image(referenceAssetIds=[TEXT_ASSET]), "input.referenceAssetIds"),
    "image-four-references": at(
        image(referenceAssetIds=[gid("Asset", f"r{i}") for i in range(4)]), "input.referenceAssetIds"
    ),
    # generateVideo
    "video-empty-prompt": at(video(prompt=""), "input.prompt"),
    "video-negative-prompt-with-nul": at(video(negativePrompt="no\x00"), "input.negativePrompt"),
    "video-image-model": at(video(model="gemini-3.1-flash-image"), "input.model"),
    "video-square-aspect-ratio": at(video(aspectRatio="1:1"), "input.aspectRatio"),
    "video-duration-not-offered": at(video(durationSeconds=5), "input.durationSeconds"),
    "video-audio-not-a-boolean": at(video(generateAudio="yes"), "input.generateAudio"),
    "video-negative-seed": at(video(seed=-7), "input.seed"),
    "video-last-frame-without-first": at(video(lastFrameAssetId=MISSING_ASSET), "input.lastFrameAssetId"),
    "video-first-frame-is-text": at(video(firstFrameAssetId=TEXT_ASSET), "input.firstFrameAssetId"),
    "video-first-frame-missing": at(video(firstFrameAssetId=MISSING_ASSET), "input.firstFrameAssetId"),
    "video-last-frame-malformed": at(
        video(firstFrameAssetId=TEXT_ASSET, lastFrameAssetId=NOT_BASE64), "input.lastFrameAssetId"
    ),
    "video-reference-is-text": at(video(referenceAssetIds=[TEXT_ASSET]), "input.referenceAssetIds"),
    # generateText
    "text-prompt-over-4000-chars": at(text(prompt=LONG), "input.prompt"),
    "text-system-prompt-with-nul": at(text(systemPrompt="be\x00nice"), "input.systemPrompt"),
    "text-unknown-model": at(text(model="gpt-0"), "input.model"),
    "text-temperature-3": at(text(temperature=3), "input.temperature"),
    "text-temperature-negative": at(text(temperature=-0.1), "input.temperature"),
    "text-max-output-tokens-0": at(text(maxOutputTokens=0), "input.maxOutputTokens"),
    "text-max-output-tokens-too-many": at(text(maxOutputTokens=8193), "input.maxOutputTokens"),
    # upscaleImage
    "upscale-factor-3": at(upscale(factor=3), "input.factor"),
    "image-webhook-without-url": at(image(webhook={}), "input.webhook"),
    "video-webhook-not-an-object": at(video(webhook="https://x.example"), "input.webhook"),
    "text-webhook-without-url": at(text(webhook={}), "input.webhook"),
    "upscale-webhook-without-url": at(upscale(webhook={}), "input.webhook"),
    "image-idempotency-key-empty": at(image(idempotencyKey=""), "input.idempotencyKey"),
    "video-idempotency-key-too-long": at(video(idempotencyKey="k" * 201), "input.idempotencyKey"),
    "text-idempotency-key-unprintable": at(text(idempotencyKey="a\nb"), "input.idempotencyKey"),
    "upscale-idempotency-key-empty": at(upscale(idempotencyKey=""), "input.idempotencyKey"),
    "image-cache-not-boolean": at(image(cache="yes"), "input.cache"),
    "video-cache-not-boolean": at(video(cache=1), "input.cache"),
    "text-cache-not-boolean": at(text(cache=[True]), "input.cache"),
    "upscale-cache-not-boolean": at(upscale(cache={"on": True}), "input.cache"),
    "upscale-asset-malformed": at(upscale(assetId=NOT_BASE64), "input.assetId"),
    "upscale-asset-is-a-job": at(upscale(assetId=A_JOB), "input.assetId"),
    "upscale-asset-is-text": at(upscale(assetId=TEXT_ASSET), "input.assetId"),
    "upscale-asset-missing": at(upscale(assetId=MISSING_ASSET), "input.assetId"),
    "upscale-unknown-model": at(upscale(assetId=TEXT_ASSET, model="nope"), "input.model"),
    # assets
    "assets-first-over-100": at(assets(first=101), "first"),
    "assets-first-negative": at(assets(first=-1), "first"),
    "assets-last-over-100": at(assets(last=101), "last"),
    "assets-first-and-last": at(assets(first=5, last=5), "last"),
    "assets-garbage-after": at(assets(after="garbage"), "after"),
    "assets-garbage-before": at(assets(last=5, before="garbage"), "before"),
    "assets-garbage-before-alone": at(assets(before="garbage"), "before"),
    "assets-after-and-before": at(assets(after="a", before="b"), "before"),
    "assets-first-with-before": at(assets(first=5, before="a"), "before"),
    "assets-search-too-long": at(assets(filter={"search": "s" * 201}), "filter.search"),
    "assets-no-kinds": at(assets(filter={"kinds": []}), "filter.kinds"),
    "assets-unknown-kind": at(assets(filter={"kinds": ["SOUND"]}), "filter.kinds"),
    "assets-tags-not-strings": at(assets(filter={"tags": [7]}), "filter.tags"),
    "assets-favorite-not-a-boolean": at(assets(filter={"favorite": "yes"}), "filter.favorite"),
    "assets-model-not-a-string": at(assets(filter={"model": 3}), "filter.model"),
    "assets-deleted-null": at(assets(filter={"deleted": None}), "filter.deleted"),
    "assets-created-after-garbage": at(assets(filter={"createdAfter": "yesterday"}), "filter.createdAfter"),
    "assets-created-before-before-after": at(
        assets(filter={"createdAfter": DAY_2, "createdBefore": DAY_1}), "filter.createdBefore"
    ),
    "assets-created-before-equals-after": at(
        assets(filter={"createdAfter": DAY_1, "createdBefore": DAY_1}), "filter.createdBefore"
    ),
    "assets-unknown-sort-field": at(assets(sort={"field": "NAME"}), "sort.field"),
    "assets-unknown-sort-direction": at(assets(sort={"direction": "UP"}), "sort.direction"),
    "assets-relevance-without-search": at(assets(sort={"field": "RELEVANCE"}), "sort.field"),
    "assets-similar-to-malformed": at(assets(filter={"similarTo": NOT_BASE64}), "filter.similarTo"),
    "assets-similar-to-not-an-id": at(assets(filter={"similarTo": 5}), "filter.similarTo"),
    # jobs
    "jobs-first-over-100": at(jobs(first=101), "first"),
    "jobs-garbage-after": at(jobs(after="garbage"), "after"),
    "jobs-no-statuses": at(jobs(filter={"statuses": []}), "filter.statuses"),
    "jobs-unknown-status": at(jobs(filter={"statuses": ["DONE"]}), "filter.statuses"),
    "jobs-no-kinds": at(jobs(filter={"kinds": []}), "filter.kinds"),
    "jobs-team-id-malformed": at(jobs(filter={"teamId": NOT_BASE64}), "filter.teamId"),
    # usage
    "usage-to-before-from": at(usage(**{"from": DAY_2, "to": DAY_1}), "query.to"),
    "usage-to-equals-from": at(usage(to=DAY_1), "query.to"),
    "usage-over-400-days": at(usage(to="2026-06-01T00:00:00Z"), "query.to"),
    "usage-from-garbage": at(usage(**{"from": "soon"}), "query.from"),
    "usage-unknown-group": at(usage(groupBy=["WEEK"]), "query.groupBy"),
    "usage-user-id-malformed": at(usage(userId=NOT_BASE64), "query.userId"),
    "usage-team-id-not-an-id": at(usage(teamId=True), "query.teamId"),
    # updateAsset
    "update-title-too-long": at(update(title="t" * 201), "title"),
    "update-too-many-tags": at(update(tags=[f"tag{i}" for i in range(31)]), "tags"),
    "update-tag-too-long": at(update(tags=["ok", "t" * 41]), "tags"),
    "update-tags-not-strings": at(update(tags=["fine", 2]), "tags"),
    "update-favorite-not-a-boolean": at(update(favorite="yes"), "favorite"),
    # createUpload / completeUpload
    "createUpload-empty-filename": at(create_upload(filename="  "), "filename"),
    "createUpload-filename-with-a-folder": at(create_upload(filename="../etc/a.png"), "filename"),
    "createUpload-filename-too-long": at(create_upload(filename="f" * 201 + ".png"), "filename"),
    "createUpload-filename-with-a-newline": at(create_upload(filename="a\nb.png"), "filename"),
    "createUpload-gif": at(create_upload(mimeType="image/gif"), "mimeType"),
    "createUpload-html": at(create_upload(mimeType="text/html"), "mimeType"),
    "createUpload-zero-bytes": at(create_upload(bytes=0), "bytes"),
    "createUpload-negative-bytes": at(create_upload(bytes=-5), "bytes"),
    "createUpload-image-over-the-cap": at(create_upload(bytes=20 * 1024 * 1024 + 1), "bytes"),
    "createUpload-bytes-not-a-number": at(create_upload(bytes="ten"), "bytes"),
    "createUpload-team-id-malformed": at(create_upload(teamId=NOT_BASE64), "teamId"),
    "completeUpload-asset-id-malformed": Case(
        "completeUpload", COMPLETE_UPLOAD, {"assetId": NOT_BASE64}, "assetId"
    ),
    "completeUpload-asset-id-without-type": Case(
        "completeUpload", COMPLETE_UPLOAD, {"assetId": NO_TYPE}, "assetId"
    ),
    # administration: refused as bad input before the caller's (missing) admin rights are checked
    "users-unknown-status": Case("users", USERS, {"status": "DONE"}, "status"),
    "users-first-not-a-number": Case("users", USERS, {"first": "ten"}, "first"),
    "users-after-not-a-string": Case("users", USERS, {"after": 7}, "after"),
    "users-after-malformed": Case("users", USERS, {"after": NOT_BASE64}, "after"),
    "auditLog-action-not-a-string": Case("auditLog", AUDIT_LOG, {"action": 7}, "action"),
    "auditLog-actor-id-not-an-id": Case("auditLog", AUDIT_LOG, {"actorId": True}, "actorId"),
    "auditLog-actor-id-malformed": Case("auditLog", AUDIT_LOG, {"actorId": NOT_BASE64}, "actorId"),
    "auditLog-first-not-a-number": Case("auditLog", AUDIT_LOG, {"first": "ten"}, "first"),
    "auditLog-after-not-a-string": Case("auditLog", AUDIT_LOG, {"after": 7}, "after"),
    "setUserStatus-unknown-status": Case(
        "setUserStatus", SET_STATUS, {"userId": SOMEONE, "status": "DONE"}, "status"
    ),
    "setUserStatus-user-id-malformed": Case(
        "setUserStatus", SET_STATUS, {"userId": NOT_BASE64, "status": "ACTIVE"}, "userId"
    ),
    "setUserRole-unknown-role": Case("setUserRole", SET_ROLE, {"userId": SOMEONE, "role": "GOD"}, "role"),
    "setUserRole-user-id-without-type": Case(
        "setUserRole", SET_ROLE, {"userId": NO_TYPE, "role": "USER"}, "userId"
    ),
    "revokeSessions-user-id-malformed": Case("revokeSessions", REVOKE, {"userId": NOT_BASE64}, "userId"),
    "revokeSessions-user-id-not-an-id": Case("revokeSessions", REVOKE, {"userId": 1.5}, "userId"),
    # createApiKey
    "createApiKey-name-empty": Case("createApiKey", CREATE_KEY, {"name": "  "}, "name"),
    "createApiKey-name-too-long": Case("createApiKey", CREATE_KEY, {"name": "n" * 101}, "name"),
    "createApiKey-name-with-newline": Case("createApiKey", CREATE_KEY, {"name": "a\nb"}, "name"),
    "createApiKey-name-missing": Case("createApiKey", CREATE_KEY, {}, "name"),
    "createApiKey-unknown-scope": Case(
        "createApiKey", CREATE_KEY, {"name": "k", "scopes": ["admin"]}, "scopes"
    ),
    "createApiKey-no-scopes": Case("createApiKey", CREATE_KEY, {"name": "k", "scopes": []}, "scopes"),
    "createApiKey-scope-not-a-string": Case(
        "createApiKey", CREATE_KEY, {"name": "k", "scopes": [1]}, "scopes"
    ),
    "createApiKey-expires-in-the-past": Case(
        "createApiKey", CREATE_KEY, {"name": "k", "expiresAt": DAY_1}, "expiresAt"
    ),
    "createApiKey-expires-too-far-ahead": Case(
        "createApiKey", CREATE_KEY, {"name": "k", "expiresAt": "2999-01-01T00:00:00Z"}, "expiresAt"
    ),
    "createApiKey-expires-garbage": Case(
        "createApiKey", CREATE_KEY, {"name": "k", "expiresAt": "next week"}, "expiresAt"
    ),
    "createApiKey-expires-without-zone": Case(
        "createApiKey", CREATE_KEY, {"name": "k", "expiresAt": "2099-01-01T00:00:00"}, "expiresAt"
    ),
    # teams and sharing: refused as bad input before membership or ownership is checked
    "image-team-id-malformed": at(image(teamId=NOT_BASE64), "input.teamId"),
    "video-team-id-without-type": at(video(teamId=NO_TYPE), "input.teamId"),
    "text-team-id-not-an-id": at(text(teamId=True), "input.teamId"),
    "upscale-team-id-malformed": at(upscale(teamId=NOT_BASE64), "input.teamId"),
    "assets-team-id-malformed": at(assets(filter={"teamId": NOT_BASE64}), "filter.teamId"),
    "assets-shared-with-me-not-a-boolean": at(assets(filter={"sharedWithMe": "yes"}), "filter.sharedWithMe"),
    "assets-shared-with-me-and-team": at(
        assets(filter={"sharedWithMe": True, "teamId": A_TEAM}), "filter.sharedWithMe"
    ),
    "createTeam-empty-name": Case("createTeam", CREATE_TEAM, {"name": "  "}, "name"),
    "createTeam-name-too-long": Case("createTeam", CREATE_TEAM, {"name": "n" * 101}, "name"),
    "createTeam-name-with-control-characters": Case("createTeam", CREATE_TEAM, {"name": "a\x00b"}, "name"),
    "addTeamMember-team-id-malformed": Case(
        "addTeamMember",
        ADD_MEMBER,
        {"teamId": NOT_BASE64, "email": "a@example.com", "role": "VIEWER"},
        "teamId",
    ),
    "addTeamMember-not-an-email": Case(
        "addTeamMember", ADD_MEMBER, {"teamId": A_TEAM, "email": "nobody", "role": "VIEWER"}, "email"
    ),
    "addTeamMember-unknown-role": Case(
        "addTeamMember", ADD_MEMBER, {"teamId": A_TEAM, "email": "a@example.com", "role": "BOSS"}, "role"
    ),
    "setTeamMemberRole-team-id-without-type": Case(
        "setTeamMemberRole",
        SET_MEMBER_ROLE,
        {"teamId": NO_TYPE, "userId": SOMEONE, "role": "EDITOR"},
        "teamId",
    ),
    "setTeamMemberRole-user-id-malformed": Case(
        "setTeamMemberRole",
        SET_MEMBER_ROLE,
        {"teamId": A_TEAM, "userId": NOT_BASE64, "role": "EDITOR"},
        "userId",
    ),
    "setTeamMemberRole-unknown-role": Case(
        "setTeamMemberRole", SET_MEMBER_ROLE, {"teamId": A_TEAM, "userId": SOMEONE, "role": "ADMIN"}, "role"
    ),
    "removeTeamMember-team-id-malformed": Case(
        "removeTeamMember", REMOVE_MEMBER, {"teamId": NOT_BASE64, "userId": SOMEONE}, "teamId"
    ),
    "removeTeamMember-user-id-not-an-id": Case(
        "removeTeamMember", REMOVE_MEMBER, {"teamId": A_TEAM, "userId": 2.5}, "userId"
    ),
    "shareAsset-asset-id-malformed": Case(
        "shareAsset", SHARE, {"assetId": NOT_BASE64, "withUserEmail": "a@example.com"}, "assetId"
    ),
    "shareAsset-not-an-email": Case(
        "shareAsset", SHARE, {"assetId": TEXT_ASSET, "withUserEmail": "at@"}, "withUserEmail"
    ),
    "shareAsset-no-target": Case("shareAsset", SHARE, {"assetId": TEXT_ASSET}, "withUserEmail"),
    "shareAsset-team-id-malformed": Case(
        "shareAsset", SHARE, {"assetId": TEXT_ASSET, "withTeamId": NO_TYPE}, "withTeamId"
    ),
    "shareAsset-two-targets": Case(
        "shareAsset",
        SHARE,
        {"assetId": TEXT_ASSET, "withUserEmail": "a@example.com", "withTeamId": A_TEAM},
        "withTeamId",
    ),
    "unshareAsset-asset-id-without-type": Case(
        "unshareAsset", UNSHARE, {"assetId": NO_TYPE, "userId": SOMEONE}, "assetId"
    ),
    "unshareAsset-user-id-malformed": Case(
        "unshareAsset", UNSHARE, {"assetId": TEXT_ASSET, "userId": NOT_BASE64}, "userId"
    ),
    "unshareAsset-team-id-not-an-id": Case(
        "unshareAsset", UNSHARE, {"assetId": TEXT_ASSET, "teamId": False}, "teamId"
    ),
    "unshareAsset-no-target": Case("unshareAsset", UNSHARE, {"assetId": TEXT_ASSET}, "userId"),
    # terms and quotas (setQuota's limits are checked before the caller's admin rights)
    "acceptTerms-version-empty": Case("acceptTerms", ACCEPT_TERMS, {"version": ""}, "version"),
    "acceptTerms-version-not-a-string": Case("acceptTerms", ACCEPT_TERMS, {"version": 7}, "version"),
    "acceptTerms-version-too-long": Case("acceptTerms", ACCEPT_TERMS, {"version": "v" * 65}, "version"),
    "setQuota-user-id-malformed": Case("setQuota", SET_QUOTA, {"userId": NOT_BASE64}, "userId"),
    "setQuota-images-negative": Case(
        "setQuota", SET_QUOTA, {"userId": SOMEONE, "imagesPerDay": -1}, "imagesPerDay"
    ),
    "setQuota-images-not-a-number": Case(
        "setQuota", SET_QUOTA, {"userId": SOMEONE, "imagesPerDay": "ten"}, "imagesPerDay"
    ),
    "setQuota-videos-negative": Case(
        "setQuota", SET_QUOTA, {"userId": SOMEONE, "videosPerMonth": -3}, "videosPerMonth"
    ),
    "setQuota-videos-over-the-cap": Case(
        "setQuota", SET_QUOTA, {"userId": SOMEONE, "videosPerMonth": 10_000_001}, "videosPerMonth"
    ),
    "setQuota-budget-negative": Case(
        "setQuota", SET_QUOTA, {"userId": SOMEONE, "monthlyBudgetUsd": -0.01}, "monthlyBudgetUsd"
    ),
    "setQuota-budget-not-a-number": Case(
        "setQuota", SET_QUOTA, {"userId": SOMEONE, "monthlyBudgetUsd": "lots"}, "monthlyBudgetUsd"
    ),
    # collections
    "assets-collection-id-malformed": at(assets(filter={"collectionId": NOT_BASE64}), "filter.collectionId"),
    "image-collection-id-malformed": at(image(collectionId=NOT_BASE64), "input.collectionId"),
    "image-collection-id-is-a-job": at(image(collectionId=A_JOB), "input.collectionId"),
    "video-collection-missing": at(video(collectionId=A_COLLECTION), "input.collectionId"),
    "collections-team-id-malformed": Case("collections", COLLECTIONS, {"teamId": NOT_BASE64}, "teamId"),
    "collections-first-over-100": Case("collections", COLLECTIONS, {"first": 101}, "first"),
    "collections-garbage-after": Case("collections", COLLECTIONS, {"after": "garbage"}, "after"),
    "createCollection-empty-name": Case("createCollection", CREATE_COLLECTION, {"name": "  "}, "name"),
    "createCollection-name-too-long": Case(
        "createCollection", CREATE_COLLECTION, {"name": "n" * 101}, "name"
    ),
    "createCollection-description-too-long": Case(
        "createCollection", CREATE_COLLECTION, {"name": "ok", "description": "d" * 2001}, "description"
    ),
    "createCollection-team-id-malformed": Case(
        "createCollection", CREATE_COLLECTION, {"name": "ok", "teamId": NOT_BASE64}, "teamId"
    ),
    "updateCollection-empty-name": Case(
        "updateCollection", UPDATE_COLLECTION, {"id": A_COLLECTION, "name": ""}, "name"
    ),
    "updateCollection-description-not-a-string": Case(
        "updateCollection", UPDATE_COLLECTION, {"id": A_COLLECTION, "description": 5}, "description"
    ),
    **{
        f"{root}-{name}": Case(root, document, variables, field)
        for root, document in (("addToCollection", ADD_TO), ("removeFromCollection", REMOVE_FROM))
        for name, variables, field in (
            (
                "collection-id-malformed",
                {"collectionId": NOT_BASE64, "assetIds": [MISSING_ASSET]},
                "collectionId",
            ),
            ("no-asset-ids", {"collectionId": A_COLLECTION, "assetIds": []}, "assetIds"),
            ("51-asset-ids", {"collectionId": A_COLLECTION, "assetIds": MISSING_ASSETS}, "assetIds"),
            ("asset-id-malformed", {"collectionId": A_COLLECTION, "assetIds": [NOT_BASE64]}, "assetIds"),
        )
    },
    "purgeDeleted-negative-days": Case("purgeDeleted", PURGE, {"olderThanDays": -1}, "olderThanDays"),
    "purgeDeleted-over-ten-years": Case("purgeDeleted", PURGE, {"olderThanDays": 3651}, "olderThanDays"),
    # workflows: the input is checked before the workflow is looked up
    **{
        f"{name}-{problem}": at(make(**values), field)
        for name, make in (("createWorkflow", create_workflow), ("updateWorkflow", update_workflow))
        for problem, values, field in (
            ("empty-name", {"name": " "}, "input.name"),
            ("description-too-long", {"description": "d" * 2001}, "input.description"),
            ("team-id-malformed", {"teamId": NOT_BASE64}, "input.teamId"),
            ("no-nodes", {"nodes": []}, "input.nodes"),
            ("node-kind-unknown", {"nodes": [{"id": "t", "kind": "SOUND", "input": {}}]}, "input.nodes.kind"),
            ("edge-without-target", {"edges": [{"from": "t", "as": "assetId"}]}, "input.edges"),
            (
                "node-prompt-empty",
                {"nodes": [{"id": "t", "kind": "TEXT", "input": {"prompt": ""}}]},
                "input.nodes[0].input.prompt",
            ),
            (
                "node-asset-malformed",
                {"nodes": [{"id": "u", "kind": "UPSCALE", "input": {"assetId": NOT_BASE64}}]},
                "input.nodes[0].input.assetId",
            ),
            (
                "edge-to-unknown-node",
                {"edges": [{"from": "t", "to": "x", "as": "assetId"}]},
                "input.edges[0].to",
            ),
        )
    },
    "updateWorkflow-id-malformed": Case(
        "updateWorkflow", UPDATE_WORKFLOW, {"id": NOT_BASE64, "input": workflow_draft()}, "id"
    ),
    "cloneWorkflow-empty-name": Case(
        "cloneWorkflow", CLONE_WORKFLOW, {"id": MISSING_WORKFLOW, "name": ""}, "name"
    ),
    "runWorkflow-webhook-not-https": Case(
        "runWorkflow",
        RUN_WORKFLOW,
        {"id": MISSING_WORKFLOW, "webhook": {"url": "ftp://example.com/hook"}},
        "webhook.url",
    ),
    "runWorkflow-webhook-event-not-final": Case(
        "runWorkflow",
        RUN_WORKFLOW,
        {"id": MISSING_WORKFLOW, "webhook": {"url": "https://example.com/hook", "events": ["RUNNING"]}},
        "webhook.events",
    ),
    # generateBatch: every item is checked before anything is created, errors name the item
    "batch-nothing-to-generate": at(batch(), "input.images"),
    "batch-empty-lists": at(batch(images=[], videos=[]), "input.images"),
    "batch-51-images": at(batch(images=[A_PICTURE] * 51), "input.images"),
    "batch-51-in-all-ending-with-videos": at(
        batch(images=[A_PICTURE] * 46, videos=[A_CLIP] * 5), "input.videos"
    ),
    "batch-image-not-an-object": at(batch(images=[42]), "input.images"),
    "batch-video-not-an-object": at(batch(videos=["a clip"]), "input.videos"),
    "batch-fourth-image-empty-prompt": at(
        batch(images=[A_PICTURE] * 3 + [{"prompt": ""}]), "input.images[3].prompt"
    ),
    "batch-video-duration-not-offered": at(
        batch(images=[A_PICTURE], videos=[A_CLIP | {"durationSeconds": 5}]), "input.videos[0].durationSeconds"
    ),
    "batch-image-reference-malformed": at(
        batch(images=[A_PICTURE | {"referenceAssetIds": [NOT_BASE64]}]), "input.images[0].referenceAssetIds"
    ),
    "batch-image-idempotency-key": at(
        batch(images=[A_PICTURE | {"idempotencyKey": "once"}]), "input.images[0].idempotencyKey"
    ),
    "batch-video-webhook-not-https": at(
        batch(videos=[A_CLIP | {"webhook": {"url": "ftp://example.com/hook"}}]), "input.videos[0].webhook.url"
    ),
    "batch-webhook-not-an-object": at(
        batch(images=[A_PICTURE], webhook="https://x.example"), "input.webhook"
    ),
    "batch-webhook-event-not-final": at(
        batch(images=[A_PICTURE], webhook={"url": "https://example.com/hook", "events": ["QUEUED"]}),
        "input.webhook.events",
    ),
    "jobs-batch-id-malformed": at(jobs(filter={"batchId": NOT_BASE64}), "filter.batchId"),
    "workflows-team-id-malformed": Case("workflows", WORKFLOWS, {"teamId": NOT_BASE64}, "teamId"),
    "workflows-first-over-100": Case("workflows", WORKFLOWS, {"first": 101}, "first"),
    "workflows-after-malformed": Case("workflows", WORKFLOWS, {"after": NOT_BASE64}, "after"),
    # malformed global ids, wherever an id is taken
    **{
        f"{root}-id-{name}": Case(root, document, {"id": bad}, "id")
        for root, document in BY_ID.items()
        for name, bad in (("not-base64", NOT_BASE64), ("without-type", NO_TYPE))
    },
}
SOCKET_CASES: dict[str, Case] = {
    "jobProgress-id-not-base64": Case("jobProgress", PROGRESS, {"id": NOT_BASE64}, "id"),
    "jobProgress-id-without-type": Case("jobProgress", PROGRESS, {"id": NO_TYPE}, "id"),
    "myJobs-unknown-status": Case("myJobs", MY_JOBS, {"statuses": ["DONE"]}, "statuses"),
    "workflowRunProgress-id-not-base64": Case("workflowRunProgress", RUN_PROGRESS, {"id": NOT_BASE64}, "id"),
    "workflowRunProgress-id-without-type": Case("workflowRunProgress", RUN_PROGRESS, {"id": NO_TYPE}, "id"),
    "batchProgress-id-not-base64": Case("batchProgress", BATCH_PROGRESS, {"id": NOT_BASE64}, "id"),
    "batchProgress-id-without-type": Case("batchProgress", BATCH_PROGRESS, {"id": NO_TYPE}, "id"),
}
ROOTS = """fragment Args on __Type { fields { name args { name type { name kind ofType { name kind ofType { name kind ofType { name } } } } } } }
{ __schema { queryType { ...Args } mutationType { ...Args } subscriptionType { ...Args } types { name inputFields { name } } } }"""


@dataclass
class Caller:
    client: StudioClient
    text_asset: str
    job: str


@pytest.fixture(scope="module")
def caller(studio: StudioProcess, studio_dir: Path) -> Caller:
    async def build() -> Caller:
        client = await new_client(studio, studio_dir, "careless")
        job = await submit(client, "generateText", {"prompt": "a note to misuse", "maxOutputTokens": 16})
        await wait_for_jobs(client)
        found = await client.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": job["id"]})
        return Caller(client, found["job"]["assets"][0]["id"], job["id"])

    return run(build())


def fill(value: Any, caller: Caller) -> Any:
    """The case's variables with the caller's real ids in place of the placeholders."""
    if isinstance(value, dict):
        return {key: fill(item, caller) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, caller) for item in value]
    return (
        {TEXT_ASSET: caller.text_asset, A_JOB: caller.job}.get(value, value)
        if isinstance(value, str)
        else value
    )


async def state_of(caller: Caller) -> dict[str, Any]:
    """What a bad request must leave as it was: the caller's jobs and their text asset."""
    return await caller.client.data(
        "query($id: ID!) { jobs { totalCount } asset(id: $id) { title tags favorite updatedAt } }",
        {"id": caller.text_asset},
    )


async def refused(client: StudioClient, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The one error of a refused request, after checking it carries the response's X-Request-Id."""
    response = await client.post(document, variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("errors"), body
    (error,) = body["errors"]
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    return dict(error)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_bad_value_is_refused_naming_the_input_and_changes_nothing(caller: Caller, case: Case) -> None:
    before = await state_of(caller)
    error = await refused(caller.client, case.document, fill(case.variables, caller))
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"].get("field") == case.field, error
    assert await state_of(caller) == before


@pytest.mark.parametrize("case", list(SOCKET_CASES.values()), ids=list(SOCKET_CASES))
async def test_bad_subscription_argument_is_refused_naming_the_input(caller: Caller, case: Case) -> None:
    async with caller.client.socket() as socket:
        await socket.ack()
        op = await socket.subscribe(case.document, case.variables)
        messages = await socket.messages(op)
    payload = messages[0]["payload"]
    errors = payload if messages[0]["type"] == "error" else payload["errors"]
    assert_error(errors[0], "BAD_USER_INPUT")
    assert errors[0]["extensions"].get("field") == case.field, errors
    assert not any(m["type"] == "next" and m["payload"].get("data") for m in messages), messages


def argument_paths(schema: dict[str, Any]) -> set[tuple[str, str]]:
    """(root field, input path) for every argument, one level into input objects."""
    inputs = {t["name"]: [f["name"] for f in t["inputFields"]] for t in schema["types"] if t["inputFields"]}
    paths: set[tuple[str, str]] = set()
    for root in ("queryType", "mutationType", "subscriptionType"):
        for field in (schema[root] or {"fields": []})["fields"]:
            for arg in field["args"]:
                kind = arg["type"]
                while kind["name"] is None:
                    kind = kind["ofType"]
                names = inputs.get(kind["name"])
                paths |= (
                    {(field["name"], f"{arg['name']}.{n}") for n in names}
                    if names
                    else {(field["name"], arg["name"])}
                )
    return paths


async def test_every_argument_of_every_root_field_has_a_bad_value_case(caller: Caller) -> None:
    schema = (await caller.client.data(ROOTS))["__schema"]
    covered = {(case.root, case.field) for case in (*CASES.values(), *SOCKET_CASES.values())}
    assert sorted(argument_paths(schema) - covered) == []


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{ me { id ", "BAD_USER_INPUT"),
        ("{ me { id } } }", "BAD_USER_INPUT"),
        ("{ me { shoeSize } }", "BAD_USER_INPUT"),
        ('{ assets(first: "ten") { totalCount } }', "BAD_USER_INPUT"),
        (
            "{ assets { edges { node { " + "job { assets { " * 8 + "id" + " } }" * 8 + " } } } }",
            "QUERY_TOO_COMPLEX",
        ),
        ("{ " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }", "QUERY_TOO_COMPLEX"),
    ],
    ids=[
        "syntax-unclosed",
        "syntax-extra-brace",
        "unknown-field",
        "literal-of-wrong-type",
        "too-deep",
        "too-many-aliases",
    ],
)
async def test_a_malformed_or_oversized_document_is_refused_with_a_code(
    caller: Caller, document: str, code: str
) -> None:
    before = await state_of(caller)
    error = await refused(caller.client, document, {})
    assert_error(error, code)
    assert await state_of(caller) == before


async def test_a_syntax_error_on_a_socket_is_reported_not_silently_completed(caller: Caller) -> None:
    async with caller.client.socket() as socket:
        await socket.ack()
        op = await socket.subscribe("subscription { myJobs { job { id } ")
        message = await receive(socket)
    assert message["id"] == op and message["type"] == "error", message
    assert_error(message["payload"][0], "BAD_USER_INPUT")


async def test_a_sane_request_id_from_a_proxy_is_kept_and_reported(caller: Caller) -> None:
    async with httpx.AsyncClient(base_url=caller.client.base_url, timeout=30) as http:
        response = await http.post(
            "/v1/graphql",
            json={"query": "{ assets(first: 101) { totalCount } }"},
            headers={**caller.client.headers, "X-Request-Id": "proxy-1234abcd"},
        )
    assert response.headers["x-request-id"] == "proxy-1234abcd"
    assert response.json()["errors"][0]["extensions"]["requestId"] == "proxy-1234abcd"
