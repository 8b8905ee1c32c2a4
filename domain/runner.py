"""The job runner: claims a QUEUED job, generates, stores the media and finishes the job exactly once.

Every transition is a transaction that checks the job is still RUNNING under this runner's lease,
so a duplicate delivery, a cancel or a lost lease can never produce a second result or charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from domain.assets import ASSETS, blob_key
from domain.batch_tally import batch_of, count_finished
from domain.catalog import Catalog, cost_usd
from domain.clock import now_iso, to_iso, utcnow
from domain.errors import ErrorCode, StudioError
from domain.filing import file_new_assets, filing_target
from domain.jobs import JOBS, JobStatus
from domain.library import asset_terms
from domain.ports import (
    BlobStore,
    CachedResult,
    DocStore,
    Document,
    Filter,
    GenerationRequest,
    GenerationResult,
    Generator,
    InputMedia,
    JobQueue,
    Progress,
    Query,
    ResultCache,
    Transaction,
)
from domain.quotas import release_after_failure, settle_booking
from domain.request_cache import DEFAULT_TTL_SECONDS
from domain.tagging import Tagger, tag_fields
from domain.usage import book_usage, job_counts
from domain.webhooks import WebhookDispatcher, record_event

log = logging.getLogger("genmedia.runner")

# (kind, final status, model, cost in USD): metrics hear about every job that ends here.
FinishedHook = Callable[[str, str, str, float], None]


class LeaseLost(Exception):
    """The job is no longer RUNNING under this runner (cancelled, swept, or taken over)."""


class JobRunner:
    """Runs jobs by id; safe to call with the same id many times, from many processes."""

    def __init__(
        self,
        docs: DocStore,
        blobs: BlobStore,
        generator: Generator,
        catalog: Catalog,
        *,
        worker_id: str,
        lease_seconds: float = 30.0,
        max_attempts: int = 3,
        webhooks: WebhookDispatcher | None = None,
        on_finished: FinishedHook | None = None,
        cache: ResultCache | None = None,
        cache_ttl_seconds: int = DEFAULT_TTL_SECONDS,
        queue: JobQueue | None = None,
        tagger: Tagger | None = None,
    ) -> None:
        self._tagger = tagger or Tagger.off()  # tags new images and videos before they are stored
        self._on_finished = on_finished
        self._cache = cache
        self._cache_ttl = cache_ttl_seconds
        # Told about jobs the sweeper re-queues: a push queue (Cloud Tasks) must deliver them anew.
        self._queue = queue
        self._docs = docs
        self._blobs = blobs
        self._generator = generator
        self._catalog = catalog
        self._worker_id = worker_id
        self._lease = lease_seconds
        self._max_attempts = max_attempts
        # Delivers the webhooks final transitions queue; `run_workers` runs it beside the sweeper.
        self.webhooks = webhooks
        # Gives each new asset its text embedding (GENMEDIA_EMBEDDINGS=local); set by wiring.
        self.embed_asset: Callable[[dict[str, Any]], Awaitable[str | None]] | None = None

    # ------------------------------------------------------------ entry points

    async def run(self, job_id: str) -> None:
        """Claim and run one job; returns quietly when the job is not (or no longer) ours to run."""
        job = await self._claim(job_id)
        if job is None:
            return
        work = asyncio.create_task(self._generate(job), name=f"generate-{job_id}")
        guard = asyncio.create_task(self._guard(job_id, work), name=f"guard-{job_id}")
        try:
            result = await work
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                await asyncio.shield(self._release(job_id))
                raise
            log.info("job stopped: no longer ours", extra={"job_id": job_id})
            return
        except StudioError as error:
            await self._fail(job, error)
        except LeaseLost:
            return
        except Exception:
            log.exception("job failed unexpectedly", extra={"job_id": job_id})
            await self._fail(job, StudioError(ErrorCode.INTERNAL, "The generation failed unexpectedly."))
        else:
            await self._succeed(job, result)
        finally:
            guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guard

    async def sweep(self) -> int:
        """Re-queue (or fail, after too many attempts) RUNNING jobs whose lease has expired."""
        now = now_iso()
        stale = await self._docs.query(
            Query(JOBS, (Filter("status", "==", "RUNNING"), Filter("lease_expires_at", "<", now)), limit=100)
        )
        moved = 0
        for doc in stale:

            async def recover(tx: Transaction, job_id: str = doc.id) -> bool | None:
                """True: re-queued; False: failed for good; None: nothing to recover."""
                current = await tx.get(JOBS, job_id)
                if current is None or current.data.get("status") != "RUNNING":
                    return None
                if (current.data.get("lease_expires_at") or "") >= now_iso():
                    return None
                if int(current.data.get("attempts", 0)) >= self._max_attempts:
                    batch = await batch_of(tx, current.data)
                    await self._book_failure(tx, current.data)
                    changes = self._failure_changes(_LOST_TOO_OFTEN)
                    tx.update(JOBS, job_id, changes)
                    record_event(tx, job_id, {**current.data, **changes})
                    count_finished(tx, batch, job_id, JobStatus.FAILED)
                    return False
                tx.update(JOBS, job_id, _requeue_changes("The worker running this job stopped; retrying."))
                return True

            requeued = await self._docs.run_transaction(recover)
            if requeued is not None:
                moved += 1
                log.warning("lease expired; job recovered", extra={"job_id": doc.id})
                if requeued and self._queue is not None:
                    attempt = int(doc.data.get("attempts", 0))
                    try:
                        await self._queue.enqueue(doc.id, attempt=attempt)
                    except Exception:  # the job is QUEUED: a later delivery or sweep still finds it
                        log.warning("re-enqueueing a recovered job failed", extra={"job_id": doc.id})
        return moved

    async def abandon(self, job_id: str, error: StudioError) -> bool:
        """Fail a QUEUED job that will not be delivered again (its deliveries ran out); False when
        the job is not QUEUED (it finished, or another delivery runs it)."""

        async def give_up(tx: Transaction) -> bool:
            current = await tx.get(JOBS, job_id)
            if current is None or current.data.get("status") != JobStatus.QUEUED.value:
                return False
            batch = await batch_of(tx, current.data)
            await self._book_failure(tx, current.data)
            changes = self._failure_changes(error)
            tx.update(JOBS, job_id, changes)
            record_event(tx, job_id, {**current.data, **changes})
            count_finished(tx, batch, job_id, JobStatus.FAILED)
            return True

        if not await self._docs.run_transaction(give_up):
            return False
        doc = await self._docs.get(JOBS, job_id)
        if doc is not None:
            self._finished(doc.data["kind"], JobStatus.FAILED.value, doc.data["model"], 0.0)
        return True

    # ------------------------------------------------------------ claim and lease

    async def _claim(self, job_id: str) -> Document | None:
        async def claim(tx: Transaction) -> Document | None:
            current = await tx.get(JOBS, job_id)
            if current is None or current.data.get("status") != JobStatus.QUEUED.value:
                return None
            now = now_iso()
            changes = {
                "status": JobStatus.RUNNING.value,
                "attempts": int(current.data.get("attempts", 0)) + 1,
                "stage": "starting",
                "message": None,
                "lease_owner": self._worker_id,
                "lease_expires_at": self._lease_deadline(),
                "started_at": current.data.get("started_at") or now,
                "updated_at": now,
            }
            tx.update(JOBS, job_id, changes)
            return Document(current.id, {**current.data, **changes}, current.version)

        return await self._docs.run_transaction(claim)

    def _lease_deadline(self) -> str:
        return to_iso(utcnow() + timedelta(seconds=self._lease))

    async def _write_if_ours(self, job_id: str, changes: Mapping[str, Any]) -> None:
        async def write(tx: Transaction) -> None:
            current = await tx.get(JOBS, job_id)
            if not self._ours(current):
                raise LeaseLost(job_id)
            tx.update(JOBS, job_id, changes)

        await self._docs.run_transaction(write)

    def _ours(self, doc: Document | None) -> bool:
        return (
            doc is not None
            and doc.data.get("status") == JobStatus.RUNNING.value
            and doc.data.get("lease_owner") == self._worker_id
        )

    async def _guard(self, job_id: str, work: asyncio.Task[GenerationResult]) -> None:
        """Renew the lease while the work runs; stop the work as soon as the job stops being ours."""
        renew = asyncio.create_task(self._renew(job_id, work))
        try:
            async for doc in self._docs.watch_document(JOBS, job_id):
                if not self._ours(doc):
                    work.cancel()
                    return
        finally:
            renew.cancel()

    async def _renew(self, job_id: str, work: asyncio.Task[GenerationResult]) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                await self._write_if_ours(job_id, {"lease_expires_at": self._lease_deadline()})
            except LeaseLost:
                work.cancel()
                return
            except Exception:  # a docstore hiccup: the lease still has two thirds left
                log.warning("lease renewal failed", extra={"job_id": job_id}, exc_info=True)

    async def _release(self, job_id: str) -> None:
        """On shutdown, hand the job straight back to the queue instead of waiting for the lease."""
        with contextlib.suppress(Exception):
            await self._write_if_ours(job_id, _requeue_changes("The worker shut down; retrying."))

    # ------------------------------------------------------------ generation

    async def _generate(self, job: Document) -> GenerationResult:
        data = job.data
        request = await self._request_for(data)
        best = float(data.get("progress", 0.0))
        started = time.monotonic()

        async def report(progress: Progress) -> None:
            nonlocal best
            # Progress never goes back, and 1.0 is reserved for the final transition.
            best = max(best, min(max(progress.fraction, 0.0), 0.99))
            eta = progress.eta_seconds
            changes: dict[str, Any] = {
                "progress": round(best, 4),
                "stage": progress.stage,
                "message": progress.message,
                "eta_seconds": None if eta is None else max(0, round(eta)),
                "updated_at": now_iso(),
            }
            if progress.operation_id:  # stored before the generator goes on: a re-run resumes it
                changes["operation_id"] = progress.operation_id
            await self._write_if_ours(job.id, changes)

        result = await self._generator.generate(request, report)
        log.info(
            "generated",
            extra={"job_id": job.id, "model": data["model"], "seconds": round(time.monotonic() - started, 3)},
        )
        return result

    async def _request_for(self, data: Mapping[str, Any]) -> GenerationRequest:
        refs: Mapping[str, list[str]] = data.get("asset_refs") or {}
        media: dict[str, list[InputMedia]] = {}
        wanted = [(role, asset_id) for role, ids in refs.items() for asset_id in ids]
        if wanted:
            docs = await self._docs.get_many(ASSETS, [asset_id for _, asset_id in wanted])
            for (role, asset_id), doc in zip(wanted, docs, strict=True):
                if doc is None:
                    raise StudioError(ErrorCode.NOT_FOUND, f"input asset {asset_id} no longer exists")
                blob = await self._blobs.get(doc.data["blob_key"])
                media.setdefault(role, []).append(InputMedia(blob, doc.data["mime_type"], asset_id))
        source = media.get("source", [None])[0]
        inputs = data.get("input") or {}
        prompt = inputs.get("prompt")
        if prompt is None and source is not None:
            source_doc = await self._docs.get(ASSETS, refs["source"][0])
            prompt = (source_doc.data.get("prompt") if source_doc else None) or ""
        return GenerationRequest(
            kind=data["kind"],
            model=data["model"],
            prompt=prompt or "",
            negative_prompt=inputs.get("negativePrompt"),
            parameters=data.get("parameters") or {},
            source=source,
            first_frame=media.get("first_frame", [None])[0],
            last_frame=media.get("last_frame", [None])[0],
            references=tuple(media.get("references", ())),
            operation_id=data.get("operation_id"),
        )

    # ------------------------------------------------------------ endings

    async def _succeed(self, job: Document, result: GenerationResult) -> None:
        data = job.data
        spec = self._catalog.get(data["model"])
        units = dict(result.units)
        cost = cost_usd(spec, units) if spec else 0.0
        kind = data["kind"]
        refs: Mapping[str, list[str]] = data.get("asset_refs") or {}
        parents = [*refs.get("source", ()), *refs.get("first_frame", ()), *refs.get("last_frame", ())]
        parent = parents[0] if parents else None
        now = now_iso()
        assets: list[tuple[str, dict[str, Any]]] = []
        auto_tags = await self._tagger.tag_all(result.media, (data.get("input") or {}).get("prompt"))
        for index, media in enumerate(result.media):
            asset_id = f"{job.id}{index:02d}"  # deterministic: a retried finish rewrites, never duplicates
            key = blob_key(asset_id, media.mime_type)
            stored = await self._blobs.put(key, media.data, media.mime_type, {"job_id": job.id})
            inputs = data.get("input") or {}
            asset: dict[str, Any] = {
                "kind": "IMAGE" if kind == "UPSCALE" else kind,
                "title": None,
                "prompt": inputs.get("prompt"),
                "negative_prompt": inputs.get("negativePrompt"),
                "model": data["model"],
                "parameters": inputs,
                "mime_type": media.mime_type,
                "bytes": stored.size,
                "width": media.width,
                "height": media.height,
                "duration_seconds": media.duration_seconds,
                "text": media.text,
                "blob_key": key,
                "content_sha256": stored.sha256 or hashlib.sha256(media.data).hexdigest(),
                "owner_id": data["owner_id"],
                "team_id": data.get("team_id"),
                "tags": [],
                "favorited_by": [],
                "job_id": job.id,
                "parent_id": parent,
                "parent_ids": parents,
                "cost_usd": round(cost / max(len(result.media), 1), 6),
                "created_at": now,
                "updated_at": now,
                "deleted": False,
                "deleted_at": None,
                "readers": [
                    f"user:{data['owner_id']}",
                    *([f"team:{data['team_id']}"] if data.get("team_id") else []),
                ],
            }
            asset |= tag_fields(auto_tags[index], asset)
            asset["search_terms"] = asset_terms(asset)
            if self.embed_asset is not None:
                asset["embedding"] = await self.embed_asset(asset)
            assets.append((asset_id, asset))

        async def finish(tx: Transaction) -> bool:
            current = await tx.get(JOBS, job.id)
            if not self._ours(current):
                return False
            assert current is not None
            collection = await filing_target(tx, data.get("collection_id"))  # reads come before writes
            batch = await batch_of(tx, current.data)
            await book_usage(
                tx,
                user_id=data["owner_id"],
                team_id=data.get("team_id"),
                day=now[:10],
                model=data["model"],
                kind=kind,
                counts=job_counts(kind, succeeded=True, units=units, cost=cost),
            )
            file_new_assets(tx, collection, assets, data["owner_id"])
            for asset_id, asset in assets:
                tx.set(ASSETS, asset_id, asset)
            changes: dict[str, Any] = {
                "status": JobStatus.SUCCEEDED.value,
                "progress": 1.0,
                "stage": "done",
                "message": None,
                "eta_seconds": 0,
                "asset_ids": [asset_id for asset_id, _ in assets],
                "cost_usd": cost,
                "units": units,
                "finished_at": now_iso(),
                "updated_at": now_iso(),
                "lease_owner": None,
                "lease_expires_at": None,
            } | settle_booking(tx, current.data, cost)
            tx.update(JOBS, job.id, changes)
            record_event(tx, job.id, {**current.data, **changes})
            count_finished(tx, batch, job.id, JobStatus.SUCCEEDED)
            return True

        if not await self._docs.run_transaction(finish):
            # Cancelled or taken over while we uploaded: keep nothing.
            for _, asset in assets:
                await self._blobs.delete(asset["blob_key"])
            return
        log.info(
            "job succeeded",
            extra={"job_id": job.id, "model": data["model"], "cost_usd": cost, "units": units},
        )
        self._finished(kind, JobStatus.SUCCEEDED.value, data["model"], cost)
        if self._cache is not None and data.get("cache_key"):
            made = CachedResult(job.id, tuple(asset_id for asset_id, _ in assets), cost)
            await self._cache.put(data["cache_key"], made, self._cache_ttl)

    async def _fail(self, job: Document, error: StudioError) -> None:
        data = job.data

        async def fail(tx: Transaction) -> bool:
            current = await tx.get(JOBS, job.id)
            if not self._ours(current):
                return False
            assert current is not None
            attempts = int(current.data.get("attempts", 0))
            if error.retryable and error.code is not ErrorCode.INTERNAL and attempts < self._max_attempts:
                tx.update(JOBS, job.id, _requeue_changes(f"Retrying after: {error.message}"))
                return False
            batch = await batch_of(tx, current.data)
            await self._book_failure(tx, data, refused=error.code is ErrorCode.CONTENT_BLOCKED)
            changes = self._failure_changes(error) | release_after_failure(tx, current.data, error.code)
            tx.update(JOBS, job.id, changes)
            record_event(tx, job.id, {**current.data, **changes})
            count_finished(tx, batch, job.id, JobStatus.FAILED)
            return True

        if await self._docs.run_transaction(fail):
            log.info("job failed", extra={"job_id": job.id, "model": data["model"], "code": error.code.value})
            self._finished(data["kind"], JobStatus.FAILED.value, data["model"], 0.0)

    def _finished(self, kind: str, status: str, model: str, cost: float) -> None:
        if self._on_finished is not None:
            try:
                self._on_finished(kind, status, model, cost)
            except Exception:  # observing must never break the job it observes
                log.warning("the job observer failed", exc_info=True)

    async def _book_failure(self, tx: Transaction, data: Mapping[str, Any], *, refused: bool = False) -> None:
        await book_usage(
            tx,
            user_id=data["owner_id"],
            team_id=data.get("team_id"),
            day=now_iso()[:10],
            model=data["model"],
            kind=data["kind"],
            counts=job_counts(data["kind"], succeeded=False, units={}, cost=0.0, refused=refused),
        )

    def _failure_changes(self, error: StudioError) -> dict[str, Any]:
        now = now_iso()
        return {
            "status": JobStatus.FAILED.value,
            "stage": "failed",
            "message": error.message,
            "eta_seconds": None,
            "error": {"code": error.code.value, "message": error.message, "retryable": error.retryable},
            "finished_at": now,
            "updated_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
        }


_LOST_TOO_OFTEN = StudioError(
    ErrorCode.INTERNAL, "The job was interrupted too many times and was given up.", retryable=True
)


def _requeue_changes(message: str) -> dict[str, Any]:
    return {
        "status": JobStatus.QUEUED.value,
        "stage": "queued",
        "message": message,
        "eta_seconds": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now_iso(),
    }
