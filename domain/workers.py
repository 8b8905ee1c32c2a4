"""A worker: the queue feeding the runner, plus the sweeper that recovers jobs whose worker died."""

from __future__ import annotations

import asyncio
import logging

from domain.ports import JobQueue
from domain.runner import JobRunner

log = logging.getLogger("genmedia.worker")


async def run_workers(queue: JobQueue, runner: JobRunner, *, concurrency: int, sweep_seconds: float) -> None:
    """Run until cancelled: `concurrency` jobs at a time, and a sweep every `sweep_seconds`."""

    async def sweep_forever() -> None:
        while True:
            try:
                await runner.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("sweep failed", exc_info=True)
            await asyncio.sleep(sweep_seconds)

    sweeper = asyncio.create_task(sweep_forever(), name="sweeper")
    try:
        await queue.serve(runner.run, concurrency=concurrency)
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
