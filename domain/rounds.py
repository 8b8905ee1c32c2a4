"""Background work done in rounds for as long as a worker runs: sweeps and re-checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("genmedia.workers")


async def in_rounds(work: Callable[[], Awaitable[object]], every_seconds: float, what: str) -> None:
    """Run `work`, then again every `every_seconds`, until cancelled. A failed round is logged
    (naming `what`) and the next one comes as planned: a flaky store never stops the worker."""
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s failed; trying again in %.1f s", what, every_seconds, exc_info=True)
        await asyncio.sleep(every_seconds)
