"""`POST /internal/tasks/run`: where Cloud Tasks delivers jobs to the worker service.

Only a request carrying a Google-signed OIDC token (`Authorization: Bearer`) for the configured
audience and service account is heard. The body is the task's `{"jobId": ...}`.

Cloud Tasks retries every answer that is not 2xx (with the queue's backoff, up to its max
attempts), so the answers are chosen by whether a retry could help:

| answer | when | Cloud Tasks |
|---|---|---|
| 200 `finished` / `nothing-to-do` / `elsewhere` / `gave-up` | ran to a final status; missing or already final (a duplicate); run by another delivery; delivered more than the max attempts, so the job was failed | done |
| 200 `ignored` | an authenticated body without a job id: no retry can fix it (logged as an error) | done |
| 503 `retry` | the job went back to the queue (retryable failure, worker stopping) | retries |
| 503 | signing keys or the docstore unavailable | retries |
| 401 / 403 | no valid token / a valid token of another account | retries, touching nothing: fix the queue's OIDC settings |

The X-CloudTasks-TaskName, -QueueName, -TaskRetryCount and -TaskExecutionCount headers are logged
and the retry count is weighed against the configured max attempts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from domain.errors import ErrorCode, StudioError
from domain.task_delivery import Delivery, TaskDeliveries

log = logging.getLogger("genmedia.tasks")

TASKS_PATH = "/internal/tasks/run"

TokenVerifier = Callable[[str], Awaitable[Mapping[str, Any]]]


def _count(request: Request, name: str) -> int:
    try:
        return max(0, int(request.headers.get(name, "0")))
    except ValueError:
        return 0


class TaskEndpoint:
    """The Starlette endpoint; `verify` checks the OIDC token, `deliveries` runs the job."""

    def __init__(self, verify: TokenVerifier, deliveries: TaskDeliveries) -> None:
        self._verify = verify
        self._deliveries = deliveries

    async def handle(self, request: Request) -> Response:
        """The route handler (a method: Starlette would take a callable instance for an ASGI app)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _refuse(401, "a bearer OIDC token is required")
        try:
            await self._verify(token.strip())
        except StudioError as error:
            if error.code is ErrorCode.FORBIDDEN:
                return _refuse(403, error.message)
            if error.code is ErrorCode.UNAUTHENTICATED:
                return _refuse(401, error.message)
            return JSONResponse({"outcome": "unavailable", "error": error.message}, 503)

        delivery = Delivery(
            job_id=_job_id(await request.body()),
            task_name=request.headers.get("x-cloudtasks-taskname", ""),
            queue_name=request.headers.get("x-cloudtasks-queuename", ""),
            retry_count=_count(request, "x-cloudtasks-taskretrycount"),
            execution_count=_count(request, "x-cloudtasks-taskexecutioncount"),
        )
        if not delivery.job_id:
            log.error("a task without a job id", extra={"task": delivery.task_name})
            return JSONResponse({"outcome": "ignored", "error": "the task body names no jobId"}, 200)
        try:
            outcome = await self._deliveries.deliver(delivery)
        except Exception:  # the docstore or blob store failing: a later delivery may well succeed
            log.exception(
                "task delivery failed", extra={"job_id": delivery.job_id, "task": delivery.task_name}
            )
            return JSONResponse({"outcome": "retry", "jobId": delivery.job_id}, 503)
        return JSONResponse(
            {"outcome": outcome.value, "jobId": delivery.job_id}, 503 if outcome.retry else 200
        )


def _job_id(body: bytes) -> str:
    try:
        document = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return ""
    job_id = document.get("jobId") if isinstance(document, dict) else None
    return job_id if isinstance(job_id, str) and 0 < len(job_id) <= 128 else ""


def _refuse(status: int, message: str) -> Response:
    log.warning("task delivery refused", extra={"status": status, "reason": message})
    return JSONResponse(
        {"error": message}, status, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None
    )
