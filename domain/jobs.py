"""Jobs: the record of one generation, and the state machine every transition obeys."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

JOBS = "jobs"


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

# Which status may follow which; anything else is refused by the runner and the API.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


class JobKind(StrEnum):
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    TEXT = "TEXT"
    UPSCALE = "UPSCALE"


def can_move(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]


@dataclass(frozen=True)
class JobError:
    code: str
    message: str
    retryable: bool


@dataclass(frozen=True)
class Job:
    """A read-only view of a `jobs/{id}` document."""

    id: str
    kind: JobKind
    status: JobStatus
    progress: float
    stage: str
    model: str
    input: dict[str, Any]
    owner_id: str
    attempts: int
    cost_usd: float
    asset_ids: tuple[str, ...]
    created_at: str
    updated_at: str
    message: str | None = None
    eta_seconds: float | None = None
    team_id: str | None = None
    cached: bool = False
    error: JobError | None = None
    started_at: str | None = None
    finished_at: str | None = None
    batch_id: str | None = None

    @classmethod
    def from_doc(cls, doc_id: str, data: dict[str, Any]) -> Job:
        error = data.get("error")
        return cls(
            id=doc_id,
            kind=JobKind(data["kind"]),
            status=JobStatus(data["status"]),
            progress=float(data.get("progress", 0.0)),
            stage=data.get("stage", "queued"),
            model=data["model"],
            input=data.get("input", {}),
            owner_id=data["owner_id"],
            attempts=int(data.get("attempts", 0)),
            cost_usd=float(data.get("cost_usd", 0.0)),
            asset_ids=tuple(data.get("asset_ids", ())),
            created_at=data["created_at"],
            updated_at=data.get("updated_at", data["created_at"]),
            message=data.get("message"),
            eta_seconds=data.get("eta_seconds"),
            team_id=data.get("team_id"),
            cached=bool(data.get("cached", False)),
            error=JobError(error["code"], error["message"], bool(error.get("retryable"))) if error else None,
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            batch_id=data.get("batch_id"),
        )
