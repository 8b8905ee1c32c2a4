"""A workflow run started on an API-only process, moved on by separate worker processes — one of them
killed halfway — and followed live from the API process until it succeeds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.e2e.conftest import Processes
from tests.support.client import StudioClient
from tests.support.server import mint_token

FAST = {"GENMEDIA_LOCAL_SPEED": "4", "GENMEDIA_WORKFLOW_RECHECK_SECONDS": "1"}
RUN = "id status steps { node status reason job { id status } }"
DRAFT = {
    "name": "lighthouse",
    "nodes": [
        {"id": "image", "kind": "IMAGE", "input": {"prompt": "a lighthouse"}},
        {"id": "video", "kind": "VIDEO", "input": {"prompt": "the beam turns", "durationSeconds": 8}},
        {"id": "bigger", "kind": "UPSCALE", "input": {}},
    ],
    "edges": [
        {"from": "image", "to": "video", "as": "firstFrameAssetId"},
        {"from": "image", "to": "bigger", "as": "assetId"},
    ],
}


async def step_status(client: StudioClient, run_id: str, node: str) -> str:
    run = await client.data(f"query($id: ID!) {{ workflowRun(id: $id) {{ {RUN} }} }}", {"id": run_id})
    return next(str(s["status"]) for s in run["workflowRun"]["steps"] if s["node"] == node)


async def test_a_run_moves_on_in_worker_processes_and_survives_losing_one(processes: Processes) -> None:
    server = processes.serve({"GENMEDIA_WORKERS": "0", **FAST})
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "flow@example.com"))
    created = await client.data(
        "mutation($input: WorkflowInput!) { createWorkflow(input: $input) { id } }", {"input": DRAFT}
    )
    started = await client.data(
        f"mutation($id: ID!) {{ runWorkflow(id: $id) {{ {RUN} }} }}", {"id": created["createWorkflow"]["id"]}
    )
    run: dict[str, Any] = started["runWorkflow"]
    assert [s["status"] for s in run["steps"]] == ["QUEUED"] * 3 and run["steps"][0]["job"] is not None

    async with client.socket() as socket:
        await socket.ack()
        op = await socket.subscribe(
            f"subscription($id: ID!) {{ workflowRunProgress(id: $id) {{ {RUN} }} }}", {"id": run["id"]}
        )
        first = processes.worker(FAST)
        deadline = time.monotonic() + 30
        while await step_status(client, run["id"], "image") != "SUCCEEDED":
            assert time.monotonic() < deadline, processes.logs()
            await asyncio.sleep(0.05)
        first.kill()  # the video (and maybe the upscale) is left queued or running under a dead lease
        processes.worker(FAST)
        messages = await socket.messages(op, timeout=60)

    states = [m["payload"]["data"]["workflowRunProgress"] for m in messages if m["type"] == "next"]
    assert messages[-1]["type"] == "complete", messages[-1]
    final = states[-1]
    assert final["status"] == "SUCCEEDED", (final, processes.logs())
    assert [s["job"]["status"] for s in final["steps"]] == ["SUCCEEDED"] * 3
