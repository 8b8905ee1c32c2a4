"""Firestore composite indexes, derived from the reads the studio really makes.

1. `RecordingDocStore` wraps any DocStore and keeps every read it is asked for (query, count,
   watch_query) while the real code runs.
2. `sent_queries` replays those reads through `FirestoreDocStore` with a client that records what
   would reach Firestore instead of sending it: only the filters the adapter's planner keeps native
   (the rest run in memory), and the orders it adds (the `__name__` tie-break included).
3. `required_index` applies Firestore's rules to one sent query: the composite index it needs, or
   None when single-field indexes serve it.
4. `index_file` renders `firestore.indexes.json`; `parse_index_file`, `serves`, `missing` and
   `unused` compare a file with what is needed.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from domain.ports import Change, DocStore, Document, Filter, Query, Transaction

T = TypeVar("T")

ASCENDING, DESCENDING, CONTAINS = "ASCENDING", "DESCENDING", "CONTAINS"
NAME = "__name__"
_EQUALITY = frozenset({"==", "in"})
_ARRAY = frozenset({"array_contains", "array_contains_any"})
_INEQUALITY = frozenset({"<", "<=", ">", ">=", "!=", "not-in", "not_in"})

# ---------------------------------------------------------------- recording the studio's reads


@dataclass(frozen=True)
class Read:
    """One read the studio asked a DocStore for."""

    kind: Literal["query", "count", "watch"]
    collection: str
    filters: tuple[Filter, ...] = ()
    query: Query | None = None


class RecordingDocStore:
    """Delegates every call to the wrapped store, keeping the reads in `reads`."""

    def __init__(self, inner: DocStore) -> None:
        self.inner = inner
        self.reads: list[Read] = []

    async def get(self, collection: str, doc_id: str) -> Document | None:
        return await self.inner.get(collection, doc_id)

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> list[Document | None]:
        return await self.inner.get_many(collection, doc_ids)

    async def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> Document:
        return await self.inner.create(collection, doc_id, data)

    async def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> Document:
        return await self.inner.set(collection, doc_id, data)

    async def update(
        self, collection: str, doc_id: str, changes: Mapping[str, Any], *, if_version: str | None = None
    ) -> Document:
        return await self.inner.update(collection, doc_id, changes, if_version=if_version)

    async def delete(self, collection: str, doc_id: str, *, if_version: str | None = None) -> None:
        await self.inner.delete(collection, doc_id, if_version=if_version)

    async def query(self, query: Query) -> list[Document]:
        self.reads.append(Read("query", query.collection, tuple(query.filters), query))
        return await self.inner.query(query)

    async def count(self, collection: str, filters: Sequence[Filter] = ()) -> int:
        self.reads.append(Read("count", collection, tuple(filters)))
        return await self.inner.count(collection, filters)

    async def run_transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        return await self.inner.run_transaction(fn)

    def watch_document(self, collection: str, doc_id: str) -> AsyncIterator[Document | None]:
        return self.inner.watch_document(collection, doc_id)

    def watch_query(self, collection: str, filters: Sequence[Filter] = ()) -> AsyncIterator[list[Change]]:
        self.reads.append(Read("watch", collection, tuple(filters)))
        return self.inner.watch_query(collection, filters)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


# ---------------------------------------------------------------- what the adapter sends Firestore


@dataclass(frozen=True)
class SentQuery:
    """A read as the Firestore adapter sends it: native filters and orders, paths as Firestore spells them."""

    collection: str
    filters: tuple[tuple[str, str], ...]  # (field path, operator)
    orders: tuple[tuple[str, str], ...] = ()  # (field path, ASCENDING | DESCENDING), __name__ included


class _Sink:
    """Collects the queries the fake client is asked to run (listeners start on executor threads)."""

    def __init__(self) -> None:
        self.sent: list[SentQuery] = []
        self._lock = threading.Lock()

    def add(self, query: SentQuery) -> None:
        with self._lock:
            self.sent.append(query)


@dataclass(frozen=True)
class _Result:
    value: int = 0


class _Listener:
    is_active = True

    def unsubscribe(self) -> None:
        """Nothing to stop."""


class _FakeQuery:
    """Just enough of the SDK's (async and sync) query surface for FirestoreDocStore's reads."""

    def __init__(self, sink: _Sink, sent: SentQuery) -> None:
        self._sink = sink
        self._sent = sent

    def _with(self, **changes: Any) -> _FakeQuery:
        fields = {
            "collection": self._sent.collection,
            "filters": self._sent.filters,
            "orders": self._sent.orders,
        }
        return _FakeQuery(self._sink, SentQuery(**(fields | changes)))

    def where(self, *, filter: Any) -> _FakeQuery:
        return self._with(filters=(*self._sent.filters, (filter.field_path, filter.op_string)))

    def order_by(self, path: str, direction: str = ASCENDING) -> _FakeQuery:
        return self._with(orders=(*self._sent.orders, (path, direction)))

    def start_after(self, values: Any) -> _FakeQuery:
        return self

    def limit(self, count: int) -> _FakeQuery:
        return self

    def select(self, paths: Any) -> _FakeQuery:
        return self

    async def stream(self) -> AsyncIterator[Any]:
        self._sink.add(self._sent)
        snapshots: list[Any] = []  # nothing is stored here
        for snapshot in snapshots:
            yield snapshot

    def count(self, alias: str | None = None) -> _FakeQuery:
        return self

    async def get(self) -> list[list[_Result]]:
        self._sink.add(self._sent)
        return [[_Result()]]

    def on_snapshot(self, callback: Callable[..., None]) -> _Listener:
        self._sink.add(self._sent)
        callback([], [], None)
        return _Listener()


class _FakeClient:
    def __init__(self, sink: _Sink) -> None:
        self._sink = sink

    def collection(self, name: str) -> _FakeQuery:
        return _FakeQuery(self._sink, SentQuery(name, ()))


async def sent_queries(reads: Iterable[Read]) -> list[SentQuery]:
    """What the Firestore adapter would send for each read (none for reads it answers without asking)."""
    from backends.docstore.firestore import FirestoreDocStore

    sink = _Sink()
    client = _FakeClient(sink)
    store = FirestoreDocStore("index-derivation", client=client)
    store._sync = client  # the listeners' (sync) client: the same recorder
    try:
        for read in reads:
            if read.kind == "query":
                assert read.query is not None
                await store.query(read.query)
            elif read.kind == "count":
                await store.count(read.collection, read.filters)
            else:
                changes = cast(AsyncGenerator[Any, None], store.watch_query(read.collection, read.filters))
                try:
                    await anext(changes)  # the listener is open once the first snapshot arrives
                finally:
                    await changes.aclose()
    finally:
        await store.close()
    return sink.sent


# ---------------------------------------------------------------- Firestore's indexing rules


@dataclass(frozen=True, order=True)
class IndexField:
    """One field of an index: its path and its mode."""

    path: str
    mode: str  # ASCENDING | DESCENDING | CONTAINS


@dataclass(frozen=True)
class CompositeIndex:
    """A composite index as declared in firestore.indexes.json (collection scope)."""

    collection: str
    fields: tuple[IndexField, ...]
    scope: str = "COLLECTION"


@dataclass(frozen=True)
class RequiredIndex:
    """The composite index one query needs: its equality and array-contains fields first (in the
    order the query sends them, though any order serves), then its ordered fields exactly. The
    `__name__` tie-break is implicit when it runs in the direction of the last field, else explicit."""

    collection: str
    prefix: tuple[IndexField, ...]
    suffix: tuple[IndexField, ...]

    @property
    def key(self) -> tuple[str, frozenset[tuple[str, bool]], tuple[IndexField, ...]]:
        """What tells two needs apart: the order of the prefix does not."""
        return self.collection, frozenset(_kind(f) for f in self.prefix), self.suffix

    @property
    def declared(self) -> CompositeIndex:
        return CompositeIndex(self.collection, (*self.prefix, *self.suffix))


def _kind(field: IndexField) -> tuple[str, bool]:
    """An equality-prefix field as index matching sees it: its path, and whether it is array-contains
    (an equality on a field is served by either direction)."""
    return field.path, field.mode == CONTAINS


def required_index(sent: SentQuery) -> RequiredIndex | None:
    """The composite index Firestore needs to run `sent`, or None when single-field indexes do.

    - Equality (`==`, `in`) filters alone are served by single-field indexes, merged.
    - Each inequality field not ordered explicitly is ordered implicitly, ascending, after the
      explicit orders (lexicographically when several).
    - An array-contains filter needs its field in the index (CONTAINS) as soon as anything else
      filters or orders the query.
    - One field in all (one order, one inequality, one array-contains) is a single-field index.
    """
    explicit = [(path, direction) for path, direction in sent.orders if path != NAME]
    name_order = next((direction for path, direction in sent.orders if path == NAME), None)
    ordered_paths = {path for path, _ in explicit}
    implicit = sorted({p for p, op in sent.filters if op in _INEQUALITY} - ordered_paths)
    suffix = [IndexField(p, d) for p, d in explicit] + [IndexField(p, ASCENDING) for p in implicit]
    ordered_paths |= set(implicit)
    unknown = {op for _, op in sent.filters} - _EQUALITY - _ARRAY - _INEQUALITY
    if unknown:
        raise ValueError(f"no indexing rule for operators {sorted(unknown)} in {sent}")
    prefix: dict[str, IndexField] = {}
    for path, op in sent.filters:
        if op in _ARRAY:
            prefix[path] = IndexField(path, CONTAINS)
        elif op in _EQUALITY and path not in ordered_paths:
            prefix.setdefault(path, IndexField(path, ASCENDING))
    if not suffix and all(f.mode != CONTAINS for f in prefix.values()):
        return None  # equality only (ordered by name at most): merged single-field indexes
    last = suffix[-1].mode if suffix else ASCENDING
    if name_order is not None and name_order != last:
        suffix.append(IndexField(NAME, name_order))
    if len(prefix) + len(suffix) < 2:
        return None
    return RequiredIndex(sent.collection, tuple(prefix.values()), tuple(suffix))


def serves(index: CompositeIndex, needed: RequiredIndex) -> bool:
    """Whether a declared index serves a needed one: the same fields, equality ones in any order
    and direction, ordered ones exactly."""
    fields = _without_implicit_name(index.fields)
    cut = len(needed.prefix)
    if (
        index.scope != "COLLECTION"
        or index.collection != needed.collection
        or len(fields) != cut + len(needed.suffix)
    ):
        return False
    head, tail = fields[:cut], fields[cut:]
    return {_kind(f) for f in head} == {_kind(f) for f in needed.prefix} and tail == needed.suffix


def _without_implicit_name(fields: tuple[IndexField, ...]) -> tuple[IndexField, ...]:
    """Drop a trailing `__name__` that runs in the direction Firestore gives it anyway."""
    if len(fields) >= 2 and fields[-1].path == NAME:
        before = fields[-2].mode if fields[-2].mode != CONTAINS else ASCENDING
        if fields[-1].mode == before:
            return fields[:-1]
    return fields


def missing(declared: Iterable[CompositeIndex], needed: Iterable[RequiredIndex]) -> list[RequiredIndex]:
    """The needed indexes no declared index serves."""
    present = list(declared)
    return [n for n in needed if not any(serves(index, n) for index in present)]


def unused(declared: Iterable[CompositeIndex], needed: Iterable[RequiredIndex]) -> list[CompositeIndex]:
    """The declared indexes that serve no needed index."""
    wanted = list(needed)
    return [index for index in declared if not any(serves(index, n) for n in wanted)]


# ---------------------------------------------------------------- firestore.indexes.json


# Fields no query reads that Firestore would otherwise index on every write: an asset's embedding
# (a 1 KB string; similarTo compares vectors in the studio, never in a query).
UNINDEXED_FIELDS: tuple[tuple[str, str], ...] = (("assets", "embedding"),)


def index_file(needed: Iterable[RequiredIndex]) -> dict[str, Any]:
    """The firestore.indexes.json document declaring the needed indexes, one per distinct need, and
    turning off single-field indexes on UNINDEXED_FIELDS."""
    distinct = {n.key: n.declared for n in needed}
    indexes = sorted(distinct.values(), key=lambda i: (i.collection, [(f.path, f.mode) for f in i.fields]))
    return {
        "indexes": [
            {
                "collectionGroup": index.collection,
                "queryScope": index.scope,
                "fields": [
                    {"fieldPath": f.path, "arrayConfig": CONTAINS}
                    if f.mode == CONTAINS
                    else {"fieldPath": f.path, "order": f.mode}
                    for f in index.fields
                ],
            }
            for index in indexes
        ],
        "fieldOverrides": [
            {"collectionGroup": collection, "fieldPath": field, "indexes": []}
            for collection, field in UNINDEXED_FIELDS
        ],
    }


def parse_index_file(document: Mapping[str, Any]) -> list[CompositeIndex]:
    """The composite indexes a firestore.indexes.json document declares; ValueError if malformed."""
    out: list[CompositeIndex] = []
    for n, entry in enumerate(document.get("indexes", [])):
        fields: list[IndexField] = []
        for spec in entry.get("fields", []):
            path, order, array = spec.get("fieldPath"), spec.get("order"), spec.get("arrayConfig")
            if not isinstance(path, str) or not path or (order is None) == (array is None):
                raise ValueError(
                    f"index {n}: each field needs a fieldPath and one of order/arrayConfig: {spec}"
                )
            if order not in (None, ASCENDING, DESCENDING) or array not in (None, CONTAINS):
                raise ValueError(f"index {n}: unknown order or arrayConfig in {spec}")
            fields.append(IndexField(path, array or order))
        collection = entry.get("collectionGroup")
        if not isinstance(collection, str) or not collection or len(fields) < 2:
            raise ValueError(f"index {n}: needs a collectionGroup and at least two fields")
        out.append(CompositeIndex(collection, tuple(fields), entry.get("queryScope", "COLLECTION")))
    return out
