"""A worker: the queue feeding the runner, the sweeper that recovers jobs whose worker died, and the
webhook dispatcher that delivers what finished jobs queued."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from domain.ports import JobQueue
from domain.rounds import in_rounds
from domain.runner import JobRunner
from domain.webhooks import WebhookDispatcher

log = logging.getLogger("genmedia.worker")


async def run_workers(
    queue: JobQueue,
    runner: JobRunner,
    *,
    concurrency: int,
    sweep_seconds: float,
    followers: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> None:
    """Run until cancelled: `concurrency` jobs at a time, a sweep every `sweep_seconds`, the
    runner's webhook dispatcher (if it has one), so every worker process delivers webhooks, and
    `followers` (loops that react to finished jobs, such as the workflow runs' follower)."""

    sweeper = asyncio.create_task(in_rounds(runner.sweep, sweep_seconds, "the lease sweep"), name="sweeper")
    background = [sweeper]
    # getattr: callers may hand in a wrapper of the runner (the benchmarks do).
    dispatcher: WebhookDispatcher | None = getattr(runner, "webhooks", None)
    if dispatcher is not None:
        background.append(asyncio.create_task(dispatcher.run(), name="webhooks"))
    background += [asyncio.create_task(follow(), name="follower") for follow in followers]
    try:
        await queue.serve(runner.run, concurrency=concurrency)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
