"""Jobs, generation inputs and models in the schema."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.types import Info

from domain.clock import from_iso
from domain.forecast import QueueForecast
from domain.jobs import Job as DomainJob
from domain.jobs import JobStatus as DomainJobStatus
from domain.ports import Document
from domain.webhook_urls import DEFAULT_EVENTS
from domain.webhooks import DeliveryStatus, deliveries_for
from schema.assets import Asset
from schema.context import StudioContext
from schema.nodes import Node, PageInfo, encode_id
from schema.scalars import JSON, ErrorCode, JobKind, JobStatus, moment
from schema.users import User

if TYPE_CHECKING:
    from schema.batches import Batch
    from schema.teams import Team


@strawberry.type
class JobError:
    code: ErrorCode
    message: str
    retryable: bool


strawberry.enum(DeliveryStatus, name="WebhookDeliveryStatus")


@strawberry.type(description="One POST of a webhook delivery.")
class WebhookAttempt:
    at: datetime
    http_status: int | None = strawberry.field(description="The receiver's status; null if none came.")
    error: str | None = strawberry.field(description="Why the attempt failed; null when it succeeded.")
    duration_ms: int


@strawberry.type(description="A job's webhook call for one status: every attempt, and what happens next.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="Also the webhook-id header of every attempt.")
    url: str
    event: JobStatus
    status: DeliveryStatus
    attempts: list[WebhookAttempt]
    next_attempt_at: datetime | None = strawberry.field(description="Null once DELIVERED or FAILED.")

    @classmethod
    def from_doc(cls, doc: Document) -> WebhookDelivery:
        data = doc.data
        return cls(
            id=strawberry.ID(doc.id),
            url=data["url"],
            event=JobStatus(data["event"]),
            status=DeliveryStatus(data["status"]),
            attempts=[
                WebhookAttempt(
                    at=from_iso(a["at"]),
                    http_status=a.get("http_status"),
                    error=a.get("error"),
                    duration_ms=int(a.get("duration_ms", 0)),
                )
                for a in data.get("attempts") or ()
            ],
            next_attempt_at=moment(data.get("next_attempt_at")),
        )


@strawberry.type(description="One generation: its status and progress while it runs, its assets when done.")
class Job(Node):
    _job: strawberry.Private[DomainJob]
    # A queued job's place in the queue, read once however many of its fields need it.
    _position: strawberry.Private[asyncio.Future[int] | None] = None

    @classmethod
    def from_doc(cls, doc: Document) -> Job:
        return cls(id=encode_id("Job", doc.id), _job=DomainJob.from_doc(doc.id, doc.data))

    @strawberry.field
    def kind(self) -> JobKind:
        return self._job.kind

    @strawberry.field
    def status(self) -> JobStatus:
        return self._job.status

    @strawberry.field(description="0..1, never goes back.")
    def progress(self) -> float:
        return self._job.progress

    @strawberry.field(
        description="queued, starting, generating, encoding, uploading, done, failed, cancelled"
    )
    def stage(self) -> str:
        return self._job.stage

    @strawberry.field
    def message(self) -> str | None:
        return self._job.message

    @strawberry.field(
        description="Seconds until the job should be finished: the generator's estimate while it runs; "
        "for a queued job, the jobs ahead at the recent pace plus its model's typical time. "
        "Null when nothing is known yet."
    )
    def eta_seconds(self, info: Info[StudioContext, None]) -> int | None:
        # Not `async def`: only a queued job needs the forecast's reads. A running job's ETA stays a
        # plain value, so a subscription event is still completed without awaiting anything.
        job = self._job
        if job.status is DomainJobStatus.QUEUED:
            return self._queued_eta(info.context.services.forecast)  # type: ignore[return-value]
        return None if job.eta_seconds is None else int(job.eta_seconds)

    async def _queued_eta(self, forecast: QueueForecast) -> int | None:
        return await forecast.eta_seconds(self._job.model, await self._queue_position(forecast))

    async def _queue_position(self, forecast: QueueForecast) -> int:
        if self._position is None:
            self._position = asyncio.ensure_future(forecast.position(self._job.created_at))
        return await self._position

    @strawberry.field(description="1 for the next job to run; null unless QUEUED.")
    def queue_position(self, info: Info[StudioContext, None]) -> int | None:
        if self._job.status is not DomainJobStatus.QUEUED:
            return None
        return self._queue_position(info.context.services.forecast)  # type: ignore[return-value]

    @strawberry.field
    def model(self) -> str:
        return self._job.model

    @strawberry.field(description="The input as accepted (defaults filled in).")
    def input(self) -> JSON:
        return cast(JSON, self._job.input)

    @strawberry.field(description="The results, once SUCCEEDED.")
    async def assets(self, info: Info[StudioContext, None]) -> list[Asset]:
        if not self._job.asset_ids:
            return []
        docs = await info.context.loaders.assets.load_many(list(self._job.asset_ids))
        return [Asset.from_doc(doc) for doc in docs if doc is not None and not doc.data.get("deleted_at")]

    @strawberry.field
    def error(self) -> JobError | None:
        error = self._job.error
        if error is None:
            return None
        return JobError(code=ErrorCode(error.code), message=error.message, retryable=error.retryable)

    @strawberry.field
    def attempts(self) -> int:
        return self._job.attempts

    @strawberry.field(description="Served from an identical earlier request.")
    def cached(self) -> bool:
        return self._job.cached

    @strawberry.field
    def cost_usd(self) -> float:
        return self._job.cost_usd

    @strawberry.field
    async def owner(self, info: Info[StudioContext, None]) -> User:
        doc = await info.context.loaders.users.load(self._job.owner_id)
        if doc is None:
            raise RuntimeError("job owner is missing")
        return User.from_doc(doc)

    @strawberry.field(description="The team the job works for; null for personal jobs.")
    async def team(
        self, info: Info[StudioContext, None]
    ) -> Annotated[Team, strawberry.lazy("schema.teams")] | None:
        from schema.teams import team_of

        return await team_of(info, self._job.team_id)

    @strawberry.field(description="The batch the job was submitted in; null for single jobs.")
    async def batch(
        self, info: Info[StudioContext, None]
    ) -> Annotated[Batch, strawberry.lazy("schema.batches")] | None:
        from schema.batches import Batch

        if self._job.batch_id is None:
            return None
        doc = await info.context.loaders.batches.load(self._job.batch_id)
        return Batch.from_doc(doc) if doc is not None else None

    @strawberry.field
    def created_at(self) -> datetime:
        return moment(self._job.created_at)  # type: ignore[return-value]

    @strawberry.field
    def started_at(self) -> datetime | None:
        return moment(self._job.started_at)

    @strawberry.field
    def finished_at(self) -> datetime | None:
        return moment(self._job.finished_at)

    @strawberry.field(description="The job's webhook calls, if it asked for any; its owner and admins only.")
    async def webhook_deliveries(self, info: Info[StudioContext, None]) -> list[WebhookDelivery]:
        job = self._job
        docs = await deliveries_for(info.context.services.docs, info.context.actor, job.id, job.owner_id)
        return [WebhookDelivery.from_doc(doc) for doc in docs]


@strawberry.type
class JobEdge:
    node: Job
    cursor: str


@strawberry.type
class JobConnection:
    edges: list[JobEdge]
    page_info: PageInfo
    _total: strawberry.Private[Any]

    @strawberry.field
    async def total_count(self) -> int:
        return int(await self._total())


@strawberry.input
class JobFilter:
    statuses: list[JobStatus] | None = None
    kinds: list[JobKind] | None = None
    team_id: strawberry.ID | None = strawberry.field(
        default=None, description="A team's jobs instead of the caller's; its members only."
    )
    batch_id: strawberry.ID | None = strawberry.field(
        default=None, description="A batch's jobs (whoever may see the batch)."
    )


@strawberry.type(description="One event a subscription delivers: the job as it is now.")
class JobEvent:
    job: Job
    previous_status: JobStatus | None


@strawberry.input(description="Call this URL when the job reaches one of `events` (Standard Webhooks).")
class WebhookInput:
    url: str = strawberry.field(description="https; private, loopback and link-local addresses are refused.")
    events: list[JobStatus] | None = strawberry.field(
        default_factory=lambda: list(DEFAULT_EVENTS), description="Final statuses only."
    )


# The options every generate input offers, described once (a strawberry field belongs to one class).
def _team_field() -> Any:
    return strawberry.field(
        default=None, description="Make the job and its assets the team's (team OWNERs and EDITORs)."
    )


def _collection_field() -> Any:
    return strawberry.field(default=None, description="File the results into this collection.")


def _idempotency_field() -> Any:
    return strawberry.field(
        default=None, description="Same key + same caller within 24 h = the same job, no second charge."
    )


def _cache_field() -> Any:
    return strawberry.field(
        default=True,
        description="Answer from an identical earlier request (same model, input and seed) when there is "
        "one the caller may see: a job already SUCCEEDED, cached, at no cost. false: always generate.",
    )


@strawberry.input
class GenerateImageInput:
    prompt: str
    negative_prompt: str | None = None
    model: str | None = strawberry.field(default=None, description="Default from settings; see Query.models.")
    aspect_ratio: str | None = strawberry.field(default="1:1", description="1:1, 3:4, 4:3, 9:16, 16:9")
    count: int | None = strawberry.field(default=1, description="1..4 images in one job.")
    seed: int | None = None
    reference_asset_ids: list[strawberry.ID] | None = None
    team_id: strawberry.ID | None = _team_field()
    collection_id: strawberry.ID | None = _collection_field()
    webhook: WebhookInput | None = None
    idempotency_key: str | None = _idempotency_field()
    cache: bool | None = _cache_field()


@strawberry.input
class GenerateVideoInput:
    prompt: str
    negative_prompt: str | None = None
    model: str | None = None
    aspect_ratio: str | None = "16:9"
    duration_seconds: int | None = strawberry.field(
        default=8, description="Model-dependent; see Query.models."
    )
    generate_audio: bool | None = False
    seed: int | None = None
    first_frame_asset_id: strawberry.ID | None = None
    last_frame_asset_id: strawberry.ID | None = None
    reference_asset_ids: list[strawberry.ID] | None = None
    team_id: strawberry.ID | None = _team_field()
    collection_id: strawberry.ID | None = _collection_field()
    webhook: WebhookInput | None = None
    idempotency_key: str | None = _idempotency_field()
    cache: bool | None = _cache_field()


@strawberry.input
class GenerateTextInput:
    prompt: str
    system_prompt: str | None = None
    model: str | None = None
    temperature: float | None = 0.7
    max_output_tokens: int | None = 1024
    team_id: strawberry.ID | None = _team_field()
    webhook: WebhookInput | None = None
    idempotency_key: str | None = _idempotency_field()
    cache: bool | None = _cache_field()


@strawberry.input
class UpscaleImageInput:
    asset_id: strawberry.ID
    factor: int | None = strawberry.field(default=2, description="2 or 4")
    model: str | None = None
    team_id: strawberry.ID | None = _team_field()
    webhook: WebhookInput | None = None
    idempotency_key: str | None = _idempotency_field()
    cache: bool | None = _cache_field()


@strawberry.type(description="A model the studio offers, with its price.")
class ModelInfo:
    id: str
    kind: JobKind
    display_name: str
    unit_cost_usd: float = strawberry.field(description="Per image, per video second, per 1k tokens.")
    cost_unit: str
    max_count: int | None
    durations_seconds: list[int] | None
    aspect_ratios: list[str]
    is_default: bool = strawberry.field(
        description="The model a request of this kind gets when it names none."
    )
