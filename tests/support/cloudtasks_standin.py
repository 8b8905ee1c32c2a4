"""A stand-in of the Cloud Tasks API on 127.0.0.1, for the enqueue side and the delivery side.

Enqueue: `POST /v2/projects/P/locations/L/queues/Q/tasks` with `{"task": {...}}`, as the REST API
takes it (what `backends.queue.cloudtasks` sends). The
task is recorded and echoed back; a task whose name exists already is refused with HTTP 409
ALREADY_EXISTS, in Google's error shape. `fail_next(n, status)` answers the next creates with an
error; `calls` counts every create asked for.

Delivery: `deliver(task)` does what Cloud Tasks does when the task is due: POSTs the task's
`httpRequest` (URL, method, headers, base64 body) to the worker with Cloud Tasks' headers
(`X-CloudTasks-QueueName`, `-TaskName`, `-TaskRetryCount`, `-TaskExecutionCount`, `-TaskETA`,
`User-Agent: Google-Cloud-Tasks`) and `Authorization: Bearer <OIDC token>` minted for the task's
`oidcToken` (service account email, audience) and signed by a key of the test certs server.
Retry and execution counts advance as Cloud Tasks' do: every dispatch after the first is a retry;
an answered non-2xx counts as an execution. The token can be replaced (`token=`; "" for none) to test refusals.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.support.certs_server import CertsServer

_CREATE = re.compile(r"/v2/(?P<parent>projects/[^/]+/locations/[^/]+/queues/[^/]+)/tasks")
SERVICE_ACCOUNT_ID = "104729551234567890123"  # the `sub` / `azp` of the invoker account's tokens


@dataclass
class StoredTask:
    """A task as created, and how its deliveries went."""

    name: str
    document: dict[str, Any]
    dispatches: int = 0  # deliveries attempted
    executions: int = 0  # deliveries answered with a non-2xx status
    statuses: list[int] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def queue_id(self) -> str:
        return self.name.split("/queues/", 1)[1].split("/", 1)[0]

    @property
    def http_request(self) -> dict[str, Any]:
        return dict(self.document["httpRequest"])

    @property
    def body(self) -> dict[str, Any]:
        return dict(json.loads(base64.b64decode(self.http_request.get("body", ""))))


@dataclass
class CloudTasksStandIn:
    """The running stand-in; `certs` signs the OIDC tokens of deliveries."""

    base_url: str
    certs: CertsServer
    tasks: dict[str, StoredTask] = field(default_factory=dict)
    calls: int = 0
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def task_named(self, task_id: str) -> StoredTask:
        with self._lock:
            (task,) = [task for task in self.tasks.values() if task.task_id == task_id]
        return task

    def for_job(self, job_id: str) -> list[StoredTask]:
        with self._lock:
            return [task for task in self.tasks.values() if task.body.get("jobId") == job_id]

    def oidc_token(self, task: StoredTask, **changes: Any) -> str:
        """The token Cloud Tasks would mint for the task (claims changed by `changes`; None drops one)."""
        oidc = task.http_request["oidcToken"]
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": oidc.get("audience") or task.http_request["url"],
            "azp": SERVICE_ACCOUNT_ID,
            "email": oidc["serviceAccountEmail"],
            "email_verified": True,
            "exp": now + 3600,
            "iat": now,
            "iss": "https://accounts.google.com",
            "sub": SERVICE_ACCOUNT_ID,
        }
        claims.update(changes)
        return self.certs.sign({k: v for k, v in claims.items() if v is not None})

    async def deliver(
        self,
        task: StoredTask,
        *,
        token: str | None = None,
        retry_count: int | None = None,
        timeout: float = 60.0,
    ) -> httpx.Response:
        """Dispatch the task to its worker as Cloud Tasks would; the worker's response."""
        request = task.http_request
        with self._lock:
            retries = task.dispatches if retry_count is None else retry_count
            executions = task.executions
            task.dispatches += 1
        headers = dict(request.get("headers") or {})
        headers.update(
            {
                "User-Agent": "Google-Cloud-Tasks",
                "X-CloudTasks-QueueName": task.queue_id,
                "X-CloudTasks-TaskName": task.task_id,
                "X-CloudTasks-TaskRetryCount": str(retries),
                "X-CloudTasks-TaskExecutionCount": str(executions),
                "X-CloudTasks-TaskETA": f"{time.time():.6f}",
            }
        )
        token = self.oidc_token(task) if token is None else token
        if token:  # "" sends no Authorization header at all
            headers["Authorization"] = f"Bearer {token}"
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.request(
                request.get("httpMethod", "POST"),
                request["url"],
                content=base64.b64decode(request.get("body", "")),
                headers=headers,
            )
        with self._lock:
            task.statuses.append(response.status_code)
            if not 200 <= response.status_code < 300:
                task.executions += 1
        return response

    def _create(self, parent: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls += 1
            if self._failures:
                status = self._failures.pop(0)
                return status, _error(
                    status, "UNAVAILABLE" if status == 503 else "INTERNAL", "injected failure"
                )
            task = body.get("task")
            if not isinstance(task, dict) or not isinstance(task.get("httpRequest"), dict):
                return 400, _error(400, "INVALID_ARGUMENT", "task.httpRequest is required")
            name = task.get("name") or f"{parent}/tasks/{len(self.tasks) + 1:020d}"
            if not name.startswith(f"{parent}/tasks/") or not re.fullmatch(
                r"[A-Za-z0-9_-]{1,500}", name.rsplit("/", 1)[-1]
            ):
                return 400, _error(400, "INVALID_ARGUMENT", f"invalid task name {name}")
            if name in self.tasks:
                return 409, _error(409, "ALREADY_EXISTS", "Requested entity already exists")
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            document = {**task, "name": name, "createTime": now, "scheduleTime": now, "view": "BASIC"}
            document.setdefault("dispatchDeadline", "600s")
            self.tasks[name] = StoredTask(name, document)
            return 200, {**document, "dispatchCount": 0, "responseCount": 0}


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": code}}


def _handler(ref: list[CloudTasksStandIn]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            match = _CREATE.fullmatch(self.path.split("?", 1)[0])
            if match is None:
                self._answer(404, _error(404, "NOT_FOUND", f"no such method: {self.path}"))
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._answer(400, _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
                return
            self._answer(*ref[0]._create(match["parent"], body if isinstance(body, dict) else {}))

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(data)

    return Handler


@contextlib.contextmanager
def cloudtasks_standin(certs: CertsServer) -> Iterator[CloudTasksStandIn]:
    """The stand-in on a free 127.0.0.1 port until the block ends."""
    ref: list[CloudTasksStandIn] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    httpd.daemon_threads = True
    ref.append(CloudTasksStandIn(f"http://127.0.0.1:{httpd.server_port}", certs))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield ref[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
