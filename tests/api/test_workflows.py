"""Workflows over real HTTP and WebSocket: saving graphs, running them step by step, watching runs."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from tests.api.helpers import new_client, submit, wait_for_jobs
from tests.conftest import assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess
from tests.support.webhook_receiver import SECRET, Receiver

WORKFLOW = "id name description owner { id } nodes { id kind input } edges { from to as } createdAt updatedAt"
STEPS = "steps { node kind status reason job { id kind status input assets { id parent { id } } } }"
RUN = f"id status createdAt finishedAt workflow {{ id name }} jobs {{ id status }} {STEPS}"
CREATE = f"mutation($input: WorkflowInput!) {{ createWorkflow(input: $input) {{ {WORKFLOW} }} }}"
UPDATE = f"mutation($id: ID!, $input: WorkflowInput!) {{ updateWorkflow(id: $id, input: $input) {{ {WORKFLOW} }} }}"
CLONE = f"mutation($id: ID!, $name: String) {{ cloneWorkflow(id: $id, name: $name) {{ {WORKFLOW} }} }}"
DELETE = "mutation($id: ID!) { deleteWorkflow(id: $id) }"
READ = f"query($id: ID!) {{ workflow(id: $id) {{ {WORKFLOW} runs {{ totalCount edges {{ node {{ id status }} }} }} }} }}"
LIST = "query($first: Int, $after: String) { workflows(first: $first, after: $after) { id name } }"
RUN_IT = f"mutation($id: ID!) {{ runWorkflow(id: $id) {{ {RUN} }} }}"
READ_RUN = f"query($id: ID!) {{ workflowRun(id: $id) {{ {RUN} }} }}"
PROGRESS = f"subscription($id: ID!) {{ workflowRunProgress(id: $id) {{ {RUN} }} }}"


def raw_id(global_id: str) -> str:
    return base64.b64decode(global_id).decode().partition(":")[2]


def three_steps(prompt: str = "a lighthouse at dawn") -> dict[str, Any]:
    """An image, a video starting from it, and an upscale of it."""
    return {
        "name": "lighthouse",
        "description": "a still, a clip from it, a bigger still",
        "nodes": [
            {"id": "image", "kind": "IMAGE", "input": {"prompt": prompt}},
            {"id": "video", "kind": "VIDEO", "input": {"prompt": "the light turns", "durationSeconds": 4}},
            {"id": "bigger", "kind": "UPSCALE", "input": {"factor": 2}},
        ],
        "edges": [
            {"from": "image", "to": "video", "as": "firstFrameAssetId"},
            {"from": "image", "to": "bigger", "as": "assetId"},
        ],
    }


async def create(client: StudioClient, draft: dict[str, Any]) -> dict[str, Any]:
    return dict((await client.data(CREATE, {"input": draft}))["createWorkflow"])


async def follow_run(client: StudioClient, run_id: str) -> list[dict[str, Any]]:
    """Every state of the run one subscription delivers, until it completes."""
    async with client.socket() as socket:
        assert (await socket.ack())["type"] == "connection_ack"
        op = await socket.subscribe(PROGRESS, {"id": run_id})
        messages = await socket.messages(op, timeout=60)
    assert messages[-1]["type"] == "complete", messages[-1]
    return [m["payload"]["data"]["workflowRunProgress"] for m in messages if m["type"] == "next"]


async def finished_run(client: StudioClient, run_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll (bounded) until the run is final."""
    deadline = time.monotonic() + timeout
    while True:
        run = (await client.data(READ_RUN, {"id": run_id}))["workflowRun"]
        if run["status"] != "RUNNING":
            return dict(run)
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.1)


async def test_a_workflow_is_saved_read_changed_copied_and_deleted(
    user: StudioClient, admin: StudioClient
) -> None:
    saved = await create(user, three_steps())
    assert [node["id"] for node in saved["nodes"]] == ["image", "video", "bigger"]
    assert saved["edges"][0] == {"from": "image", "to": "video", "as": "firstFrameAssetId"}
    assert (await user.data(READ, {"id": saved["id"]}))["workflow"]["runs"]["totalCount"] == 0

    changed_draft = three_steps("a lighthouse in fog") | {"name": "foggy lighthouse"}
    changed = (await user.data(UPDATE, {"id": saved["id"], "input": changed_draft}))["updateWorkflow"]
    assert (
        changed["name"] == "foggy lighthouse"
        and changed["nodes"][0]["input"]["prompt"] == "a lighthouse in fog"
    )
    assert changed["createdAt"] == saved["createdAt"] and changed["updatedAt"] > saved["updatedAt"]

    copy = (await admin.data(CLONE, {"id": saved["id"]}))["cloneWorkflow"]
    assert copy["id"] != saved["id"] and copy["name"] == "foggy lighthouse (copy)"
    assert copy["owner"]["id"] != saved["owner"]["id"], "the copy belongs to whoever copied it"
    assert copy["nodes"] == changed["nodes"] and copy["edges"] == changed["edges"]

    listed = (await user.data(LIST))["workflows"]
    assert [w["id"] for w in listed][:1] == [saved["id"]]

    assert (await user.data(DELETE, {"id": saved["id"]}))["deleteWorkflow"] is True
    assert_error(await user.error(READ, {"id": saved["id"]}), "NOT_FOUND")
    assert saved["id"] not in [w["id"] for w in (await user.data(LIST))["workflows"]]
    assert (await admin.data(READ, {"id": copy["id"]}))["workflow"]["name"] == copy["name"], "copies stay"


async def test_workflows_page_newest_first_after_a_workflow_id(user: StudioClient) -> None:
    made = [await create(user, three_steps() | {"name": f"w{i}"}) for i in range(3)]
    first = (await user.data(LIST, {"first": 2}))["workflows"]
    assert [w["name"] for w in first] == ["w2", "w1"]
    rest = (await user.data(LIST, {"first": 2, "after": first[-1]["id"]}))["workflows"]
    assert [w["id"] for w in rest] == [made[0]["id"]]


async def test_a_run_feeds_the_image_into_the_video_and_the_upscale_and_streams_to_success(
    user: StudioClient,
) -> None:
    saved = await create(user, three_steps())
    run = (await user.data(RUN_IT, {"id": saved["id"]}))["runWorkflow"]
    assert run["status"] == "RUNNING" and run["workflow"]["id"] == saved["id"]
    assert [s["status"] for s in run["steps"]][1:] == ["QUEUED", "QUEUED"]
    assert [s["job"] for s in run["steps"]][1:] == [None, None], "waiting steps have no job yet"

    states = await follow_run(user, run["id"])
    assert states[0]["status"] == "RUNNING" and len(states) >= 3
    final = states[-1]
    assert final["status"] == "SUCCEEDED" and final["finishedAt"]
    assert [job["status"] for job in final["jobs"]] == ["SUCCEEDED"] * 3
    image, video, bigger = (step["job"] for step in final["steps"])
    image_asset = image["assets"][0]["id"]
    assert video["kind"] == "VIDEO" and video["input"]["firstFrameAssetId"] == raw_id(image_asset)
    assert bigger["kind"] == "UPSCALE" and bigger["input"]["assetId"] == raw_id(image_asset)
    assert video["assets"][0]["parent"]["id"] == image_asset
    assert bigger["assets"][0]["parent"]["id"] == image_asset

    runs = (await user.data(READ, {"id": saved["id"]}))["workflow"]["runs"]
    assert runs["totalCount"] == 1 and runs["edges"][0]["node"] == {"id": run["id"], "status": "SUCCEEDED"}
    by_node = await user.data(
        "query($w: ID!, $r: ID!) { w: node(id: $w) { ... on Workflow { name } } r: node(id: $r) { ... on WorkflowRun { status } } }",
        {"w": saved["id"], "r": run["id"]},
    )
    assert by_node == {"w": {"name": "lighthouse"}, "r": {"status": "SUCCEEDED"}}


async def test_when_the_first_step_fails_its_dependants_fail_naming_it_and_never_run(
    user: StudioClient,
) -> None:
    saved = await create(user, three_steps("[[blocked]] a lighthouse"))
    run = (await user.data(RUN_IT, {"id": saved["id"]}))["runWorkflow"]
    final = await finished_run(user, run["id"])
    assert final["status"] == "FAILED"
    image, video, bigger = final["steps"]
    assert image["status"] == "FAILED" and "CONTENT_BLOCKED" in image["reason"]
    for step in (video, bigger):
        assert step["status"] == "FAILED" and step["job"] is None
        assert "upstream node 'image' failed" in step["reason"] and "CONTENT_BLOCKED" in step["reason"]
    assert len(final["jobs"]) == 1, "nothing downstream was submitted"


async def test_a_run_survives_the_workflow_being_changed_and_deleted(user: StudioClient) -> None:
    saved = await create(user, three_steps())
    run = (await user.data(RUN_IT, {"id": saved["id"]}))["runWorkflow"]
    lone = {
        "name": "just text",
        "nodes": [{"id": "t", "kind": "TEXT", "input": {"prompt": "hi"}}],
        "edges": [],
    }
    await user.data(UPDATE, {"id": saved["id"], "input": lone})
    await user.data(DELETE, {"id": saved["id"]})
    final = await finished_run(user, run["id"])
    assert final["status"] == "SUCCEEDED" and len(final["jobs"]) == 3
    assert final["workflow"]["id"] == saved["id"]


async def test_a_bad_graph_is_refused_naming_the_offending_node_and_nothing_is_saved(
    user: StudioClient,
) -> None:
    before = len((await user.data(LIST))["workflows"])
    cycle = three_steps() | {
        "edges": [
            {"from": "image", "to": "bigger", "as": "assetId"},
            {"from": "bigger", "to": "image", "as": "referenceAssetIds"},
        ]
    }
    error = await user.error(CREATE, {"input": cycle})
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] in ("input.edges[0].to", "input.edges[1].to")
    assert "cycle" in error["message"]

    empty_prompt = three_steps()
    empty_prompt["nodes"][1]["input"]["prompt"] = " "
    error = await user.error(CREATE, {"input": empty_prompt})
    assert error["extensions"]["field"] == "input.nodes[1].input.prompt"

    text_frame = three_steps()
    text_frame["nodes"][0]["kind"] = "TEXT"
    error = await user.error(CREATE, {"input": text_frame})
    assert error["extensions"]["field"] == "input.edges[0].from"
    assert len((await user.data(LIST))["workflows"]) == before


async def test_a_node_may_start_from_a_library_asset_given_by_its_global_id(user: StudioClient) -> None:
    job = await submit(user, "generateImage", {"prompt": "a harbour"})
    await wait_for_jobs(user)
    asset = (await user.data("query($id: ID!) { job(id: $id) { assets { id } } }", {"id": job["id"]}))["job"]
    asset_id = asset["assets"][0]["id"]
    draft = {
        "name": "bigger harbour",
        "nodes": [{"id": "up", "kind": "UPSCALE", "input": {"assetId": asset_id, "factor": 4}}],
        "edges": [],
    }
    saved = await create(user, draft)
    assert saved["nodes"][0]["input"] == {"assetId": asset_id, "factor": 4}
    final = await finished_run(user, (await user.data(RUN_IT, {"id": saved["id"]}))["runWorkflow"]["id"])
    assert final["status"] == "SUCCEEDED"
    assert final["steps"][0]["job"]["assets"][0]["parent"]["id"] == asset_id


async def test_strangers_find_nothing_and_viewers_cannot_run(
    user: StudioClient, stranger: StudioClient, viewer: StudioClient
) -> None:
    saved = await create(user, three_steps())
    run = (await user.data(RUN_IT, {"id": saved["id"]}))["runWorkflow"]
    for document, variables in (
        (READ, {"id": saved["id"]}),
        (READ_RUN, {"id": run["id"]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": saved["id"]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": run["id"]}),
        (RUN_IT, {"id": saved["id"]}),
        (CLONE, {"id": saved["id"]}),
        (DELETE, {"id": saved["id"]}),
        (UPDATE, {"id": saved["id"], "input": three_steps()}),
    ):
        assert_error(await stranger.error(document, variables), "NOT_FOUND")
    assert_error(await viewer.error(RUN_IT, {"id": saved["id"]}), "FORBIDDEN")
    async with stranger.socket() as socket:
        await socket.ack()
        op = await socket.subscribe(PROGRESS, {"id": run["id"]})
        messages = await socket.messages(op)
    payload = messages[0]["payload"]
    errors = payload if messages[0]["type"] == "error" else payload["errors"]
    assert_error(errors[0], "NOT_FOUND")
    await finished_run(user, run["id"])


async def test_a_team_the_caller_is_not_in_is_not_found(user: StudioClient) -> None:
    team = base64.b64encode(b"Team:someone-elses").decode()
    assert_error(await user.error("query($t: ID) { workflows(teamId: $t) { id } }", {"t": team}), "NOT_FOUND")
    assert_error(await user.error(CREATE, {"input": three_steps() | {"teamId": team}}), "NOT_FOUND")


async def test_the_runs_webhook_is_called_once_when_the_whole_run_is_finished(
    hooks_studio: StudioProcess,
    hooks_dir: Path,
    receiver: Receiver,
) -> None:
    client = await new_client(hooks_studio, hooks_dir, "workflow-hooks")
    workflow = await create(client, three_steps("a harbour at noon"))
    path = receiver.path("workflow-run")
    run_it = f"mutation($id: ID!, $hook: WebhookInput) {{ runWorkflow(id: $id, webhook: $hook) {{ {RUN} }} }}"
    run = (await client.data(run_it, {"id": workflow["id"], "hook": {"url": receiver.url(path)}}))[
        "runWorkflow"
    ]
    final = await finished_run(client, run["id"])
    deadline = time.monotonic() + 10
    while not receiver.at(path):
        assert time.monotonic() < deadline, "the run's webhook never came"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # room for more calls (one per step, say), which must not come

    (request,) = receiver.at(path)
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["type"] == "workflow_run.finished"
    data = payload["data"]
    assert (data["id"], data["status"]) == (run["id"], final["status"]) == (run["id"], "SUCCEEDED")
    assert sorted(step["node"] for step in data["steps"]) == sorted(step["node"] for step in final["steps"])
    assert all(step["status"] == "SUCCEEDED" and step["jobId"] for step in data["steps"])
