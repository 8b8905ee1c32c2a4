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


TAGGING = Counter("genmedia_tagging_total", "Automatic tagging attempts by how they ended", ["outcome"])
MODERATION_REFUSALS = Counter(
    "genmedia_moderation_refusals_total", "Prompts refused by the moderation policy", ["category"]
)


def record_tagging(outcome: str) -> None:
    """The Tagger's TaggingOutcome: tagged, empty, refused, failed, timeout."""
    TAGGING.labels(outcome).inc()


def record_refusal(category: str) -> None:
    """The moderation policy's refusal hook: the category ("blocked_term" for the configured list)."""
    MODERATION_REFUSALS.labels(category).inc()
