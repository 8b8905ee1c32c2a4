"""Redelivery of jobs waiting too long in a push queue (Cloud Tasks).

With the docstore queue, workers watch QUEUED jobs themselves, so none can be forgotten. A push
queue only knows the jobs it was handed: a job whose enqueue failed (at submit, or when the sweeper
re-queued it) would wait for ever. Every worker process therefore looks, now and then, for jobs
QUEUED for longer than `after_seconds` and hands them to the queue again. Enqueueing is idempotent
per job and attempt (the task name), so a job whose task does exist costs one refused create.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from domain.clock import to_iso, utcnow
from domain.jobs import JOBS, JobStatus
from domain.ports import DocStore, Filter, JobQueue, Order, Query
from domain.rounds import in_rounds

log = logging.getLogger("genmedia.redelivery")

BATCH = 100  # jobs looked at per round


class WaitingJobs:
    """Finds QUEUED jobs that have waited too long and enqueues them again."""

    def __init__(self, docs: DocStore, queue: JobQueue, *, after_seconds: float) -> None:
        self._docs = docs
        self._queue = queue
        self._after = after_seconds
        self._sent: dict[str, float] = {}  # job id -> when this process last handed it over

    async def keep_redelivering(self, every_seconds: float = 30.0) -> None:
        """Rounds of `redeliver` for as long as the worker runs."""
        await in_rounds(self.redeliver, every_seconds, "the redelivery of waiting jobs")

    async def redeliver(self) -> int:
        """One round: how many jobs were handed to the queue again."""
        cutoff = to_iso(utcnow() - timedelta(seconds=self._after))
        waiting = await self._docs.query(
            Query(
                JOBS,
                (Filter("status", "==", JobStatus.QUEUED.value), Filter("updated_at", "<", cutoff)),
                (Order("updated_at"),),
                limit=BATCH,
            )
        )
        now = time.monotonic()
        self._sent = {job: at for job, at in self._sent.items() if now - at < self._after}
        sent = 0
        for doc in waiting:
            if doc.id in self._sent:  # handed over lately: give the queue time to deliver it
                continue
            try:
                await self._queue.enqueue(doc.id, attempt=int(doc.data.get("attempts", 0)))
            except Exception:
                log.warning("redelivering a waiting job failed; next round", extra={"job_id": doc.id})
                continue
            self._sent[doc.id] = now
            sent += 1
        if sent:
            log.warning("jobs waited too long in the queue; handed over again", extra={"jobs": sent})
        return sent
