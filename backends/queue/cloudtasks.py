"""JobQueue on Google Cloud Tasks: one HTTP task per job delivery, pushed to the worker service.

Why the REST API (`v2 projects.locations.queues.tasks.create`) through httpx and google-auth rather
than the `google-cloud-tasks` library: the library's asyncio client speaks only gRPC, and its REST
transport is synchronous (requests), so every enqueue would need a thread; it would also add a
protobuf-generated package to the API's cold start for what is one small JSON POST. With httpx
the enqueue is a plain awaited request on the event loop; google-auth supplies the access token
(Application Default Credentials — on Cloud Run the service's own account), refreshed in a thread
only when it is about to expire. With `api_endpoint` set elsewhere (a stand-in on loopback), no
credentials are sent.

Each task is named after the job and its attempt count (`<job id>-a<attempt>`), so enqueueing the
same delivery twice is one task: Cloud Tasks answers ALREADY_EXISTS (HTTP 409), taken as success.
A job the sweeper re-queues after a lost lease has a higher attempt count, hence a new name — Cloud
Tasks refuses a name reused within about an hour of its task's end, so reusing one would lose the
delivery. The task carries an OIDC token for `service_account` with `audience` (the worker URL by
default), which the worker endpoint verifies, and a JSON body `{"jobId", "attempt"}`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import re
from typing import Any

import httpx

from domain.errors import ErrorCode, StudioError
from domain.ports import JobHandler

log = logging.getLogger("genmedia.queue")

DEFAULT_API_ENDPOINT = "https://cloudtasks.googleapis.com"
_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_RETRYABLE = frozenset({429, 500, 502, 503, 504})


def task_id(job_id: str, attempt: int) -> str:
    """The task id of a job's delivery: letters, digits, `-` and `_` only, as Cloud Tasks requires."""
    return f"{_UNSAFE.sub('_', job_id)}-a{attempt}"


class CloudTasksQueue:
    """Enqueues job deliveries as Cloud Tasks HTTP tasks; delivery itself is the worker endpoint's."""

    def __init__(
        self,
        *,
        project: str,
        location: str,
        queue: str,
        worker_url: str,
        service_account: str,
        audience: str | None = None,
        api_endpoint: str = DEFAULT_API_ENDPOINT,
        dispatch_deadline_seconds: int = 1800,
        timeout_seconds: float = 10.0,
        attempts: int = 3,
        credentials: Any = None,
    ) -> None:
        if not worker_url.startswith(("https://", "http://")):
            raise ValueError("worker_url must be an http(s) URL")
        self.parent = f"projects/{project}/locations/{location}/queues/{queue}"
        self.worker_url = worker_url
        self.service_account = service_account
        self.audience = audience or worker_url
        self._endpoint = api_endpoint.rstrip("/")
        self._deadline = dispatch_deadline_seconds
        self._timeout = timeout_seconds
        self._attempts = max(1, attempts)
        self._credentials = credentials
        # A non-Google endpoint (a stand-in) gets no credentials; Google's gets ADC unless given some.
        self._anonymous = credentials is None and self._endpoint != DEFAULT_API_ENDPOINT
        self._http: httpx.AsyncClient | None = None
        self._token_lock = asyncio.Lock()

    async def enqueue(self, job_id: str, *, attempt: int = 0) -> None:
        """Create the job's task; an existing task of the same name is the same delivery."""
        name = f"{self.parent}/tasks/{task_id(job_id, attempt)}"
        payload = json.dumps({"jobId": job_id, "attempt": attempt}).encode()
        body = {
            "task": {
                "name": name,
                "dispatchDeadline": f"{self._deadline}s",
                "httpRequest": {
                    "url": self.worker_url,
                    "httpMethod": "POST",
                    "headers": {"Content-Type": "application/json"},
                    "body": base64.b64encode(payload).decode(),
                    "oidcToken": {"serviceAccountEmail": self.service_account, "audience": self.audience},
                },
            }
        }
        for attempt_no in range(1, self._attempts + 1):
            try:
                status, text = await self._post(f"{self._endpoint}/v2/{self.parent}/tasks", body)
            except httpx.HTTPError as error:
                status, text = 0, type(error).__name__
            if status == 200:
                log.info("task created", extra={"job_id": job_id, "task": name})
                return
            if status == 409:  # ALREADY_EXISTS: this delivery is already enqueued
                log.info("task already exists", extra={"job_id": job_id, "task": name})
                return
            if status not in _RETRYABLE and status != 0:
                break
            if attempt_no < self._attempts:
                await asyncio.sleep(min(0.2 * 2**attempt_no, 2.0) + random.uniform(0, 0.1))
        log.error("creating a Cloud Tasks task failed", extra={"job_id": job_id, "status": status})
        raise StudioError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"The job queue refused the job (HTTP {status or 'no answer'}: {text[:200]}).",
            retryable=True,
        )

    async def serve(self, handler: JobHandler, *, concurrency: int) -> None:
        """Cloud Tasks pushes to the worker endpoint: nothing to pull, so wait until cancelled."""
        await asyncio.Event().wait()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _post(self, url: str, body: dict[str, Any]) -> tuple[int, str]:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        headers = {"Content-Type": "application/json"}
        if not self._anonymous:
            headers["Authorization"] = f"Bearer {await self._token()}"
        response = await self._http.post(url, json=body, headers=headers)
        return response.status_code, response.text

    async def _token(self) -> str:
        """An OAuth access token for Cloud Tasks; google-auth's refresh blocks, so it runs in a thread."""
        async with self._token_lock:
            if self._credentials is None:
                import google.auth

                self._credentials, _ = await asyncio.to_thread(google.auth.default, scopes=[_SCOPE])
            credentials = self._credentials
            if not credentials.valid:
                from google.auth.transport.requests import Request

                await asyncio.to_thread(credentials.refresh, Request())
            return str(credentials.token)
