"""Workflow resolvers: inputs decoded (global ids to raw ids), one domain call, schema types out."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.types import Info

from domain.access import require_active
from domain.errors import bad_input, not_found
from domain.jobs import JobStatus as DomainJobStatus
from domain.pages import PageRequest
from domain.ports import Document
from domain.workflow_graph import ALL_FEEDS, REFERENCES
from domain.workflow_runs import may_read_run
from resolvers.inputs import asset_ref, webhook_input
from schema.context import StudioContext
from schema.jobs import WebhookInput
from schema.nodes import PageInfo, decode_id
from schema.workflows import (
    Workflow,
    WorkflowInput,
    WorkflowRun,
    WorkflowRunConnection,
    WorkflowRunEdge,
)

Ctx = Info[StudioContext, None]


def _node_input(values: Any, path: str) -> Any:
    """A node's JSON input with the asset ids clients give (global ids) made raw."""
    if not isinstance(values, dict):
        return values  # the domain refuses it at the node's path
    raw = dict(values)
    for field in ALL_FEEDS:
        value = raw.get(field)
        if value is None:
            continue
        where = f"{path}.{field}"
        if field == REFERENCES:
            if not isinstance(value, list):
                raise bad_input(where, f"{field} is a list of asset ids")
            raw[field] = [asset_ref(item, where) if isinstance(item, str) else item for item in value]
        elif isinstance(value, str):
            raw[field] = asset_ref(value, where)
    return raw


def draft_of(data: WorkflowInput) -> dict[str, Any]:
    """The WorkflowInput as the domain checks it."""
    return {
        "name": data.name,
        "description": data.description,
        "teamId": decode_id(data.team_id, "Team", "input.teamId") if data.team_id is not None else None,
        "nodes": [
            {
                "id": node.id,
                "kind": node.kind.value,
                "input": _node_input(node.input, f"input.nodes[{i}].input"),
            }
            for i, node in enumerate(data.nodes)
        ],
        "edges": [{"from": edge.from_, "to": edge.to, "as": edge.as_} for edge in data.edges],
    }


async def workflow(info: Ctx, id: strawberry.ID) -> Workflow | None:
    doc = await info.context.services.workflows.get(info.context.actor, decode_id(id, "Workflow"))
    return Workflow.from_doc(doc)


async def workflows(
    info: Ctx, team_id: strawberry.ID | None = None, first: int | None = 20, after: str | None = None
) -> list[Workflow]:
    team = decode_id(team_id, "Team", "teamId") if team_id is not None else None
    last = decode_id(after, "Workflow", "after") if after is not None else None
    docs = await info.context.services.workflows.list(info.context.actor, team, first, last)
    return [Workflow.from_doc(doc) for doc in docs]


async def workflow_run(info: Ctx, id: strawberry.ID) -> WorkflowRun | None:
    doc = await info.context.services.workflow_runs.get(info.context.actor, decode_id(id, "WorkflowRun"))
    return WorkflowRun.from_doc(doc)


async def runs_of(
    info: Ctx, workflow: Document, first: int | None, after: str | None
) -> WorkflowRunConnection:
    page = await info.context.services.workflow_runs.runs_of(workflow, PageRequest(first=first, after=after))
    edges = [
        WorkflowRunEdge(node=WorkflowRun.from_doc(doc, workflow), cursor=cursor)
        for doc, cursor in zip(page.items, page.cursors, strict=True)
    ]
    return WorkflowRunConnection(edges=edges, page_info=PageInfo.of(page), _total=page.total)


async def create_workflow(info: Ctx, input: WorkflowInput) -> Workflow:
    doc = await info.context.services.workflows.create(info.context.actor, draft_of(input))
    return Workflow.from_doc(doc)


async def update_workflow(info: Ctx, id: strawberry.ID, input: WorkflowInput) -> Workflow:
    workflow_id = decode_id(id, "Workflow")
    doc = await info.context.services.workflows.update(info.context.actor, workflow_id, draft_of(input))
    return Workflow.from_doc(doc)


async def clone_workflow(info: Ctx, id: strawberry.ID, name: str | None = None) -> Workflow:
    doc = await info.context.services.workflows.clone(info.context.actor, decode_id(id, "Workflow"), name)
    return Workflow.from_doc(doc)


async def delete_workflow(info: Ctx, id: strawberry.ID) -> bool:
    return await info.context.services.workflows.delete(info.context.actor, decode_id(id, "Workflow"))


async def run_workflow(info: Ctx, id: strawberry.ID, webhook: WebhookInput | None = None) -> WorkflowRun:
    workflow_id = decode_id(id, "Workflow")
    doc = await info.context.services.workflow_runs.start(
        info.context.actor, workflow_id, webhook_input(webhook)
    )
    return WorkflowRun.from_doc(doc)


async def workflow_run_progress(info: Ctx, id: str) -> AsyncGenerator[WorkflowRun, None]:
    actor = require_active(info.context.actor)
    run_id = decode_id(id, "WorkflowRun")
    loader = info.context.loaders.jobs
    async for doc in info.context.services.runs_hub.subscribe(run_id):
        if doc is None or not may_read_run(actor, doc.data):
            raise not_found("WorkflowRun", id)
        for step in doc.data["steps"]:
            if step.get("job_id"):
                loader.clear(step["job_id"])  # the connection's loader must not show a job as it was
        yield WorkflowRun.from_doc(doc)
        if DomainJobStatus(doc.data["status"]).is_final:
            return
