"""The Google Cloud DocStore: Firestore through google-cloud-firestore.

Requests use the SDK's AsyncClient; watches use `on_snapshot` listeners of a sync Client (the
async client has none), whose callbacks arrive on SDK threads and are handed to the event loop
with `call_soon_threadsafe`. The SDK is imported on first use, so building the store costs nothing
at start-up.

A document's version is its Firestore update time (RFC 3339, nanoseconds); `if_version` becomes
an update-time precondition. Transactions are Firestore's own (pessimistic: what a transaction
reads is locked until it ends); transactions of this process that read the same document also
queue for it here first, so they wait their turn instead of deadlocking on the server, which
resolves that only by a lock timeout (2 s on the emulator). Aborted attempts are retried with
jittered backoff, keeping their place in line (`retry_transaction`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from backends.docstore._changes import track
from backends.docstore._firestore_listen import Listen, unsubscribe
from backends.docstore._firestore_query import (
    Plan,
    build,
    cursor_values,
    keep,
    needed_fields,
    ordered,
    plan,
)
from backends.docstore._firestore_sdk import Key, backoff, load_sdk, reason
from backends.docstore._firestore_tx import Attempt, KeyLocks, field_changes
from backends.docstore._firestore_values import (
    decode,
    encode,
    parse_version,
    quoted_path,
    sort_key,
    version_of,
)
from domain.ports import (
    Change,
    Document,
    Filter,
    PreconditionFailed,
    Query,
    Transaction,
    TransactionConflict,
)

T = TypeVar("T")

_log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 11  # the first try and ten retries, as the SQLite store
_PAGE = 100  # rows fetched per round when some filters are checked here
_MAX_PAGE = 1000
_PING_TIMEOUT = 5.0

# ---------------------------------------------------------------- the store


class FirestoreDocStore:
    """DocStore on Firestore (or its emulator, through FIRESTORE_EMULATOR_HOST)."""

    def __init__(
        self,
        project: str,
        *,
        database: str = "(default)",
        client: Any = None,
        max_attempts: int = _MAX_ATTEMPTS,
        lock_timeout: float = 2.0,
    ) -> None:
        self._project = project
        self._database = database
        self._async: Any = client
        self._sync: Any = None
        self._sync_lock = threading.Lock()
        self._max_attempts = max_attempts
        self._locks = KeyLocks(lock_timeout)
        self._listens: set[Listen] = set()
        self._closed = False

    # ------------------------------------------------------------ plumbing

    def _client(self) -> Any:
        if self._closed:
            raise RuntimeError("the document store is closed")
        if self._async is None:
            self._async = load_sdk().firestore.AsyncClient(project=self._project, database=self._database)
        return self._async

    def _sync_client(self) -> Any:
        """The sync client, for listeners only; made on first watch (on an executor thread)."""
        with self._sync_lock:
            if self._sync is None:
                firestore = load_sdk().firestore
                credentials = getattr(self._async, "_credentials", None) if self._async is not None else None
                self._sync = firestore.Client(
                    project=self._project, database=self._database, credentials=credentials
                )
            return self._sync

    def _ref(self, key: Key) -> Any:
        return self._client().collection(key[0]).document(key[1])

    @staticmethod
    def _document(snap: Any) -> Document | None:
        if snap is None or not snap.exists:
            return None
        return Document(snap.id, decode(snap.to_dict() or {}), version_of(snap.update_time))

    def _precondition(self, where: Key, if_version: str) -> Any:
        parsed = parse_version(if_version)
        if parsed is None:  # not a version this store hands out: cannot be the current one
            raise PreconditionFailed(f"{where[0]}/{where[1]} is not at version {if_version}")
        seconds, nanos = parsed
        return self._client().write_option(
            last_update_time=load_sdk().Timestamp(seconds=seconds, nanos=nanos)
        )

    def _add_update(self, target: Any, ref: Any, fields: dict[str, Any], option: Any) -> None:
        """Add an update to a batch or transaction; an empty one still checks and touches the document."""
        if fields:
            target.update(ref, fields, option=option)
            return
        types = load_sdk().types
        precondition = types.Precondition(exists=True)
        if option is not None:
            precondition = types.Precondition(update_time=option._last_update_time)
        target._add_write_pbs(
            [
                types.Write(
                    update=types.Document(name=ref._document_path),
                    update_mask=types.DocumentMask(field_paths=[]),
                    current_document=precondition,
                )
            ]
        )

    async def _write(self, where: Key, send: Callable[[], Awaitable[T]]) -> T:
        """One non-transactional write: retried while Firestore aborts it (lock contention) or
        cancels it on its side. A retried write that had in fact landed is harmless: the studio's
        plain writes set values, and a create or a versioned update then fails its precondition."""
        sdk = load_sdk()
        for attempt in range(self._max_attempts):
            try:
                return await send()
            except sdk.exceptions.Aborted:
                await backoff(attempt)
            except sdk.exceptions.Cancelled:  # seen from the emulator as a listener closes
                _log.warning("a write to %s/%s was cancelled by Firestore; retrying", *where)
                await backoff(attempt)
            except sdk.precondition_errors as exc:
                raise PreconditionFailed(f"{where[0]}/{where[1]}: {reason(exc)}") from exc
        raise TransactionConflict(
            f"write to {where[0]}/{where[1]} did not commit after {self._max_attempts} attempts"
        )

    async def _read_at(self, key: Key, update_time: Any) -> Document:
        """The document exactly as a write left it: read at that write's time."""
        snap = await self._ref(key).get(read_time=update_time)
        doc = self._document(snap)
        assert doc is not None, f"{key[0]}/{key[1]} missing right after it was written"
        return doc

    # ------------------------------------------------------------ reads

    async def get(self, collection: str, doc_id: str) -> Document | None:
        """One document, or None."""
        return self._document(await self._ref((collection, doc_id)).get())

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> list[Document | None]:
        """Many documents in one round trip (`get_all`), in the order asked (None where missing)."""
        if not doc_ids:
            return []
        refs = [self._ref((collection, doc_id)) for doc_id in dict.fromkeys(doc_ids)]
        found: dict[str, Document | None] = {}
        async for snap in self._client().get_all(refs):
            found[snap.id] = self._document(snap)
        return [found.get(doc_id) for doc_id in doc_ids]

    async def query(self, query: Query) -> list[Document]:
        """Run an ordered, filtered, paged query."""
        limit = query.limit
        if limit is not None and limit < 0:  # as SQLite: a negative limit is no limit
            limit = None
        cursor = cursor_values(query)
        p = plan(
            query.filters, [o.field for o in query.order_by], paged=limit is not None or cursor is not None
        )
        if p.empty or limit == 0:
            return []
        base = build(self._client().collection(query.collection), p.native, load_sdk().FieldFilter)
        if p.sort_here:  # complete and unpaged: Firestore's order, then the contract's
            docs = await self._stream(ordered(base, query, with_name=False), p)
            last_desc = bool(query.order_by) and query.order_by[-1].descending
            docs.sort(key=sort_key([(o.field, o.descending) for o in query.order_by], last_desc))
            return docs
        q = ordered(base, query, with_name=True)
        if not p.memory:
            if cursor is not None:
                q = q.start_after(cursor)
            if limit is not None:
                q = q.limit(limit)
            return await self._stream(q, p)
        return await self._filtered_pages(q, query, p, cursor, limit)

    async def _stream(self, q: Any, p: Plan) -> list[Document]:
        docs: list[Document] = []
        async for snap in q.stream():
            doc = self._document(snap)
            if doc is not None and keep(doc.data, p.memory):
                docs.append(doc)
        return docs

    async def _filtered_pages(
        self, q: Any, query: Query, p: Plan, cursor: list[Any] | None, limit: int | None
    ) -> list[Document]:
        """Read pages in the query's order, keeping the rows the memory filters accept, until enough."""
        paths = [quoted_path(o.field) for o in query.order_by]
        out: list[Document] = []
        size = _PAGE if limit is None else min(_MAX_PAGE, max(_PAGE, 2 * limit))
        while True:
            page = q.start_after(cursor) if cursor is not None else q
            snaps = [snap async for snap in page.limit(size).stream()]
            for snap in snaps:
                doc = self._document(snap)
                if doc is not None and keep(doc.data, p.memory):
                    out.append(doc)
                    if limit is not None and len(out) >= limit:
                        return out
            if len(snaps) < size:
                return out
            last = snaps[-1]
            cursor = [last.get(path) for path in paths] + [last.id]
            size = min(_MAX_PAGE, size * 2)

    async def count(self, collection: str, filters: Sequence[Filter] = ()) -> int:
        """How many documents match: an aggregation query, or (when some filters run here) a stream
        of just the fields those filters read."""
        p = plan(filters)
        if p.empty:
            return 0
        q = build(self._client().collection(collection), p.native, load_sdk().FieldFilter)
        if not p.memory:
            result = await q.count(alias="n").get()
            return int(result[0][0].value)
        n = 0
        async for snap in q.select(needed_fields(p.memory)).stream():
            if keep(decode(snap.to_dict() or {}), p.memory):
                n += 1
        return n

    async def ping(self) -> None:
        """Raise if Firestore cannot be reached (one read, no retries)."""
        ref = self._client().collection("_genmedia").document("ping")
        await ref.get(retry=None, timeout=_PING_TIMEOUT)

    # ------------------------------------------------------------ writes

    async def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> Document:
        """Create a new document; PreconditionFailed if it exists."""
        key, payload = (collection, doc_id), encode(dict(data))
        result = await self._write(key, lambda: self._ref(key).create(payload))
        return Document(doc_id, decode(payload), version_of(result.update_time))

    async def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> Document:
        """Create or replace a document."""
        key, payload = (collection, doc_id), encode(dict(data))
        result = await self._write(key, lambda: self._ref(key).set(payload))
        return Document(doc_id, decode(payload), version_of(result.update_time))

    async def update(
        self, collection: str, doc_id: str, changes: Mapping[str, Any], *, if_version: str | None = None
    ) -> Document:
        """Change fields; PreconditionFailed if missing or, with `if_version`, changed since.

        The result is read back at the write's own update time, so it is exactly what this write
        produced (Increment included), whatever was written after it.
        """
        key, fields = (collection, doc_id), field_changes(changes)
        option = self._precondition(key, if_version) if if_version is not None else None

        async def send() -> Any:
            batch = self._client().batch()
            self._add_update(batch, self._ref(key), fields, option)
            return (await batch.commit())[0]

        result = await self._write(key, send)
        return await self._read_at(key, result.update_time)

    async def delete(self, collection: str, doc_id: str, *, if_version: str | None = None) -> None:
        """Remove a document (missing is fine unless `if_version` is given)."""
        key = (collection, doc_id)
        option = self._precondition(key, if_version) if if_version is not None else None
        await self._write(key, lambda: self._ref(key).delete(option=option))

    async def run_transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run `fn` in a Firestore transaction, retrying it while Firestore aborts it."""
        sdk = load_sdk()
        retry_id: bytes | None = None
        for attempt in range(self._max_attempts):
            tx = Attempt(self, retry_id)
            try:
                try:
                    result = await fn(tx)
                except Exception:
                    if tx.doomed is None:
                        raise
                else:
                    if tx.doomed is None:
                        try:
                            await tx.commit()
                            return result
                        except sdk.exceptions.Aborted as exc:
                            tx.doomed = exc
                        except sdk.precondition_errors as exc:
                            raise PreconditionFailed(reason(exc)) from exc
            finally:
                await tx.finish()
            retry_id = retry_id or tx.id
            await backoff(attempt)
        raise TransactionConflict(f"transaction did not commit after {self._max_attempts} attempts")

    # ------------------------------------------------------------ watches

    @property
    def watch_count(self) -> int:
        """How many watches are open (for tests and metrics)."""
        return len(self._listens)

    async def _open(self, subscribe: Callable[[Callable[..., None]], Any] | None) -> Listen:
        if self._closed:
            raise RuntimeError("the document store is closed")
        listen = Listen(subscribe)
        self._listens.add(listen)
        try:
            await listen.start()
        except BaseException:
            self._close_listen(listen)
            raise
        return listen

    def _close_listen(self, listen: Listen) -> None:
        listen.closed = True
        listen.stop()
        self._listens.discard(listen)

    async def watch_document(self, collection: str, doc_id: str) -> AsyncIterator[Document | None]:
        """The current state (None if missing), then later states in order; states written in
        quick succession may arrive as their latest one only."""

        def subscribe(callback: Callable[..., None]) -> Any:
            return self._sync_client().collection(collection).document(doc_id).on_snapshot(callback)

        listen = await self._open(subscribe)
        try:
            last: str | None = None
            started = False
            while (item := await listen.next()) is not None:
                _, docs, _ = item
                doc = self._document(docs[0]) if docs else None
                version = None if doc is None else doc.version
                if started and version == last:
                    continue  # a re-opened stream repeats the state already seen
                started, last = True, version
                yield doc
        finally:
            self._close_listen(listen)

    async def watch_query(
        self, collection: str, filters: Sequence[Filter] = ()
    ) -> AsyncIterator[list[Change]]:
        """The matches as `added`, then batches of changes; `removed` carries the last matching state."""
        p = plan(filters)

        def subscribe(callback: Callable[..., None]) -> Any:
            q = build(self._sync_client().collection(collection), p.native, load_sdk().FieldFilter)
            return q.on_snapshot(callback)

        listen = await self._open(None if p.empty else subscribe)
        try:
            current: dict[str, Document] = {}
            if p.empty:
                yield []
            started = False
            while (item := await listen.next()) is not None:
                first, docs, changes = item
                out: list[Change] = []
                if first:  # a whole result set: compare it with what was reported
                    seen = {d.id: d for d in map(self._document, docs) if d is not None}
                    for doc_id in [i for i in current if i not in seen]:
                        if change := track(current, doc_id, None, partial(keep, memory=p.memory)):
                            out.append(change)
                    for doc_id in sorted(seen):
                        if change := track(current, doc_id, seen[doc_id], partial(keep, memory=p.memory)):
                            out.append(change)
                else:
                    for change in changes:
                        snap = change.document
                        doc = None if change.type.name == "REMOVED" else self._document(snap)
                        if tracked := track(current, snap.id, doc, partial(keep, memory=p.memory)):
                            out.append(tracked)
                if out or not started:
                    started = True
                    yield out
        finally:
            self._close_listen(listen)

    # ------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """End open watches and close the clients' channels."""
        if self._closed:
            return
        self._closed = True
        listens = list(self._listens)
        handles = [listen.handle for listen in listens if listen.handle is not None]
        for listen in listens:
            listen.closed = True
            listen.handle = None
            listen.queue.put_nowait(None)
        self._listens.clear()
        loop = asyncio.get_running_loop()
        if handles:
            await asyncio.gather(*(loop.run_in_executor(None, unsubscribe, h) for h in handles))
        if self._async is not None and getattr(self._async, "_transport", None) is not None:
            try:
                closing = self._async._transport.close()
                if asyncio.iscoroutine(closing):
                    await closing
            except Exception:
                _log.debug("closing the Firestore channel failed", exc_info=True)
        if self._sync is not None and getattr(self._sync, "_transport", None) is not None:
            await loop.run_in_executor(None, self._sync._transport.close)
