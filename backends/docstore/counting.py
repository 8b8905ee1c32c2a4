"""A DocStore wrapper that counts round trips: per request (X-Docstore-Calls) and in /metrics."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from prometheus_client import Counter

from domain.ports import Change, DocStore, Document, Filter, Query, Transaction

T = TypeVar("T")
calls_var: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("docstore_calls", default=None)
DOCSTORE_CALLS = Counter("genmedia_docstore_calls_total", "Docstore round trips", ["operation"])


def _count(operation: str) -> None:
    DOCSTORE_CALLS.labels(operation).inc()
    box = calls_var.get()
    if box is not None:
        box[0] += 1


class CountingDocStore:
    """Delegates every call to the wrapped store, counting it first."""

    def __init__(self, inner: DocStore) -> None:
        self.inner = inner

    async def get(self, collection: str, doc_id: str) -> Document | None:
        _count("get")
        return await self.inner.get(collection, doc_id)

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> list[Document | None]:
        _count("get_many")
        return await self.inner.get_many(collection, doc_ids)

    async def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> Document:
        _count("create")
        return await self.inner.create(collection, doc_id, data)

    async def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> Document:
        _count("set")
        return await self.inner.set(collection, doc_id, data)

    async def update(
        self, collection: str, doc_id: str, changes: Mapping[str, Any], *, if_version: str | None = None
    ) -> Document:
        _count("update")
        return await self.inner.update(collection, doc_id, changes, if_version=if_version)

    async def delete(self, collection: str, doc_id: str, *, if_version: str | None = None) -> None:
        _count("delete")
        await self.inner.delete(collection, doc_id, if_version=if_version)

    async def query(self, query: Query) -> list[Document]:
        _count("query")
        return await self.inner.query(query)

    async def count(self, collection: str, filters: Sequence[Filter] = ()) -> int:
        _count("count")
        return await self.inner.count(collection, filters)

    async def run_transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        _count("transaction")
        return await self.inner.run_transaction(fn)

    def watch_document(self, collection: str, doc_id: str) -> AsyncIterator[Document | None]:
        return self.inner.watch_document(collection, doc_id)

    def watch_query(self, collection: str, filters: Sequence[Filter] = ()) -> AsyncIterator[list[Change]]:
        return self.inner.watch_query(collection, filters)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
