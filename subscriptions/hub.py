"""The hub: however many sockets follow one job, the process holds one docstore watch for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from domain.ports import DocStore, Document

log = logging.getLogger("genmedia.hub")
_UNSET = object()


@dataclass
class _Channel:
    subscribers: set[asyncio.Queue[Document | None]] = field(default_factory=set)
    latest: object = _UNSET
    task: asyncio.Task[None] | None = None


class DocumentHub:
    """Fans one watch of `collection/{id}` out to every subscriber, late ones first getting the latest state."""

    def __init__(self, docs: DocStore, collection: str, *, retry_seconds: float = 1.0) -> None:
        self._docs = docs
        self._collection = collection
        self._retry = retry_seconds
        self._channels: dict[str, _Channel] = {}

    @property
    def watch_count(self) -> int:
        """How many backend watches are open (one per followed document)."""
        return len(self._channels)

    def subscriber_count(self, doc_id: str) -> int:
        channel = self._channels.get(doc_id)
        return len(channel.subscribers) if channel else 0

    async def subscribe(self, doc_id: str) -> AsyncIterator[Document | None]:
        """Every state of the document, in order, starting with the current one."""
        channel = self._channels.get(doc_id)
        if channel is None:
            channel = self._channels[doc_id] = _Channel()
            channel.task = asyncio.create_task(self._follow(doc_id, channel), name=f"hub-{doc_id}")
        inbox: asyncio.Queue[Document | None] = asyncio.Queue()
        channel.subscribers.add(inbox)
        if channel.latest is not _UNSET:
            inbox.put_nowait(channel.latest)  # type: ignore[arg-type]
        try:
            while True:
                yield await inbox.get()
        finally:
            channel.subscribers.discard(inbox)
            if not channel.subscribers and self._channels.get(doc_id) is channel:
                del self._channels[doc_id]
                if channel.task is not None:
                    channel.task.cancel()

    async def _follow(self, doc_id: str, channel: _Channel) -> None:
        while True:
            try:
                watch = self._docs.watch_document(self._collection, doc_id)
                try:
                    async for state in watch:
                        if _same(channel.latest, state):
                            continue  # a re-established watch repeats the state we already sent
                        channel.latest = state
                        for inbox in channel.subscribers:
                            inbox.put_nowait(state)
                finally:
                    with contextlib.suppress(Exception):
                        await watch.aclose()  # type: ignore[attr-defined]
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("watch failed; re-establishing", extra={"doc_id": doc_id}, exc_info=True)
                await asyncio.sleep(self._retry)

    async def close(self) -> None:
        tasks = [channel.task for channel in self._channels.values() if channel.task]
        self._channels.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _same(previous: object, state: Document | None) -> bool:
    if previous is _UNSET:
        return False
    if previous is None or state is None:
        return previous is state
    assert isinstance(previous, Document)
    return previous.version == state.version
