"""Prometheus counters for what the domain reports: every job that ends, and what it cost."""

from __future__ import annotations

from prometheus_client import Counter

JOBS_FINISHED = Counter(
    "genmedia_jobs_finished_total", "Jobs that reached a final status", ["kind", "status", "model"]
)
COST_USD = Counter("genmedia_cost_usd_total", "Cost of succeeded jobs in USD", ["kind", "model"])


def record_job_finished(kind: str, status: str, model: str, cost_usd: float) -> None:
    """The runner's FinishedHook."""
    JOBS_FINISHED.labels(kind, status, model).inc()
    if cost_usd:
        COST_USD.labels(kind, model).inc(cost_usd)
