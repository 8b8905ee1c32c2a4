"""Where a queued job stands and when it should be done, from what the engine did recently.

The queue is served oldest first, so a job's position is the number of QUEUED jobs created before
it, plus one. Its ETA is the time to drain the jobs ahead at the engine's recent pace plus the
typical run time of its model. Both figures are estimates and say so in the schema; the recent
figures are read at most once per `ttl_seconds` per process, so a page of queued jobs costs one
count per job and a few reads in all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.clock import from_iso
from domain.jobs import JOBS, JobStatus
from domain.ports import DocStore, Document, Filter, Order, Query

RECENT_JOBS = 50  # finished jobs the pace and the typical durations are taken from
RECENT_WINDOW_SECONDS = 600.0  # older completions say nothing about the pace now
MODEL_SAMPLE = 10  # a model's own last jobs, when it is missing from the recent ones


@dataclass(frozen=True)
class Recent:
    """What the engine finished lately: its pace and each model's typical run time."""

    jobs_per_second: float | None
    seconds_by_model: dict[str, float]


def durations(docs: Sequence[Document]) -> dict[str, float]:
    """Mean run time (startedAt to finishedAt) per model over the given finished jobs."""
    spans: dict[str, list[float]] = {}
    for doc in docs:
        started, finished = doc.data.get("started_at"), doc.data.get("finished_at")
        if started and finished:
            span = (from_iso(finished) - from_iso(started)).total_seconds()
            spans.setdefault(doc.data["model"], []).append(max(0.0, span))
    return {model: sum(values) / len(values) for model, values in spans.items()}


def pace(docs: Sequence[Document], now: float) -> float | None:
    """Jobs finished per second over the recent completions, if there are enough recent ones."""
    moments = sorted(
        from_iso(doc.data["finished_at"]).timestamp() for doc in docs if doc.data.get("finished_at")
    )
    moments = [moment for moment in moments if now - moment <= RECENT_WINDOW_SECONDS]
    if len(moments) < 2 or moments[-1] <= moments[0]:
        return None
    return (len(moments) - 1) / (moments[-1] - moments[0])


class QueueForecast:
    """Queue positions and ETAs for QUEUED jobs."""

    def __init__(
        self,
        docs: DocStore,
        *,
        parallelism: int = 1,
        ttl_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._docs = docs
        self._parallelism = max(1, parallelism)
        self._ttl = ttl_seconds
        self._clock = clock
        self._recent: Recent | None = None
        self._read_at = -math.inf
        self._by_model: dict[str, tuple[float, float]] = {}

    async def position(self, created_at: str) -> int:
        """1 for the next job to run."""
        ahead = await self._docs.count(
            JOBS, [Filter("status", "==", JobStatus.QUEUED.value), Filter("created_at", "<", created_at)]
        )
        return ahead + 1

    async def eta_seconds(self, model: str, position: int) -> int | None:
        """Seconds until a job at `position` should be finished; None before anything has run."""
        recent = await self._read_recent()
        typical = recent.seconds_by_model.get(model)
        if typical is None:
            typical = await self._model_typical(model)
        if typical is None:
            return None
        ahead = position - 1
        if recent.jobs_per_second:
            waiting = ahead / recent.jobs_per_second
        else:
            waiting = math.ceil(ahead / self._parallelism) * typical
        return max(0, round(waiting + typical))

    async def _read_recent(self) -> Recent:
        now = self._clock()
        if self._recent is None or now - self._read_at > self._ttl:
            docs = await self._docs.query(
                Query(
                    JOBS,
                    (Filter("status", "==", JobStatus.SUCCEEDED.value),),
                    (Order("finished_at", descending=True),),
                    limit=RECENT_JOBS,
                )
            )
            self._recent = Recent(pace(docs, now), durations(docs))
            self._read_at = now
        return self._recent

    async def _model_typical(self, model: str) -> float | None:
        now = self._clock()
        cached = self._by_model.get(model)
        if cached is not None and now - cached[0] <= self._ttl:
            return cached[1]
        docs = await self._docs.query(
            Query(
                JOBS,
                (Filter("status", "==", JobStatus.SUCCEEDED.value), Filter("model", "==", model)),
                (Order("finished_at", descending=True),),
                limit=MODEL_SAMPLE,
            )
        )
        typical = durations(docs).get(model)
        if typical is not None:  # "never ran" is not kept: the first finished job counts at once
            self._by_model[model] = (now, typical)
        return typical
