"""What a workflow run does next, decided from its steps and their jobs alone (no I/O).

A step waits until every node feeding it has SUCCEEDED, then its input gets their first assets and
it is ready to submit. A step fed by a node that failed, was cancelled or was never run is never
submitted: it fails with a reason that names that node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.jobs import JobStatus
from domain.workflow_graph import REFERENCES, topological_order

WAITING = "WAITING"  # no job yet: its inputs are not all there
SUCCEEDED, FAILED, CANCELLED = JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value
UNFINISHED = frozenset({WAITING, JobStatus.QUEUED.value, JobStatus.RUNNING.value})


@dataclass(frozen=True)
class RunPlan:
    """The steps brought up to date, the steps to submit now (index, filled input), the run's status."""

    steps: list[dict[str, Any]]
    ready: list[tuple[int, dict[str, Any]]]
    status: str


def new_step(node: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "node": node["id"],
        "kind": node["kind"],
        "input": dict(node["input"]),
        "status": WAITING,
        "job_id": None,
        "asset_ids": [],
        "reason": None,
    }


def sync_step(step: Mapping[str, Any], job: Mapping[str, Any] | None) -> dict[str, Any]:
    """The step as its job now stands."""
    synced = dict(step)
    if job is None:
        return synced
    status = str(job["status"])
    synced["status"] = status
    if status == SUCCEEDED:
        synced["asset_ids"] = list(job.get("asset_ids") or [])
    elif status == FAILED:
        error = job.get("error") or {}
        synced["reason"] = f"{error.get('code', 'FAILED')}: {error.get('message') or 'the job failed'}"
    elif status == CANCELLED:
        synced["reason"] = "the job was cancelled"
    return synced


def run_status(steps: Sequence[Mapping[str, Any]]) -> str:
    """RUNNING until every step is final; then SUCCEEDED if all succeeded, FAILED otherwise."""
    if any(step["status"] in UNFINISHED for step in steps):
        return JobStatus.RUNNING.value
    if all(step["status"] == SUCCEEDED for step in steps):
        return SUCCEEDED
    return FAILED


def _why_not(node: str, upstream: Mapping[str, Any]) -> str:
    if upstream["status"] == CANCELLED:
        return f"not run: upstream node '{node}' was cancelled"
    if upstream.get("job_id"):
        return f"not run: upstream node '{node}' failed ({upstream.get('reason') or 'no reason given'})"
    return f"not run: upstream node '{node}' was not run"


def fill_input(
    step: Mapping[str, Any], inputs: Sequence[Mapping[str, str]], steps: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any] | str:
    """The step's input with each feeding node's first asset in place; a reason when one made none."""
    filled = dict(step["input"])
    for edge in inputs:
        assets = steps[edge["from"]].get("asset_ids") or []
        if not assets:
            return f"not run: upstream node '{edge['from']}' made no asset"
        if edge["as"] == REFERENCES:
            filled[REFERENCES] = [*(filled.get(REFERENCES) or []), assets[0]]
        else:
            filled[edge["as"]] = assets[0]
    return filled


def plan_run(
    steps: Sequence[Mapping[str, Any]],
    edges: Sequence[Mapping[str, str]],
    jobs: Mapping[str, Mapping[str, Any]],
) -> RunPlan:
    """Sync steps with their jobs, fail what can no longer run, and pick what can run now."""
    current = [sync_step(step, jobs.get(step["job_id"]) if step.get("job_id") else None) for step in steps]
    index = {step["node"]: i for i, step in enumerate(current)}
    ready: list[tuple[int, dict[str, Any]]] = []
    for node in topological_order(list(index), edges) or []:
        i = index[node]
        if current[i]["status"] != WAITING:
            continue
        inputs = [edge for edge in edges if edge["to"] == node]
        by_node = {step["node"]: step for step in current}
        blocked = [edge for edge in inputs if by_node[edge["from"]]["status"] in (FAILED, CANCELLED)]
        if blocked:
            upstream = blocked[0]["from"]
            current[i] = {**current[i], "status": FAILED, "reason": _why_not(upstream, by_node[upstream])}
            continue
        if all(by_node[edge["from"]]["status"] == SUCCEEDED for edge in inputs):
            filled = fill_input(current[i], inputs, by_node)
            if isinstance(filled, str):
                current[i] = {**current[i], "status": FAILED, "reason": filled}
            else:
                ready.append((i, filled))
    return RunPlan(current, ready, run_status(current))
