"""Subscription resolvers: job events from the hub (one watch per job per process)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator

from strawberry.types import Info

from domain.access import Actor, require_active
from domain.desk import may_see_job
from domain.errors import not_found
from domain.jobs import JOBS
from domain.jobs import JobStatus as DomainJobStatus
from domain.ports import Document, Filter
from schema.context import StudioContext
from schema.jobs import Job, JobEvent
from schema.nodes import decode_id
from schema.scalars import JobStatus

Ctx = Info[StudioContext, None]
_ACTIVE = [DomainJobStatus.QUEUED.value, DomainJobStatus.RUNNING.value]
_VISIBLE = ("status", "progress", "stage", "message", "eta_seconds", "asset_ids", "attempts", "error")


def _may_see(actor: Actor, doc: Document | None) -> bool:
    return doc is not None and may_see_job(actor, doc.data)


def _fingerprint(doc: Document) -> tuple[object, ...]:
    """What a subscriber can see change; lease renewals alone are not events."""
    return tuple(repr(doc.data.get(name)) for name in _VISIBLE)


_EVENTS: OrderedDict[tuple[str, str, DomainJobStatus | None], JobEvent] = OrderedDict()
_EVENTS_KEPT = 1000


def _shared_event(doc: Document, previous: DomainJobStatus | None) -> JobEvent:
    """One JobEvent per job version and previous status, shared by every subscriber of the job.

    Sharing lets the executor run a selection once per event for all sockets of one caller.
    """
    key = (doc.id, doc.version, previous)
    event = _EVENTS.get(key)
    if event is None:
        event = _EVENTS[key] = JobEvent(job=Job.from_doc(doc), previous_status=previous)
        if len(_EVENTS) > _EVENTS_KEPT:
            _EVENTS.popitem(last=False)
    return event


async def job_progress(info: Ctx, id: str) -> AsyncGenerator[JobEvent, None]:
    actor = require_active(info.context.actor)
    job_id = decode_id(id, "Job")
    previous: DomainJobStatus | None = None
    seen: tuple[object, ...] | None = None
    async for doc in info.context.services.jobs_hub.subscribe(job_id):
        if doc is None or not _may_see(actor, doc):
            raise not_found("job", id)
        fingerprint = _fingerprint(doc)
        if fingerprint == seen:
            continue
        seen = fingerprint
        status = DomainJobStatus(doc.data["status"])
        yield _shared_event(doc, previous)
        previous = status
        if status.is_final:
            return


async def my_jobs(info: Ctx, statuses: list[JobStatus] | None = None) -> AsyncGenerator[JobEvent, None]:
    actor = require_active(info.context.actor)
    wanted = {status.value for status in statuses} if statuses else None
    docs = info.context.services.docs
    last: dict[str, str] = {}
    first = True
    filters = (Filter("owner_id", "==", actor.id), Filter("status", "in", _ACTIVE))
    async for changes in docs.watch_query(JOBS, filters):
        for change in changes:
            doc: Document | None = change.document
            if change.kind == "removed":
                doc = await docs.get(JOBS, change.document.id)  # its final state
                if doc is None:
                    continue
            assert doc is not None
            status = doc.data["status"]
            previous = last.get(doc.id)
            if DomainJobStatus(status).is_final:
                last.pop(doc.id, None)
            else:
                last[doc.id] = status
            if first or (wanted is not None and status not in wanted):
                continue
            yield JobEvent(
                job=Job.from_doc(doc),
                previous_status=DomainJobStatus(previous) if previous else None,
            )
        first = False
