"""Running workflows: a run submits each step's job once its inputs exist, and finishes with its steps.

A run is advanced by whoever notices a change — the request that starts it, and in every worker
process a follower that watches the jobs of unfinished runs, plus a periodic re-check. Advancing
is safe to repeat from any number of processes: each step's job is submitted with an idempotency
key of its own (a repeat returns the same job), and the run document is only written when it has
not changed since it was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from domain.access import Actor, require_active, require_generate
from domain.clock import new_id, now_iso
from domain.desk import JobDesk
from domain.errors import StudioError, bad_input, forbidden, not_found
from domain.jobs import JOBS, JobKind, JobStatus
from domain.pages import Page, PageRequest, paginate
from domain.ports import DocStore, Document, Filter, Order, Query, Transaction
from domain.rounds import in_rounds
from domain.users import Directory
from domain.webhook_urls import WebhookUrls
from domain.webhooks import global_id, record_finished
from domain.workflow_plan import FAILED, new_step, plan_run, run_status, sync_step
from domain.workflows import Workflows, may_change

log = logging.getLogger("genmedia.workflows")

WORKFLOW_RUNS = "workflow_runs"
# Jobs of unfinished runs carry `workflow_open: true` until their final status reached the run.
OPEN_JOBS = (Filter("workflow_open", "==", True),)
_ADVANCE_ROUNDS = 10


def may_read_run(actor: Actor, data: Mapping[str, Any]) -> bool:
    """Who ran it, the workflow's owner, administrators, and members of the workflow's team."""
    if actor.user.is_admin or actor.id in (data.get("owner_id"), data.get("workflow_owner_id")):
        return True
    team_id = data.get("team_id")
    return bool(team_id) and actor.team_role(str(team_id)) is not None


class WorkflowRuns:
    """Starts runs, shows them to those who may see them, and moves them on as their jobs finish."""

    def __init__(
        self,
        docs: DocStore,
        desk: JobDesk,
        workflows: Workflows,
        directory: Directory,
        *,
        webhooks: WebhookUrls | None = None,
        max_page_size: int = 100,
        recheck_seconds: float = 10.0,
    ) -> None:
        self._docs = docs
        self._desk = desk
        self._workflows = workflows
        self._directory = directory
        self._webhooks = webhooks
        self._max_page_size = max_page_size
        self._recheck = recheck_seconds

    # ------------------------------------------------------------ the API's side

    async def start(
        self, actor: Actor | None, workflow_id: str, webhook: Mapping[str, Any] | None = None
    ) -> Document:
        """A new run of the workflow as it is now; the steps without inputs are submitted at once.

        A `webhook` is checked here and called once, when the whole run is finished."""
        who = require_generate(actor)
        hook = await self._check_webhook(webhook)
        workflow = await self._workflows.get(who, workflow_id)
        if not may_change(who, workflow.data):
            raise forbidden("Team viewers cannot run the team's workflows.")
        data = workflow.data
        now = now_iso()
        run = await self._docs.create(
            WORKFLOW_RUNS,
            new_id(),
            {
                "workflow_id": workflow.id,
                "workflow_owner_id": data["owner_id"],
                "team_id": data.get("team_id"),
                "owner_id": who.id,
                "status": JobStatus.RUNNING.value,
                "steps": [new_step(node) for node in data["nodes"]],
                "edges": list(data["edges"]),
                "webhook": hook,
                "job_ids": [],
                "created_at": now,
                "updated_at": now,
                "finished_at": None,
            },
        )
        try:
            await self.advance(run.id, who)
        except Exception:  # the run exists: the workers' re-check submits what could not be now
            log.warning(
                "starting a workflow run's steps failed; the re-check will",
                extra={"run_id": run.id},
                exc_info=True,
            )
        return await self._docs.get(WORKFLOW_RUNS, run.id) or run

    async def _check_webhook(self, webhook: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if webhook is None:
            return None
        if self._webhooks is None:
            raise bad_input("webhook", "webhooks are not available on this server")
        return await self._webhooks.check(webhook, "webhook")

    async def get(self, actor: Actor | None, run_id: str) -> Document:
        """A run the caller may see; NOT_FOUND for everyone else."""
        who = require_active(actor)
        doc = await self._docs.get(WORKFLOW_RUNS, run_id)
        if doc is None or not may_read_run(who, doc.data):
            raise not_found("WorkflowRun", run_id)
        return doc

    async def runs_of(self, workflow: Document, page: PageRequest) -> Page:
        """A workflow's runs, newest first (the workflow was read through the caller's rights)."""
        return await paginate(
            self._docs,
            WORKFLOW_RUNS,
            [Filter("workflow_id", "==", workflow.id)],
            Order("created_at", True),
            page,
            max_size=self._max_page_size,
        )

    # ------------------------------------------------------------ moving runs on

    async def advance(self, run_id: str, actor: Actor | None = None) -> None:
        """Bring the run up to date with its jobs and submit every step whose inputs now exist.

        `actor` submits the jobs; by default the person who started the run, as they are now."""
        for _ in range(_ADVANCE_ROUNDS):
            run = await self._docs.get(WORKFLOW_RUNS, run_id)
            if run is None or JobStatus(run.data["status"]).is_final:
                return
            steps = run.data["steps"]
            ids = [step["job_id"] for step in steps if step.get("job_id")]
            jobs = {doc.id: doc.data for doc in await self._docs.get_many(JOBS, ids) if doc is not None}
            plan = plan_run(steps, run.data["edges"], jobs)
            updated = plan.steps
            if plan.ready:
                submitter = actor or await self._person(run.data["owner_id"])
                for index, filled in plan.ready:
                    updated[index] = await self._submit(run, updated[index], filled, submitter)
            status = run_status(updated)
            if updated == steps and status == run.data["status"]:
                return
            committed = await self._commit(run, updated, status)
            if committed and not plan.ready:
                return
            # Submitted steps may have failed (their dependants fail next round), or the run changed.

    async def _person(self, user_id: str) -> Actor | None:
        try:
            return Actor(await self._directory.require(user_id))
        except StudioError:
            return None  # submit then refuses, and the step says why

    async def _submit(
        self, run: Document, step: dict[str, Any], filled: dict[str, Any], actor: Actor | None
    ) -> dict[str, Any]:
        try:
            job = await self._desk.submit(
                actor,
                JobKind(step["kind"]),
                filled,
                idempotency_key=f"workflow-run:{run.id}:{step['node']}",
            )
        except StudioError as error:
            if error.retryable:
                raise  # the next advance tries again
            return {**step, "status": FAILED, "reason": f"not submitted: {error.code.value}: {error.message}"}
        await self._docs.update(
            JOBS, job.id, {"workflow_run_id": run.id, "workflow_node": step["node"], "workflow_open": True}
        )
        return sync_step({**step, "job_id": job.id}, job.data)

    async def _commit(self, run: Document, steps: list[dict[str, Any]], status: str) -> bool:
        """Write the run only if nobody changed it since it was read."""

        async def write(tx: Transaction) -> bool:
            current = await tx.get(WORKFLOW_RUNS, run.id)
            if current is None or current.version != run.version:
                return False
            now = now_iso()
            changes: dict[str, Any] = {
                "steps": steps,
                "status": status,
                "job_ids": [step["job_id"] for step in steps if step.get("job_id")],
                "updated_at": now,
            }
            if JobStatus(status).is_final:
                changes["finished_at"] = now
                finished = {**current.data, **changes}
                record_finished(tx, "workflow_run", run.id, finished, run_payload(run.id, finished))
            tx.update(WORKFLOW_RUNS, run.id, changes)
            return True

        return await self._docs.run_transaction(write)

    # ------------------------------------------------------------ the worker's side

    async def follow(self) -> None:
        """Until cancelled: advance runs as their jobs change status, and re-check unfinished runs."""
        recheck = asyncio.create_task(self._recheck_forever(), name="workflow-recheck")
        try:
            while True:
                try:
                    await self._follow_jobs()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("workflow follower failed; re-establishing", exc_info=True)
                    await asyncio.sleep(1.0)
        finally:
            recheck.cancel()
            await asyncio.gather(recheck, return_exceptions=True)

    async def _follow_jobs(self) -> None:
        seen: dict[str, str] = {}  # job id -> last status acted on: progress and leases are no news
        async for changes in self._docs.watch_query(JOBS, OPEN_JOBS):
            for change in changes:
                job = change.document
                if change.kind == "removed":
                    seen.pop(job.id, None)
                    continue
                status, run_id = job.data.get("status"), job.data.get("workflow_run_id")
                if not run_id or seen.get(job.id) == status:
                    continue
                seen[job.id] = str(status)
                try:
                    await self.advance(str(run_id))
                except Exception:
                    log.warning("advancing a workflow run failed", extra={"run_id": run_id}, exc_info=True)
                    continue
                if JobStatus(str(status)).is_final:
                    with contextlib.suppress(Exception):
                        await self._docs.update(JOBS, job.id, {"workflow_open": False})

    async def recheck(self) -> int:
        """Advance every unfinished run once (what a missed event or a restart left behind)."""
        running = await self._docs.query(
            Query(WORKFLOW_RUNS, (Filter("status", "==", JobStatus.RUNNING.value),), limit=200)
        )
        for run in running:
            try:
                await self.advance(run.id)
            except Exception:
                log.warning("re-checking a workflow run failed", extra={"run_id": run.id}, exc_info=True)
        return len(running)

    async def _recheck_forever(self) -> None:
        await asyncio.sleep(self._recheck)
        await in_rounds(self.recheck, self._recheck, "the workflow re-check")


def run_payload(run_id: str, run: Mapping[str, Any]) -> dict[str, Any]:
    """The `workflow_run.finished` webhook's data: the run, and each step's status and job."""
    return {
        "id": global_id("WorkflowRun", run_id),
        "workflowId": global_id("Workflow", str(run["workflow_id"])),
        "status": run["status"],
        "steps": [
            {
                "node": step["node"],
                "status": step["status"],
                "jobId": global_id("Job", step["job_id"]) if step.get("job_id") else None,
                "reason": step.get("reason"),
            }
            for step in run["steps"]
        ],
        "finishedAt": run.get("finished_at"),
    }
