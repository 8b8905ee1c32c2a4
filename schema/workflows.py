"""Workflows in the schema: saved graphs of generation steps, their runs, and the inputs that make them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.types import Info

from domain.ports import Document
from domain.workflow_graph import ALL_FEEDS, REFERENCES
from domain.workflow_plan import WAITING
from schema.context import StudioContext
from schema.jobs import Job, WebhookInput
from schema.nodes import Node, PageInfo, encode_id
from schema.scalars import JSON, JobKind, JobStatus, moment
from schema.users import User

if TYPE_CHECKING:
    from schema.teams import Team

__all__ = ["WebhookInput"]
Ctx = Info[StudioContext, None]


def shown_input(values: dict[str, Any]) -> dict[str, Any]:
    """A node's input as clients write it: asset ids as global ids."""
    shown = dict(values)
    for field in ALL_FEEDS:
        value = shown.get(field)
        if field == REFERENCES and isinstance(value, list):
            shown[field] = [encode_id("Asset", str(item)) for item in value]
        elif isinstance(value, str):
            shown[field] = encode_id("Asset", value)
    return shown


@strawberry.type(description="One step of a workflow: the input of one generate*/upscale mutation.")
class WorkflowNode:
    id: str
    kind: JobKind
    input: JSON = strawberry.field(description="The mutation's input, without the fields edges feed.")


@strawberry.type(description="Feeds the first asset `from` makes into the input field `as` of `to`.")
class WorkflowEdge:
    from_: str = strawberry.field(name="from")
    to: str
    as_: str = strawberry.field(
        name="as", description="firstFrameAssetId | lastFrameAssetId | referenceAssetIds (appended) | assetId"
    )


async def _owner(info: Ctx, user_id: str) -> User:
    doc = await info.context.loaders.users.load(user_id)
    if doc is None:
        raise RuntimeError("owner is missing")
    return User.from_doc(doc)


@strawberry.type(description="A saved graph of generation steps; running it makes one job per node.")
class Workflow(Node):
    _doc: strawberry.Private[Document]

    @classmethod
    def from_doc(cls, doc: Document) -> Workflow:
        return cls(id=encode_id("Workflow", doc.id), _doc=doc)

    @strawberry.field
    def name(self) -> str:
        return str(self._doc.data["name"])

    @strawberry.field
    def description(self) -> str | None:
        return self._doc.data.get("description")

    @strawberry.field
    async def owner(self, info: Ctx) -> User:
        return await _owner(info, self._doc.data["owner_id"])

    @strawberry.field(description="The team that owns it; null for a personal workflow.")
    async def team(self, info: Ctx) -> Annotated[Team, strawberry.lazy("schema.teams")] | None:
        from schema.teams import team_of

        return await team_of(info, self._doc.data.get("team_id"))

    @strawberry.field
    def nodes(self) -> list[WorkflowNode]:
        return [
            WorkflowNode(
                id=node["id"], kind=JobKind(node["kind"]), input=cast(JSON, shown_input(node["input"]))
            )
            for node in self._doc.data["nodes"]
        ]

    @strawberry.field
    def edges(self) -> list[WorkflowEdge]:
        return [WorkflowEdge(from_=e["from"], to=e["to"], as_=e["as"]) for e in self._doc.data["edges"]]

    @strawberry.field(description="Its runs, newest first.")
    async def runs(
        self, info: Ctx, first: int | None = 20, after: str | None = None
    ) -> WorkflowRunConnection:
        from resolvers.workflows import runs_of

        return await runs_of(info, self._doc, first, after)

    @strawberry.field
    def created_at(self) -> datetime:
        return moment(self._doc.data["created_at"])  # type: ignore[return-value]

    @strawberry.field
    def updated_at(self) -> datetime:
        return moment(self._doc.data["updated_at"])  # type: ignore[return-value]


@strawberry.type(description="One step of a run: its node, its job once submitted, and why it failed.")
class WorkflowStep:
    _data: strawberry.Private[dict[str, Any]]

    @strawberry.field(description="The node's id.")
    def node(self) -> str:
        return str(self._data["node"])

    @strawberry.field
    def kind(self) -> JobKind:
        return JobKind(self._data["kind"])

    @strawberry.field(
        description="QUEUED without a job while it waits for its inputs; then its job's status."
    )
    def status(self) -> JobStatus:
        status = self._data["status"]
        return JobStatus.QUEUED if status == WAITING else JobStatus(status)

    @strawberry.field
    async def job(self, info: Ctx) -> Job | None:
        job_id = self._data.get("job_id")
        doc = await info.context.loaders.jobs.load(job_id) if job_id else None
        return Job.from_doc(doc) if doc else None

    @strawberry.field(description="Why the step failed, naming the upstream node when it was never run.")
    def reason(self) -> str | None:
        return self._data.get("reason")


@strawberry.type(description="One run of a workflow: a job per step, started as its inputs exist.")
class WorkflowRun(Node):
    _doc: strawberry.Private[Document]
    _workflow: strawberry.Private[Document | None] = None

    @classmethod
    def from_doc(cls, doc: Document, workflow: Document | None = None) -> WorkflowRun:
        return cls(id=encode_id("WorkflowRun", doc.id), _doc=doc, _workflow=workflow)

    @strawberry.field(description="The workflow it ran (also after the workflow was deleted).")
    async def workflow(self, info: Ctx) -> Workflow:
        doc = self._workflow or await info.context.services.workflows.get_any(self._doc.data["workflow_id"])
        if doc is None:
            raise RuntimeError("the run's workflow is missing")
        return Workflow.from_doc(doc)

    @strawberry.field(
        description="RUNNING until every step is final; SUCCEEDED if all succeeded, else FAILED."
    )
    def status(self) -> JobStatus:
        return JobStatus(self._doc.data["status"])

    @strawberry.field
    def steps(self) -> list[WorkflowStep]:
        return [WorkflowStep(_data=step) for step in self._doc.data["steps"]]

    @strawberry.field(description="The jobs submitted so far, in the workflow's node order.")
    async def jobs(self, info: Ctx) -> list[Job]:
        ids = [step["job_id"] for step in self._doc.data["steps"] if step.get("job_id")]
        docs = await info.context.loaders.jobs.load_many(ids) if ids else []
        return [Job.from_doc(doc) for doc in docs if doc is not None]

    @strawberry.field
    async def owner(self, info: Ctx) -> User:
        return await _owner(info, self._doc.data["owner_id"])

    @strawberry.field
    def created_at(self) -> datetime:
        return moment(self._doc.data["created_at"])  # type: ignore[return-value]

    @strawberry.field
    def finished_at(self) -> datetime | None:
        return moment(self._doc.data.get("finished_at"))


@strawberry.type
class WorkflowRunEdge:
    node: WorkflowRun
    cursor: str


@strawberry.type
class WorkflowRunConnection:
    edges: list[WorkflowRunEdge]
    page_info: PageInfo
    _total: strawberry.Private[Any]

    @strawberry.field
    async def total_count(self) -> int:
        return int(await self._total())


@strawberry.input(description="One step: the input of the generate*/upscale mutation of its kind.")
class WorkflowNodeInput:
    id: str = strawberry.field(description="Unique in the workflow: letters, digits, '_', '.', '-'.")
    kind: JobKind
    input: JSON = strawberry.field(description="As the mutation takes it; asset ids as global ids.")


@strawberry.input(description="Feed the first asset of node `from` into the input field `as` of node `to`.")
class WorkflowEdgeInput:
    from_: str = strawberry.field(name="from")
    to: str
    as_: str = strawberry.field(
        name="as", description="firstFrameAssetId | lastFrameAssetId | referenceAssetIds | assetId"
    )


@strawberry.input
class WorkflowInput:
    name: str
    nodes: list[WorkflowNodeInput]
    edges: list[WorkflowEdgeInput]
    description: str | None = None
    team_id: strawberry.ID | None = strawberry.field(
        default=None, description="Save it for a team (its owners and editors)."
    )
