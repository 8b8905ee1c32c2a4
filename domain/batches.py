"""Batches: up to `max_jobs` generations, checked first and then created and booked all or nothing.

Every item is checked by the rules of its single generate mutation (`JobDesk.prepare`); an error
names the item (`input.images[3].prompt`). Then one transaction books the quota of every job at
once (QUOTA_EXCEEDED, nothing created, when the sum does not fit) and creates the jobs and the
`batches/{id}` document. The batch's counters move as its jobs end (domain.batch_tally).

Items choose their own webhook (called per job, as for a single job) and whether the request
cache may answer them (such a job is created SUCCEEDED and counted at once). Idempotency keys are
refused inside a batch: the batch is created whole or not at all, so a failed request is simply
sent again, and one key per item could not make a half-remembered batch whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.access import Actor, require_active, require_generate
from domain.batch_tally import BATCHES, RUNNING, batch_payload, finish_if_done
from domain.clock import new_id, now_iso
from domain.desk import JobDesk, check_team_generation, hand_over, may_see_job
from domain.errors import ErrorCode, StudioError, bad_input, not_found
from domain.intake import PreparedJob
from domain.jobs import JOBS, JobKind
from domain.ports import DocStore, Document, JobQueue, Transaction
from domain.quotas import QuotaBook, booked_job_fields
from domain.terms import TermsOfService
from domain.webhooks import record_batch_event, record_event

DEFAULT_MAX_JOBS = 50


@dataclass(frozen=True)
class BatchItem:
    """One generation of a batch, as its single mutation would take it."""

    kind: JobKind
    raw: Mapping[str, Any]
    webhook: Mapping[str, Any] | None = None
    use_cache: bool = True
    team_id: str | None = None
    idempotency_key: str | None = None
    path: str = field(default="input")  # where the item sits in the request, e.g. input.images[3]


@contextlib.contextmanager
def item_path(path: str) -> Iterator[None]:
    """Re-root the `input.` of a single request's BAD_USER_INPUT at the item's own path."""
    try:
        yield
    except StudioError as error:
        where = error.details.get("field")
        if error.code is not ErrorCode.BAD_USER_INPUT or not isinstance(where, str):
            raise
        if where == "input" or where.startswith("input."):
            raise bad_input(path + where[len("input") :], error.message) from None
        raise


def may_see_batch(who: Actor, data: Mapping[str, Any]) -> bool:
    """As for its jobs: the owner, the team's members (for a team batch), administrators."""
    return may_see_job(who, data)


class Batches:
    """Takes batches of generations and shows them to those who may see them."""

    def __init__(
        self,
        docs: DocStore,
        desk: JobDesk,
        queue: JobQueue,
        *,
        quotas: QuotaBook | None = None,
        terms: TermsOfService | None = None,
        max_jobs: int = DEFAULT_MAX_JOBS,
    ) -> None:
        self._docs = docs
        self._desk = desk
        self._queue = queue
        self._quotas = quotas
        self._terms = terms
        self._max_jobs = max_jobs

    async def submit(
        self, actor: Actor | None, items: Sequence[BatchItem], webhook: Mapping[str, Any] | None = None
    ) -> Document:
        """Check every item, then create every job, its booking and the batch in one transaction.

        The batch belongs to the items' team when they name one (all the same; OWNERs and EDITORs).
        Its `webhook` ({url, events}: the batch's final statuses) is called once, when it finishes.
        """
        who = require_generate(actor)
        if not items:
            raise bad_input("input.images", "a batch needs at least one generation in images or videos")
        if len(items) > self._max_jobs:
            # Named after the list that overflowed: videos come after images.
            where = "input.videos" if items[-1].kind is JobKind.VIDEO else "input.images"
            raise bad_input(
                where, f"a batch holds at most {self._max_jobs} generations in all; got {len(items)}"
            )
        if self._terms is not None:
            await self._terms.require_accepted(who)
        team_id = items[0].team_id
        for item in items:
            if item.idempotency_key is not None:
                raise bad_input(
                    f"{item.path}.idempotencyKey",
                    "idempotency keys are not taken inside a batch: it is created whole or not at all",
                )
            if item.team_id != team_id:
                raise bad_input(f"{item.path}.teamId", "every generation of a batch is for the same team")
        if team_id is not None:
            check_team_generation(who, team_id)
        hook = await self._desk.intake.check_webhook(webhook, "input.webhook")
        prepared: list[PreparedJob] = []
        for item in items:
            with item_path(item.path):
                prepared.append(
                    await self._desk.intake.prepare(
                        who,
                        item.kind,
                        item.raw,
                        webhook=item.webhook,
                        use_cache=item.use_cache,
                        team_id=team_id,
                    )
                )
        batch_id = new_id()
        job_ids = [new_id() for _ in prepared]
        now = now_iso()
        cached = sum(1 for job in prepared if job.cached)
        batch: dict[str, Any] = {
            "owner_id": who.id,
            "team_id": team_id,
            "job_ids": job_ids,
            "total": len(job_ids),
            "succeeded": cached,
            "failed": 0,
            "cancelled": 0,
            "counted": [job_id for job_id, job in zip(job_ids, prepared, strict=True) if job.cached],
            "status": RUNNING,
            "webhook": hook,
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
        }
        batch |= finish_if_done(batch)  # every item answered from the cache

        async def create(tx: Transaction) -> None:
            booked: list[dict[str, Any]] = []
            paying = [job.booking for job in prepared if not job.cached]
            if self._quotas is not None and paying:
                booked = await self._quotas.reserve(tx, who.id, paying)
            records = iter(booked)
            for job_id, job in zip(job_ids, prepared, strict=True):
                fields = (
                    booked_job_fields(next(records)) if self._quotas is not None and not job.cached else {}
                )
                data = {**job.data, **fields, "batch_id": batch_id}
                tx.create(JOBS, job_id, data)
                record_event(tx, job_id, data)  # a cached job is final already
            tx.create(BATCHES, batch_id, batch)
            if batch["finished_at"] is not None:
                record_batch_event(tx, batch_id, batch, batch_payload(batch_id, batch))

        async with self._quotas.turn(who.id) if self._quotas else contextlib.nullcontext():
            await self._docs.run_transaction(create)
        for job_id, job in zip(job_ids, prepared, strict=True):
            if not job.cached:
                await hand_over(self._queue, job_id)
        return await self.get(who, batch_id)

    async def get(self, actor: Actor | None, batch_id: str) -> Document:
        """A batch its owner, its team's members or an admin may see; NOT_FOUND for everyone else."""
        who = require_active(actor)
        doc = await self._docs.get(BATCHES, batch_id)
        if doc is None or not may_see_batch(who, doc.data):
            raise not_found("batch", batch_id)
        return doc
