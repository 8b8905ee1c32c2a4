"""The job desk: taking generation requests, showing jobs to those who may see them, cancelling them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from domain import idempotency
from domain.access import Actor, require_active, require_generate
from domain.batch_tally import BATCHES, batch_of, count_finished
from domain.catalog import Catalog
from domain.clock import new_id, now_iso
from domain.errors import bad_input, conflict, forbidden, not_found
from domain.intake import JobIntake
from domain.jobs import JOBS, Job, JobKind, JobStatus
from domain.moderation import ModerationPolicy
from domain.pages import Page, PageRequest, paginate
from domain.ports import (
    DocStore,
    Document,
    Filter,
    JobQueue,
    Order,
    ResultCache,
    Transaction,
)
from domain.quotas import Booking, QuotaBook, booked_job_fields, give_back
from domain.requests import InputLimits
from domain.terms import TermsOfService
from domain.webhook_urls import WebhookUrls
from domain.webhooks import record_event

log = logging.getLogger("genmedia.desk")


class JobDesk:
    """Creates QUEUED jobs from checked requests and answers questions about them."""

    def __init__(
        self,
        docs: DocStore,
        queue: JobQueue,
        catalog: Catalog,
        *,
        limits: InputLimits = InputLimits(),
        max_page_size: int = 100,
        webhooks: WebhookUrls | None = None,
        cache: ResultCache | None = None,
        quotas: QuotaBook | None = None,
        terms: TermsOfService | None = None,
        moderation: ModerationPolicy | None = None,
    ) -> None:
        self.intake = JobIntake(
            docs, catalog, limits=limits, webhooks=webhooks, cache=cache, moderation=moderation
        )
        self._quotas = quotas
        self._terms = terms
        self._docs = docs
        self._queue = queue
        self._max_page_size = max_page_size

    async def submit(
        self,
        actor: Actor | None,
        kind: JobKind,
        raw: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        webhook: Mapping[str, Any] | None = None,
        use_cache: bool = True,
        team_id: str | None = None,
    ) -> Document:
        """Validate, check the referenced assets, then create the job and hand it to the queue.

        The caller must have accepted the current terms (FORBIDDEN otherwise). A prompt the
        moderation policy refuses is CONTENT_BLOCKED before anything is booked (domain.moderation). The job's share of
        its owner's quota is booked in the transaction that creates it (QUOTA_EXCEEDED, nothing
        created, when it does not fit).

        With an idempotency key, a repeat of the same request within a day returns the first job.
        A `webhook` ({url, events}) is checked (its host resolved, private addresses refused) and
        kept on the job; it is called when the job reaches one of its events. A deterministic
        request made before (domain.request_cache) is answered at once by a job already SUCCEEDED,
        `cached`, at no cost, unless `use_cache` is False.
        With a `team_id` the job and its assets belong to that team (its OWNERs and EDITORs only).
        """
        who = require_generate(actor)
        if self._terms is not None:
            await self._terms.require_accepted(who)
        if team_id is not None:
            check_team_generation(who, team_id)
        key = (
            idempotency.check_key(idempotency_key, "input.idempotencyKey")
            if idempotency_key is not None
            else None
        )
        prepared = await self.intake.prepare(
            who, kind, raw, webhook=webhook, use_cache=use_cache, team_id=team_id
        )
        doc, made = await self._create(who, prepared.data, key, prepared.fingerprint, prepared.booking)
        if made and not prepared.cached:
            await hand_over(self._queue, doc.id)
        elif not made and doc.data.get("status") == JobStatus.QUEUED.value:
            # An idempotent replay: the first enqueue may have failed; enqueueing twice is one delivery.
            await hand_over(self._queue, doc.id, int(doc.data.get("attempts", 0)))
        return doc

    async def _create(
        self, who: Actor, data: dict[str, Any], key: str | None, print_: str, booking: Booking
    ) -> tuple[Document, bool]:
        """Store the new job with its quota booking, or find the one an earlier request with the
        same idempotency key made (booking nothing again); and whether the job is new. A job created
        final (cached) books nothing and queues its webhook."""
        job_id = new_id()
        books = self._quotas is not None and not data["cached"]
        if key is None and not data["cached"] and not books:
            return await self._docs.create(JOBS, job_id, data), True

        async def create_once(tx: Transaction) -> str | None:
            if key is not None:
                earlier = await idempotency.remembered_job(tx, who.id, key, print_)
                if earlier is not None:
                    return earlier
            booked = {}
            if books:
                assert self._quotas is not None
                (record,) = await self._quotas.reserve(tx, who.id, [booking])
                booked = booked_job_fields(record)
            if key is not None:
                idempotency.remember(tx, who.id, key, print_, job_id)
            tx.create(JOBS, job_id, {**data, **booked})
            record_event(tx, job_id, data)
            return None

        async with self._quotas.turn(who.id) if books and self._quotas else contextlib.nullcontext():
            earlier = await self._docs.run_transaction(create_once)
        found = await self._docs.get(JOBS, earlier or job_id)
        if found is None:
            raise not_found("job", earlier or job_id)
        return found, earlier is None

    async def get(self, actor: Actor | None, job_id: str) -> Document:
        """A job its owner, its team's members (or an admin) may see; NOT_FOUND for everyone else."""
        who = require_active(actor)
        doc = await self._docs.get(JOBS, job_id)
        if doc is None or not may_see_job(who, doc.data):
            raise not_found("job", job_id)
        return doc

    async def list(
        self,
        actor: Actor | None,
        page: PageRequest,
        *,
        statuses: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
        team_id: str | None = None,
        batch_id: str | None = None,
    ) -> Page:
        """The caller's jobs (or, with `team_id`, a team's, for its members; with `batch_id`, a
        batch's, for those who may see it), newest first."""
        who = require_active(actor)
        filters = [Filter("owner_id", "==", who.id)]
        if team_id is not None:
            if who.team_role(team_id) is None and not who.user.is_admin:
                raise not_found("team", team_id)
            filters = [Filter("team_id", "==", team_id)]
        if batch_id is not None:
            batch = await self._docs.get(BATCHES, batch_id)
            if batch is None or not may_see_job(who, batch.data):
                raise not_found("batch", batch_id)
            filters = [Filter("batch_id", "==", batch_id)]
        if statuses is not None:
            if not statuses:
                raise bad_input("filter.statuses", "statuses must not be empty")
            filters.append(Filter("status", "in", list(dict.fromkeys(statuses))))
        if kinds is not None:
            if not kinds:
                raise bad_input("filter.kinds", "kinds must not be empty")
            filters.append(Filter("kind", "in", list(dict.fromkeys(kinds))))
        return await paginate(
            self._docs, JOBS, filters, Order("created_at", True), page, max_size=self._max_page_size
        )

    async def cancel(self, actor: Actor | None, job_id: str) -> Document:
        """QUEUED or RUNNING → CANCELLED; the worker running it sees the change and stops."""
        seen = await self.get(actor, job_id)
        who = require_active(actor)
        team_id = seen.data.get("team_id")
        if seen.data.get("owner_id") != who.id and not who.user.is_admin:
            if team_id is None or who.team_role(str(team_id)) not in ("OWNER", "EDITOR"):
                raise forbidden("Only the team's owners and editors may cancel its jobs.")

        async def move(tx: Transaction) -> None:
            current = await tx.get(JOBS, job_id)
            if current is None:
                raise not_found("job", job_id)
            status = JobStatus(current.data["status"])
            if status.is_final:
                raise conflict(f"job {job_id} is already {status.value}")
            batch = await batch_of(tx, current.data)  # read before the writes below
            now = now_iso()
            changes = {
                "status": JobStatus.CANCELLED.value,
                "stage": "cancelled",
                "message": "Cancelled by request.",
                "eta_seconds": None,
                "finished_at": now,
                "updated_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
            }
            # Cancelled work keeps nothing (the worker drops what it made), so it costs the user nothing.
            changes |= give_back(tx, current.data)
            tx.update(JOBS, job_id, changes)
            record_event(tx, job_id, {**current.data, **changes})
            count_finished(tx, batch, job_id, JobStatus.CANCELLED)

        await self._docs.run_transaction(move)
        doc = await self._docs.get(JOBS, job_id)
        if doc is None:
            raise not_found("job", job_id)
        return doc


async def hand_over(queue: JobQueue, job_id: str, attempt: int = 0) -> None:
    """Give a stored QUEUED job to the queue. A queue that fails now (Cloud Tasks unreachable) does
    not undo the job: the caller keeps it, and the redelivery of waiting jobs (domain.redelivery)
    hands it over later."""
    try:
        await queue.enqueue(job_id, attempt=attempt)
    except Exception:
        log.warning("enqueueing a new job failed; it waits for redelivery", extra={"job_id": job_id})


def check_team_generation(who: Actor, team_id: str) -> None:
    """Team OWNERs and EDITORs generate into a team; its VIEWERs (and admins outside it) may not."""
    role = who.team_role(team_id)
    if role is None and not who.user.is_admin:
        raise not_found("team", team_id)
    if role not in ("OWNER", "EDITOR"):
        raise forbidden("Only the team's owners and editors may generate into it.")


def may_see_job(who: Actor, data: Mapping[str, Any]) -> bool:
    team_id = data.get("team_id")
    return (
        who.user.is_admin
        or data.get("owner_id") == who.id
        or (bool(team_id) and who.team_role(str(team_id)) is not None)
    )


def job_of(doc: Document) -> Job:
    return Job.from_doc(doc.id, doc.data)
