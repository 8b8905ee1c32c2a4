"""What the API tests share: actors made once per module, submitting jobs, waiting for them, reading sockets."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from tests.support.client import StudioClient, Subscriptions
from tests.support.server import StudioProcess, mint_token

T = TypeVar("T")

INPUT_TYPES = {
    "generateImage": "GenerateImageInput",
    "generateVideo": "GenerateVideoInput",
    "generateText": "GenerateTextInput",
    "upscaleImage": "UpscaleImageInput",
}
UNFINISHED = "{ jobs(filter: {statuses: [QUEUED, RUNNING]}) { totalCount } }"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run async set-up from a module-scoped fixture (each test has its own event loop)."""
    return asyncio.run(coroutine)


async def new_client(
    studio: StudioProcess, studio_dir: Path, label: str, role: str = "USER", status: str = "ACTIVE"
) -> StudioClient:
    """A client for a brand-new user (unique email), for fixtures wider than one test."""
    email = f"{label}-{uuid.uuid4().hex[:12]}@example.com"
    return StudioClient(studio.base_url, await mint_token(studio_dir, email, role, status))


async def submit(
    client: StudioClient, field: str, values: dict[str, Any], selection: str = "id status"
) -> dict[str, Any]:
    """Send one generate*/upscale mutation that must succeed; the job as selected."""
    document = f"mutation($input: {INPUT_TYPES[field]}!) {{ job: {field}(input: $input) {{ {selection} }} }}"
    return dict((await client.data(document, {"input": values}))["job"])


async def submit_all(
    client: StudioClient, field: str, inputs: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Submit several jobs concurrently, as a front end queueing a batch would."""
    return list(await asyncio.gather(*(submit(client, field, values) for values in inputs)))


async def wait_for_jobs(client: StudioClient, timeout: float = 30.0) -> None:
    """Poll (bounded) until the caller has no QUEUED or RUNNING job left."""
    deadline = time.monotonic() + timeout
    while True:
        left = (await client.data(UNFINISHED))["jobs"]["totalCount"]
        if left == 0:
            return
        assert time.monotonic() < deadline, f"{left} jobs still unfinished after {timeout}s"
        await asyncio.sleep(0.05)


def around_now(hours: float = 24) -> dict[str, str]:
    """`from`/`to` variables for a usage window that surely holds what the test just did."""
    now = datetime.now(UTC)
    return {
        "from": (now - timedelta(hours=hours)).isoformat(),
        "to": (now + timedelta(hours=hours)).isoformat(),
    }


async def job_count(client: StudioClient) -> int:
    return int((await client.data("{ jobs { totalCount } }"))["jobs"]["totalCount"])


async def receive(socket: Subscriptions, timeout: float = 15.0) -> dict[str, Any]:
    """The next message on a graphql-transport-ws connection, whatever operation it belongs to."""
    return dict(json.loads(await asyncio.wait_for(socket.ws.recv(), timeout)))
