"""The `jobs` documents are the queue: workers watch QUEUED jobs and race to claim them.

The claim itself is the runner's conditional transition, so several workers (in one process or
many) can all be handed the same id; exactly one wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from domain.jobs import JOBS
from domain.ports import DocStore, Filter, JobHandler

log = logging.getLogger("genmedia.queue")


class DocstoreQueue:
    """Feeds QUEUED job ids, oldest first, to at most `concurrency` handlers at a time."""

    def __init__(self, docs: DocStore, *, rescan_seconds: float = 5.0) -> None:
        self._docs = docs
        self._rescan = rescan_seconds
        self._wake = asyncio.Event()

    async def enqueue(self, job_id: str, *, attempt: int = 0) -> None:
        """Nothing to send: the QUEUED document is the message. Wake local workers at once."""
        self._wake.set()

    async def serve(self, handler: JobHandler, *, concurrency: int) -> None:
        queued: dict[str, str] = {}  # job id -> created_at
        running: set[str] = set()
        slots = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task[None]] = set()

        async def follow() -> None:
            while True:
                try:
                    async for changes in self._docs.watch_query(JOBS, (Filter("status", "==", "QUEUED"),)):
                        for change in changes:
                            if change.kind == "removed":
                                queued.pop(change.document.id, None)
                            else:
                                queued[change.document.id] = change.document.data.get("created_at", "")
                        self._wake.set()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("queue watch failed; re-establishing", exc_info=True)
                    await asyncio.sleep(1.0)

        async def run(job_id: str) -> None:
            try:
                await handler(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job handler failed", extra={"job_id": job_id})
            finally:
                running.discard(job_id)
                slots.release()
                self._wake.set()

        watcher = asyncio.create_task(follow(), name="queue-watch")
        try:
            while True:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that lands
                # as the wait completes, and shutdown would hang.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._rescan):
                        await self._wake.wait()
                self._wake.clear()
                for job_id in sorted(queued, key=lambda ident: (queued[ident], ident)):
                    if job_id in running:
                        continue
                    if slots.locked():
                        break
                    await slots.acquire()
                    running.add(job_id)
                    queued.pop(job_id, None)
                    task = asyncio.create_task(run(job_id), name=f"job-{job_id}")
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            watcher.cancel()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(watcher, *tasks, return_exceptions=True)
