"""One delivery of a job by a push queue (Cloud Tasks): run it if it is ours to run, and say whether
the queue should deliver it again.

Cloud Tasks retries a delivery on any answer but 2xx, so the outcome decides: everything that
another delivery cannot improve (done, final, missing, run by another delivery, given up) is an
answer of success; only a job handed back to the queue (a retryable failure, a worker shutting
down) asks for the delivery to be retried.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from domain.errors import ErrorCode, StudioError
from domain.jobs import JOBS, JobStatus
from domain.ports import DocStore
from domain.runner import JobRunner

log = logging.getLogger("genmedia.tasks")

_FINAL = frozenset({JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value})


class Outcome(enum.Enum):
    """What came of a delivery; `retry` says whether the queue should deliver it again."""

    FINISHED = "finished"  # this delivery ran the job to a final status
    NOTHING_TO_DO = "nothing-to-do"  # missing or already final: a duplicate or late delivery
    ELSEWHERE = "elsewhere"  # another delivery (or worker) holds the job's lease
    GAVE_UP = "gave-up"  # delivered too often: the job was failed
    RETRY = "retry"  # the job is back in the queue: deliver again later

    @property
    def retry(self) -> bool:
        return self is Outcome.RETRY


@dataclass(frozen=True)
class Delivery:
    """A delivery as the queue describes it (Cloud Tasks' X-CloudTasks-* headers)."""

    job_id: str
    task_name: str = ""
    queue_name: str = ""
    retry_count: int = 0  # earlier deliveries of this task that failed
    execution_count: int = 0  # earlier deliveries that got an answer from a worker


class TaskDeliveries:
    """Runs delivered jobs with the runner's conditional claim, so duplicates are harmless."""

    def __init__(self, docs: DocStore, runner: JobRunner, *, max_attempts: int) -> None:
        self._docs = docs
        self._runner = runner
        self._max_attempts = max_attempts

    async def deliver(self, delivery: Delivery) -> Outcome:
        """Claim and run the delivered job if it is QUEUED; what happened, for the queue's retry."""
        outcome = await self._deliver(delivery)
        log.info(
            "task delivered",
            extra={
                "job_id": delivery.job_id,
                "task": delivery.task_name,
                "queue": delivery.queue_name,
                "retry_count": delivery.retry_count,
                "execution_count": delivery.execution_count,
                "outcome": outcome.value,
            },
        )
        return outcome

    async def _deliver(self, delivery: Delivery) -> Outcome:
        before = await self._status(delivery.job_id)
        if before is None or before in _FINAL:
            return Outcome.NOTHING_TO_DO
        if before != JobStatus.QUEUED.value:
            return Outcome.ELSEWHERE
        if delivery.retry_count >= self._max_attempts:
            error = StudioError(
                ErrorCode.INTERNAL,
                f"The job queue delivered this job {delivery.retry_count + 1} times without it finishing;"
                " it was given up.",
                retryable=True,
            )
            if await self._runner.abandon(delivery.job_id, error):
                return Outcome.GAVE_UP
            return await self._after(delivery.job_id)
        await self._runner.run(delivery.job_id)
        return await self._after(delivery.job_id)

    async def _after(self, job_id: str) -> Outcome:
        status = await self._status(job_id)
        if status is None or status in _FINAL:
            return Outcome.FINISHED
        if status == JobStatus.QUEUED.value:
            return Outcome.RETRY
        return Outcome.ELSEWHERE

    async def _status(self, job_id: str) -> str | None:
        doc = await self._docs.get(JOBS, job_id)
        return None if doc is None else str(doc.data.get("status"))
