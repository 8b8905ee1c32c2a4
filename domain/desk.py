"""The job desk: taking generation requests, showing jobs to those who may see them, cancelling them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain import idempotency
from domain.access import Actor, can_read, require_active, require_generate
from domain.assets import ASSETS
from domain.catalog import Catalog
from domain.clock import new_id, now_iso
from domain.collection_rules import check_filing
from domain.errors import bad_input, conflict, not_found
from domain.jobs import JOBS, Job, JobKind, JobStatus
from domain.pages import Page, PageRequest, paginate
from domain.ports import DocStore, Document, Filter, JobQueue, Order, Transaction
from domain.requests import InputLimits, check_request
from domain.webhooks import WebhookUrls, record_event

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
FIELD_OF_ROLE = {
    "source": "input.assetId",
    "first_frame": "input.firstFrameAssetId",
    "last_frame": "input.lastFrameAssetId",
    "references": "input.referenceAssetIds",
}


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
    ) -> None:
        self._docs = docs
        self._queue = queue
        self._catalog = catalog
        self._limits = limits
        self._max_page_size = max_page_size
        self._webhooks = webhooks

    async def submit(
        self,
        actor: Actor | None,
        kind: JobKind,
        raw: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        webhook: Mapping[str, Any] | None = None,
    ) -> Document:
        """Validate, check the referenced assets, then create the job and hand it to the queue.

        With an idempotency key, a repeat of the same request within a day returns the first job.
        A `webhook` ({url, events}) is checked (its host resolved, private addresses refused) and
        kept on the job; it is called when the job reaches one of its events.
        """
        who = require_generate(actor)
        key = (
            idempotency.check_key(idempotency_key, "input.idempotencyKey")
            if idempotency_key is not None
            else None
        )
        checked = check_request(kind, raw, self._catalog, self._limits)
        await self._check_inputs(who, checked.asset_refs)
        collection_id = raw.get("collectionId")
        if collection_id is not None:
            await check_filing(self._docs, who, collection_id)
        hook = await self._check_webhook(webhook)
        now = now_iso()
        data: dict[str, Any] = {
            "kind": kind.value,
            "status": JobStatus.QUEUED.value,
            "progress": 0.0,
            "stage": "queued",
            "message": None,
            "eta_seconds": None,
            "model": checked.model.id,
            "input": checked.input,
            "parameters": checked.parameters,
            "asset_refs": checked.asset_refs,
            "owner_id": who.id,
            "team_id": None,
            "attempts": 0,
            "cached": False,
            "cost_usd": 0.0,
            "asset_ids": [],
            "error": None,
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "finished_at": None,
            "webhook": hook,
            "collection_id": collection_id,
        }
        job_id = new_id()
        if key is None:
            doc = await self._docs.create(JOBS, job_id, data)
        else:
            print_ = idempotency.fingerprint([kind.value, checked.model.id, checked.input])

            async def create_once(tx: Transaction) -> str | None:
                earlier = await idempotency.remembered_job(tx, who.id, key, print_)
                if earlier is None:
                    idempotency.remember(tx, who.id, key, print_, job_id)
                    tx.create(JOBS, job_id, data)
                return earlier

            earlier = await self._docs.run_transaction(create_once)
            found = await self._docs.get(JOBS, earlier or job_id)
            if found is None:
                raise not_found("job", earlier or job_id)
            if earlier is not None:
                return found
            doc = found
        await self._queue.enqueue(doc.id)
        return doc

    async def _check_inputs(self, who: Actor, refs: Mapping[str, Sequence[str]]) -> None:
        wanted = [(role, asset_id) for role, ids in refs.items() for asset_id in ids]
        if not wanted:
            return
        docs = await self._docs.get_many(ASSETS, [asset_id for _, asset_id in wanted])
        for (role, asset_id), doc in zip(wanted, docs, strict=True):
            field = FIELD_OF_ROLE[role]
            if doc is None or not can_read(who, doc.data) or doc.data.get("deleted_at"):
                raise bad_input(field, f"asset {asset_id} not found")
            if doc.data.get("mime_type") not in IMAGE_TYPES:
                raise bad_input(field, f"asset {asset_id} is not an image")

    async def _check_webhook(self, webhook: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if webhook is None:
            return None
        if self._webhooks is None:
            raise bad_input("input.webhook", "webhooks are not available on this server")
        return await self._webhooks.check(webhook, "input.webhook")

    async def get(self, actor: Actor | None, job_id: str) -> Document:
        """A job its owner (or an admin) may see; NOT_FOUND for everyone else."""
        who = require_active(actor)
        doc = await self._docs.get(JOBS, job_id)
        if doc is None or not (who.user.is_admin or doc.data.get("owner_id") == who.id):
            raise not_found("job", job_id)
        return doc

    async def list(
        self,
        actor: Actor | None,
        page: PageRequest,
        *,
        statuses: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Page:
        """The caller's jobs, newest first."""
        who = require_active(actor)
        filters = [Filter("owner_id", "==", who.id)]
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
        await self.get(actor, job_id)

        async def move(tx: Transaction) -> None:
            current = await tx.get(JOBS, job_id)
            if current is None:
                raise not_found("job", job_id)
            status = JobStatus(current.data["status"])
            if status.is_final:
                raise conflict(f"job {job_id} is already {status.value}")
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
            tx.update(JOBS, job_id, changes)
            record_event(tx, job_id, {**current.data, **changes})

        await self._docs.run_transaction(move)
        doc = await self._docs.get(JOBS, job_id)
        if doc is None:
            raise not_found("job", job_id)
        return doc


def job_of(doc: Document) -> Job:
    return Job.from_doc(doc.id, doc.data)
