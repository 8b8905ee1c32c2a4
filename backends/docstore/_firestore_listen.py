"""Firestore watches: a listener of the SDK's sync client feeding an asyncio queue, re-opened when
its stream dies, and how a new state of a document changes a query's matches."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("backends.docstore.firestore")

HEALTH_EVERY = 1.0  # seconds between checks that a listener's stream is still alive


# ---------------------------------------------------------------- watches


class Listen:
    """One watch: a listener of the sync client feeding an asyncio queue, re-opened if its stream dies."""

    def __init__(self, subscribe: Callable[[Callable[..., None]], Any] | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[int, list[Any], list[Any]] | None] = asyncio.Queue()
        self.subscribe = subscribe
        self.generation = 0
        self.handle: Any = None
        self.closed = False
        self.started_at = time.monotonic()
        self.failures = 0
        self._seen: set[int] = set()

    def _callback(self, generation: int) -> Callable[..., None]:
        def on_snapshot(docs: list[Any], changes: list[Any], read_time: Any) -> None:
            try:
                self.loop.call_soon_threadsafe(self.queue.put_nowait, (generation, list(docs), list(changes)))
            except RuntimeError:  # the loop has closed: nobody is left to watch
                pass

        return on_snapshot

    async def start(self) -> None:
        if self.subscribe is None:
            return
        self.generation += 1
        self.started_at = time.monotonic()
        callback, subscribe = self._callback(self.generation), self.subscribe
        opening = self.loop.run_in_executor(None, lambda: subscribe(callback))
        try:
            handle = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The listener still opens on its thread: close it as soon as it has.
            opening.add_done_callback(stop_when_open)
            raise
        if self.closed:
            stop_soon(handle)
        else:
            self.handle = handle

    async def next(self) -> tuple[bool, list[Any], list[Any]] | None:
        """The next snapshot as (first of its stream, docs, changes); None once the store closes."""
        while True:
            try:
                item = await asyncio.wait_for(self.queue.get(), HEALTH_EVERY)
            except TimeoutError:
                if not self.closed and self.subscribe is not None and not self._alive():
                    await self._reopen()
                continue
            if item is None:
                return None
            generation, docs, changes = item
            if generation != self.generation:
                continue  # from a listener since replaced
            first = generation not in self._seen
            self._seen.add(generation)
            return first, docs, changes

    def _alive(self) -> bool:
        return self.handle is not None and bool(self.handle.is_active)

    async def _reopen(self) -> None:
        """Listen again after the stream ended with an error the SDK does not recover from; streams
        that keep failing soon are re-opened less and less often (up to every 30 s)."""
        lived = time.monotonic() - self.started_at
        self.failures = 0 if lived > 60.0 else self.failures + 1
        _log.warning("a Firestore listener stopped (after %.1fs); listening again", lived)
        self.stop()
        if self.failures > 1:
            await asyncio.sleep(min(30.0, 0.5 * 2 ** (self.failures - 1)))
        try:
            await self.start()
        except Exception:
            self.started_at = time.monotonic()
            _log.warning("re-opening a Firestore listener failed", exc_info=True)

    def stop(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            stop_soon(handle)


def stop_when_open(opening: asyncio.Future[Any]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        stop_soon(opening.result())


def stop_soon(handle: Any) -> None:
    """Unsubscribe without blocking the loop (the SDK joins its threads)."""
    threading.Thread(target=unsubscribe, args=(handle,), daemon=True).start()


def unsubscribe(handle: Any) -> None:
    try:
        handle.unsubscribe()
    except Exception:  # the stream may have failed already
        _log.debug("unsubscribing a Firestore listener failed", exc_info=True)
