"""A batch's counters, moved by the transitions that end its jobs, in their own transactions.

Each final transition of a job (the runner's success, failure, give-up and sweep, the desk's
cancel) reads the job's batch with `batch_of` before its writes, then calls `count_finished`.
The transitions are exactly once, and the batch also remembers which jobs it counted, so no job
is counted twice. The transition that finishes the last job finishes the batch: SUCCEEDED when
every job succeeded, CANCELLED when every job was cancelled, FAILED otherwise; and it queues the
batch's webhook in that same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.clock import from_iso, now_iso
from domain.jobs import JobStatus
from domain.ports import Document, Transaction
from domain.webhooks import global_id, record_batch_event

BATCHES = "batches"
RUNNING = JobStatus.RUNNING.value
COUNTERS = {
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


async def batch_of(tx: Transaction, job: Mapping[str, Any]) -> Document | None:
    """The job's batch, read inside its final transition before any write; None outside batches."""
    batch_id = job.get("batch_id")
    if not batch_id:
        return None
    return await tx.get(BATCHES, str(batch_id))


def count_finished(tx: Transaction, batch: Document | None, job_id: str, status: JobStatus) -> None:
    """Count the job's final `status` on its batch (read by `batch_of` in this transaction), and
    finish the batch when this was its last job."""
    if batch is None or job_id in (batch.data.get("counted") or ()):
        return
    counter = COUNTERS[status]
    changes: dict[str, Any] = {
        counter: int(batch.data.get(counter, 0)) + 1,
        "counted": [*(batch.data.get("counted") or ()), job_id],
        "updated_at": now_iso(),
    }
    changes |= finish_if_done({**batch.data, **changes})
    tx.update(BATCHES, batch.id, changes)
    if "finished_at" in changes:
        finished = {**batch.data, **changes}
        record_batch_event(tx, batch.id, finished, batch_payload(batch.id, finished))


def finish_if_done(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The final status and time once every job is counted, else {}."""
    total = int(batch["total"])
    succeeded, failed, cancelled = (int(batch.get(name, 0)) for name in ("succeeded", "failed", "cancelled"))
    if batch.get("status") != RUNNING or succeeded + failed + cancelled < total:
        return {}
    if succeeded == total:
        status = JobStatus.SUCCEEDED
    elif cancelled == total:
        status = JobStatus.CANCELLED
    else:
        status = JobStatus.FAILED
    return {"status": status.value, "finished_at": now_iso()}


def ended_without_result(batch: Mapping[str, Any]) -> int:
    """What the API calls `failed`: jobs that failed or were cancelled."""
    return int(batch.get("failed", 0)) + int(batch.get("cancelled", 0))


def batch_payload(batch_id: str, batch: Mapping[str, Any]) -> dict[str, Any]:
    """The `data` of a `batch.finished` webhook: the batch as the API shows it."""
    finished = batch.get("finished_at")
    return {
        "id": global_id("Batch", batch_id),
        "total": int(batch["total"]),
        "succeeded": int(batch.get("succeeded", 0)),
        "failed": ended_without_result(batch),
        "cancelled": int(batch.get("cancelled", 0)),
        "status": batch["status"],
        "finishedAt": from_iso(finished).isoformat() if finished else None,
    }
