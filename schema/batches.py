"""Batches in the schema: the Batch node and its input."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from domain.batch_tally import ended_without_result
from domain.ports import Document
from schema.context import StudioContext
from schema.jobs import GenerateImageInput, GenerateVideoInput, WebhookInput
from schema.nodes import Node, encode_id
from schema.scalars import JobStatus, moment

if TYPE_CHECKING:
    from schema.jobs import Job


@strawberry.type(
    description="Generations submitted together: counted as they finish, one webhook at the end."
)
class Batch(Node):
    _data: strawberry.Private[dict[str, Any]]

    @classmethod
    def from_doc(cls, doc: Document) -> Batch:
        return cls(id=encode_id("Batch", doc.id), _data=dict(doc.data))

    @strawberry.field(description="The batch's jobs, in the order they were given (images, then videos).")
    async def jobs(
        self, info: Info[StudioContext, None]
    ) -> list[Annotated[Job, strawberry.lazy("schema.jobs")]]:
        from schema.jobs import Job

        docs = await info.context.loaders.jobs.load_many(list(self._data.get("job_ids") or ()))
        return [Job.from_doc(doc) for doc in docs if doc is not None]

    @strawberry.field
    def total(self) -> int:
        return int(self._data["total"])

    @strawberry.field
    def succeeded(self) -> int:
        return int(self._data.get("succeeded", 0))

    @strawberry.field(description="Jobs that ended without results: failed or cancelled.")
    def failed(self) -> int:
        return ended_without_result(self._data)

    @strawberry.field(description="How many of `failed` were cancelled.")
    def cancelled(self) -> int:
        return int(self._data.get("cancelled", 0))

    @strawberry.field(
        description="RUNNING until every job is finished; then SUCCEEDED (all succeeded), "
        "CANCELLED (all cancelled) or FAILED."
    )
    def status(self) -> JobStatus:
        return JobStatus(self._data["status"])

    @strawberry.field
    def created_at(self) -> datetime:
        return moment(self._data["created_at"])  # type: ignore[return-value]

    @strawberry.field
    def finished_at(self) -> datetime | None:
        return moment(self._data.get("finished_at"))


@strawberry.input(description="1..50 generations in all; each item is checked as its own mutation would.")
class GenerateBatchInput:
    images: list[GenerateImageInput] | None = strawberry.field(
        default=None, description="idempotencyKey is refused here; each item's webhook is its job's."
    )
    videos: list[GenerateVideoInput] | None = None
    webhook: WebhookInput | None = strawberry.field(
        default=None, description="Called once the whole batch is finished (type batch.finished)."
    )
