"""The subscription hub: one docstore watch per document however many subscribers, every state in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backends.docstore.sqlite import SqliteDocStore
from domain.ports import Document
from subscriptions.hub import DocumentHub


@pytest.fixture
async def docs(tmp_path: Path) -> AsyncIterator[SqliteDocStore]:
    store = SqliteDocStore(tmp_path / "hub.db")
    try:
        yield store
    finally:
        await store.close()


async def collect(hub: DocumentHub, doc_id: str, until: int) -> list[int]:
    seen: list[int] = []
    async for doc in hub.subscribe(doc_id):
        assert isinstance(doc, Document)
        seen.append(doc.data["n"])
        if doc.data["n"] == until:
            return seen
    return seen


async def test_fifty_subscribers_share_one_watch_and_all_see_every_state(docs: SqliteDocStore) -> None:
    await docs.create("jobs", "j1", {"n": 0})
    hub = DocumentHub(docs, "jobs")
    readers = [asyncio.create_task(collect(hub, "j1", until=20)) for _ in range(50)]
    while hub.subscriber_count("j1") < 50:
        await asyncio.sleep(0.01)
    assert hub.watch_count == 1 and docs.watch_count == 1
    for n in range(1, 21):
        await docs.update("jobs", "j1", {"n": n})
    results = await asyncio.wait_for(asyncio.gather(*readers), 5)
    assert all(seen[-1] == 20 and seen == sorted(set(seen)) for seen in results)
    assert all(seen == list(range(seen[0], 21)) for seen in results), "no state skipped after joining"
    await asyncio.sleep(0.05)
    assert hub.watch_count == 0 and docs.watch_count == 0, "the last subscriber leaving closes the watch"


async def test_a_late_subscriber_first_gets_the_current_state(docs: SqliteDocStore) -> None:
    await docs.create("jobs", "j2", {"n": 0})
    hub = DocumentHub(docs, "jobs")
    early = asyncio.create_task(collect(hub, "j2", until=3))
    while hub.subscriber_count("j2") < 1:
        await asyncio.sleep(0.01)
    await docs.update("jobs", "j2", {"n": 1})
    await docs.update("jobs", "j2", {"n": 2})
    await asyncio.sleep(0.05)
    late = asyncio.create_task(collect(hub, "j2", until=3))
    await asyncio.sleep(0.05)
    await docs.update("jobs", "j2", {"n": 3})
    assert await asyncio.wait_for(late, 5) == [2, 3]
    assert await asyncio.wait_for(early, 5) == [0, 1, 2, 3]
