"""What the end-to-end tests do to a running studio: submit, follow over WebSocket, poll, download."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.client import StudioClient, Subscriptions
from tests.support.server import GENMEDIA, ROOT

ASSET = "id kind url mimeType bytes contentSha256 durationSeconds text"
JOB = f"id status progress stage attempts error {{ code message }} assets {{ {ASSET} }}"
PROGRESS = f"subscription($id: ID!) {{ jobProgress(id: $id) {{ previousStatus job {{ {JOB} }} }} }}"
MUTATIONS = {
    "image": ("generateImage", "GenerateImageInput"),
    "video": ("generateVideo", "GenerateVideoInput"),
    "text": ("generateText", "GenerateTextInput"),
}


async def submit(client: StudioClient, kind: str, values: dict[str, Any]) -> dict[str, Any]:
    field, input_type = MUTATIONS[kind]
    data = await client.data(
        f"mutation($input: {input_type}!) {{ job: {field}(input: $input) {{ {JOB} }} }}", {"input": values}
    )
    return dict(data["job"])


async def job(client: StudioClient, job_id: str) -> dict[str, Any]:
    data = await client.data(f"query($id: ID!) {{ job(id: $id) {{ {JOB} }} }}", {"id": job_id})
    return dict(data["job"])


class JobFeed:
    """One `jobProgress` subscription, read event by event."""

    def __init__(self, socket: Subscriptions, op_id: str) -> None:
        self.socket = socket
        self.op_id = op_id
        self.events: list[dict[str, Any]] = []
        self.completed = False

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next event of the job, or None once the subscription completed; raises on a timeout."""
        while not self.completed:
            message = json.loads(await asyncio.wait_for(self.socket.ws.recv(), timeout))
            if message.get("id") != self.op_id:
                continue
            if message["type"] == "next":
                payload = message["payload"]
                assert not payload.get("errors"), payload
                event = dict(payload["data"]["jobProgress"])
                self.events.append(event)
                return event
            assert message["type"] == "complete", message
            self.completed = True
        return None

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """Read events until one satisfies `predicate` (within `timeout` seconds overall)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching event in {timeout}s; got {self.statuses()}")
            event = await self.next(left)
            if event is None:
                raise AssertionError(f"the subscription completed first: {self.statuses()}")
            if predicate(event):
                return event

    async def to_the_end(self, timeout: float) -> list[dict[str, Any]]:
        """Every remaining event until the subscription completes; all events seen so far."""
        deadline = time.monotonic() + timeout
        while not self.completed:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the job did not finish in {timeout}s; got {self.statuses()}")
            await self.next(left)
        return self.events

    def statuses(self) -> list[tuple[str, float]]:
        return [(event["job"]["status"], event["job"]["progress"]) for event in self.events]


async def subscribe(socket: Subscriptions, job_id: str) -> JobFeed:
    ack = await socket.ack()
    assert ack["type"] == "connection_ack", ack
    return JobFeed(socket, await socket.subscribe(PROGRESS, {"id": job_id}))


async def follow(client: StudioClient, job_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every event of one job, from a subscription opened now, until it completes."""
    async with client.socket() as socket:
        feed = await subscribe(socket, job_id)
        return await feed.to_the_end(timeout)


async def poll(
    probe: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], *, timeout: float, every: float = 0.05
) -> Any:
    """Call `probe` until `done(result)`; the last result, or TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {result!r} after {timeout}s")
        await asyncio.sleep(every)


def assert_monotonic(events: list[dict[str, Any]]) -> None:
    progress = [event["job"]["progress"] for event in events]
    assert progress == sorted(progress), f"progress went back: {progress}"


async def download(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(url)


async def assert_downloads(asset: Mapping[str, Any], url: str | None = None) -> httpx.Response:
    """The asset's signed URL serves exactly its bytes."""
    response = await download(url or asset["url"])
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers["content-type"].split(";")[0] == asset["mimeType"].split(";")[0]
    assert len(response.content) == asset["bytes"]
    assert hashlib.sha256(response.content).hexdigest() == asset["contentSha256"]
    return response


def today_window() -> dict[str, str]:
    """`from` and `to` around now, for usage totals."""
    now = datetime.now(UTC)
    return {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}


USAGE = "query($from: DateTime!, $to: DateTime!) { me { usage(from: $from, to: $to) { images videos texts jobs failedJobs } } }"


async def usage(client: StudioClient) -> dict[str, Any]:
    return dict((await client.data(USAGE, today_window()))["me"]["usage"])


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(*args: str, env: Mapping[str, str], timeout: float = 30.0) -> CliResult:
    """Run `genmedia ARGS` as `python -m cli` (its own process group, killed on a timeout)."""
    process = await asyncio.create_subprocess_exec(
        *GENMEDIA,
        *args,
        env=dict(env),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = await process.communicate()
        raise AssertionError(
            f"genmedia {' '.join(args)} did not exit in {timeout}s:\n{out.decode()}\n{err.decode()}"
        ) from None
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    return CliResult(process.returncode, out.decode(), err.decode())
