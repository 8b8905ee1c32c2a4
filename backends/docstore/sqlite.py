"""The embedded DocStore: JSON documents in one SQLite file (WAL), shareable between processes.

Every write also appends to a `changes` log in the same SQLite transaction. Watchers in this
process are told right after commit; writes of other processes are read back from the log by one
polling follower per store, so every watcher sees every state exactly once, in commit order.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from backends.docstore._changes import track
from backends.docstore._sqlite_query import (
    BufferedTransaction,
    Key,
    Write,
    count_sql,
    dumps,
    loads,
    matches,
    select_sql,
    stage,
)
from domain.ports import Change, Document, Filter, Query, Transaction, TransactionConflict

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (collection, id));
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, id TEXT NOT NULL,
    data TEXT, version INTEGER NOT NULL);
"""
_GET = "SELECT data, version FROM documents WHERE collection = ? AND id = ?"
_GET_MANY = (
    "SELECT id, data, version FROM documents WHERE collection = ? AND id IN (SELECT value FROM json_each(?))"
)
_UPSERT = (
    "INSERT INTO documents (collection, id, data, version) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (collection, id) DO UPDATE SET data = excluded.data, version = excluded.version"
)
_LOG = "INSERT INTO changes (seq, collection, id, data, version) VALUES (?, ?, ?, ?, ?)"
_MAX_ATTEMPTS = 11  # the first try and ten retries
_LOG_RETENTION = 300.0  # seconds a change stays in the log for followers that lag behind
_PRUNE_EVERY = 60.0


class _Conflict(Exception):
    """A document read by a transaction changed before it could commit."""


def _max_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return int(row[0]) if row else 0


class _Event:
    """One committed write, as logged; the document is parsed once, on first use."""

    __slots__ = ("_doc", "_parsed", "collection", "doc_id", "seq", "text")

    def __init__(self, seq: int, collection: str, doc_id: str, text: str | None) -> None:
        self.seq, self.collection, self.doc_id, self.text = seq, collection, doc_id, text
        self._doc: Document | None = None
        self._parsed = False

    def document(self) -> Document | None:
        if not self._parsed:  # the version of a document is the log position of its last write
            self._doc = None if self.text is None else Document(self.doc_id, loads(self.text), str(self.seq))
            self._parsed = True
        return self._doc


class _Watch:
    """One open watch: the log events of its collection (and document) queued for its generator."""

    __slots__ = ("collection", "doc_id", "queue", "resync")

    def __init__(self, collection: str, doc_id: str | None, resync: bool) -> None:
        self.collection, self.doc_id, self.resync = collection, doc_id, resync
        self.queue: asyncio.Queue[list[_Event] | None] = asyncio.Queue()


class SqliteDocStore:
    """DocStore on a SQLite file; SQL runs on one thread of its own, off the event loop."""

    def __init__(self, path: Path | str, *, poll_interval: float = 0.05) -> None:
        self._path = str(path)
        self._poll_interval = poll_interval
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-docstore")
        self._closed = False
        # Used only on the executor thread: the connection, and how far the change log has been read.
        self._conn: sqlite3.Connection | None = None
        self._feed_seq = 0
        self._data_version: int | None = None
        self._prune_marks: deque[tuple[float, int]] = deque()
        self._last_mark = -_PRUNE_EVERY
        # Used only on the event loop (the executor thread merely reads the count).
        self._watches: dict[str, set[_Watch]] = {}
        self._watch_count = 0
        self._follower: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ plumbing

    def _run(self, fn: Callable[..., R], *args: Any) -> asyncio.Future[R]:
        if self._closed:
            raise RuntimeError("the document store is closed")
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, isolation_level=None, cached_statements=256)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            # With WAL this stays consistent; a power cut may only lose the latest commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            self._feed_seq = _max_seq(conn)
            self._conn = conn
        return self._conn

    def _read_log(self, conn: sqlite3.Connection, after: int, upto: int | None = None) -> list[_Event]:
        rows = conn.execute(
            "SELECT seq, collection, id, data FROM changes WHERE seq > ? AND seq <= ? ORDER BY seq",
            (after, upto if upto is not None else 2**63 - 1),
        )
        return [_Event(*row) for row in rows]

    def _emit(self, loop: asyncio.AbstractEventLoop, events: list[_Event]) -> None:
        # Scheduled from the one executor thread, so batches reach the loop in log order, and
        # before the writer's own await returns.
        if events:
            try:
                loop.call_soon_threadsafe(self._dispatch, events)
            except RuntimeError:  # that loop has been closed: nobody is left to watch
                pass

    # ------------------------------------------------------------ reads

    async def get(self, collection: str, doc_id: str) -> Document | None:
        """One document, or None."""
        return await self._run(self._get_sync, collection, doc_id)

    def _get_sync(self, collection: str, doc_id: str) -> Document | None:
        row = self._connection().execute(_GET, (collection, doc_id)).fetchone()
        return None if row is None else Document(doc_id, loads(row[0]), str(row[1]))

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> list[Document | None]:
        """Many documents in one statement, in the order asked (None where missing)."""
        return await self._run(self._get_many_sync, collection, list(doc_ids)) if doc_ids else []

    def _get_many_sync(self, collection: str, doc_ids: list[str]) -> list[Document | None]:
        rows = self._connection().execute(_GET_MANY, (collection, dumps(doc_ids))).fetchall()
        found = {row[0]: row for row in rows}
        return [Document(i, loads(r[1]), str(r[2])) if (r := found.get(i)) else None for i in doc_ids]

    async def query(self, query: Query) -> list[Document]:
        """Run an ordered, filtered, paged query."""
        return await self._run(self._query_sync, query)

    def _query_sync(self, query: Query) -> list[Document]:
        rows = self._connection().execute(*select_sql(query)).fetchall()
        return [Document(row[0], loads(row[1]), str(row[2])) for row in rows]

    async def count(self, collection: str, filters: Sequence[Filter] = ()) -> int:
        """How many documents match, without reading them."""
        return await self._run(self._count_sync, collection, tuple(filters))

    def _count_sync(self, collection: str, filters: Sequence[Filter]) -> int:
        return int(self._connection().execute(*count_sql(collection, filters)).fetchone()[0])

    async def ping(self) -> None:
        """Raise if the database file cannot be read."""
        await self._run(lambda: self._connection().execute("SELECT 1").fetchone())

    # ------------------------------------------------------------ writes

    async def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> Document:
        """Create a new document; PreconditionFailed if it exists."""
        return await self._write(("create", collection, doc_id, dumps(dict(data)), None))

    async def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> Document:
        """Create or replace a document."""
        return await self._write(("set", collection, doc_id, dumps(dict(data)), None))

    async def update(
        self, collection: str, doc_id: str, changes: Mapping[str, Any], *, if_version: str | None = None
    ) -> Document:
        """Change fields; PreconditionFailed if missing or, with `if_version`, changed since."""
        return await self._write(("update", collection, doc_id, dict(changes), if_version))

    async def delete(self, collection: str, doc_id: str, *, if_version: str | None = None) -> None:
        """Remove a document (missing is fine unless `if_version` is given)."""
        await self._commit({}, [("delete", collection, doc_id, None, if_version)])

    async def _write(self, write: Write) -> Document:
        text, version = (await self._commit({}, [write]))[(write[1], write[2])]
        assert text is not None
        return Document(write[2], loads(text), str(version))

    def _commit(
        self, reads: Mapping[Key, str | None], writes: Sequence[Write]
    ) -> asyncio.Future[dict[Key, tuple[str | None, int]]]:
        return self._run(self._commit_sync, asyncio.get_running_loop(), reads, writes)

    async def run_transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run `fn` and commit its writes atomically, retrying it while documents it read change."""
        for attempt in range(_MAX_ATTEMPTS):
            tx = BufferedTransaction(self.get)
            result = await fn(tx)
            if not tx.reads and not tx.writes:
                return result
            try:
                await self._commit(tx.reads, tx.writes)
                return result
            except _Conflict:
                pass
            except sqlite3.OperationalError as exc:  # still locked after busy_timeout: retry too
                if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
            # Jittered exponential backoff spreads competing retries apart.
            await asyncio.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))
        raise TransactionConflict(f"transaction did not commit after {_MAX_ATTEMPTS} attempts")

    def _commit_sync(
        self, loop: asyncio.AbstractEventLoop, reads: Mapping[Key, str | None], writes: Sequence[Write]
    ) -> dict[Key, tuple[str | None, int]]:
        """Check the reads and apply the writes in one IMMEDIATE transaction; what was written."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for (collection, doc_id), version in reads.items():
                row = conn.execute(
                    "SELECT version FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
                ).fetchone()
                if (None if row is None else str(row[0])) != version:
                    raise _Conflict()
            staged = stage(
                writes, lambda collection, doc_id: conn.execute(_GET, (collection, doc_id)).fetchone()
            )
            base = seq = _max_seq(conn)
            # Log rows of other processes not yet seen go out first, so watchers get them in order.
            events = (
                self._read_log(conn, self._feed_seq, base)
                if self._watch_count and base > self._feed_seq
                else []
            )
            written: dict[Key, tuple[str | None, int]] = {}
            for (collection, doc_id), st in staged.items():
                if not st.dirty or (st.text is None and not st.existed):
                    continue
                seq += 1
                if st.text is None:
                    conn.execute(
                        "DELETE FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
                    )
                else:
                    conn.execute(_UPSERT, (collection, doc_id, st.text, seq))
                conn.execute(_LOG, (seq, collection, doc_id, st.text, seq))
                events.append(_Event(seq, collection, doc_id, st.text))
                written[(collection, doc_id)] = (st.text, seq)
            self._prune(conn, base)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._feed_seq = max(self._feed_seq, seq)
        if self._watch_count:
            self._emit(loop, events)
        return written

    def _prune(self, conn: sqlite3.Connection, seq: int) -> None:
        """Drop log rows older than the retention, using (time, seq) marks taken as we go."""
        now = time.monotonic()
        if now - self._last_mark < _PRUNE_EVERY:
            return
        self._last_mark = now
        self._prune_marks.append((now, seq))
        cutoff = None
        while self._prune_marks and now - self._prune_marks[0][0] >= _LOG_RETENTION:
            cutoff = self._prune_marks.popleft()[1]
        if cutoff:
            conn.execute("DELETE FROM changes WHERE seq <= ?", (cutoff,))

    # ------------------------------------------------------------ watches

    async def watch_document(self, collection: str, doc_id: str) -> AsyncIterator[Document | None]:
        """The current state (None if missing), then every later state in commit order."""
        watch = self._subscribe(collection, doc_id)
        try:
            docs, after = await self._run(self._snapshot_sync, watch, ())
            yield docs[0] if docs else None
            while (batch := await watch.queue.get()) is not None:
                for event in batch:
                    if event.seq > after:
                        yield event.document()
        finally:
            self._unsubscribe(watch)

    async def watch_query(
        self, collection: str, filters: Sequence[Filter] = ()
    ) -> AsyncIterator[list[Change]]:
        """The matches as `added`, then each commit's changes; `removed` carries the last matching state."""
        filters = tuple(filters)
        watch = self._subscribe(collection, None)
        try:
            docs, after = await self._run(self._snapshot_sync, watch, filters)
            current = {doc.id: doc for doc in docs}
            yield [Change("added", doc) for doc in docs]
            while (batch := await watch.queue.get()) is not None:
                events = (e for e in batch if e.seq > after)
                if changes := [
                    c
                    for e in events
                    if (c := track(current, e.doc_id, e.document(), partial(matches, filters=filters)))
                ]:
                    yield changes
        finally:
            self._unsubscribe(watch)

    @property
    def watch_count(self) -> int:
        """How many watches are open (for tests and metrics)."""
        return self._watch_count

    def _subscribe(self, collection: str, doc_id: str | None) -> _Watch:
        if self._closed:
            raise RuntimeError("the document store is closed")
        # The first watch may skip log rows nobody was waiting for (see `_snapshot_sync`).
        watch = _Watch(collection, doc_id, resync=self._watch_count == 0)
        self._watches.setdefault(collection, set()).add(watch)
        self._watch_count += 1
        loop = asyncio.get_running_loop()
        # A follower left on an event loop that has since finished (tests run a loop each) is replaced.
        if self._follower is None or self._follower.done() or self._follower.get_loop() is not loop:
            self._follower = loop.create_task(self._follow())
        return watch

    def _unsubscribe(self, watch: _Watch) -> None:
        watches = self._watches.get(watch.collection)
        if watches is None or watch not in watches:
            return
        watches.discard(watch)
        if not watches:
            del self._watches[watch.collection]
        self._watch_count -= 1
        if not self._watch_count and self._follower is not None:
            self._follower.cancel()
            self._follower = None

    def _snapshot_sync(self, watch: _Watch, filters: Sequence[Filter]) -> tuple[list[Document], int]:
        """The watch's initial documents and the log position they reflect, read in one snapshot."""
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            if watch.doc_id is not None:
                doc = self._get_sync(watch.collection, watch.doc_id)
                docs = [] if doc is None else [doc]
            else:
                docs = self._query_sync(Query(watch.collection, filters))
            seq = _max_seq(conn)
        finally:
            conn.execute("COMMIT")
        if watch.resync:
            # No other watch was open: whatever the follower has not read is older than this snapshot.
            self._feed_seq = max(self._feed_seq, seq)
        return docs, seq

    def _dispatch(self, events: list[_Event]) -> None:
        batches: dict[_Watch, list[_Event]] = {}
        for event in events:
            for watch in self._watches.get(event.collection, ()):
                if watch.doc_id is None or watch.doc_id == event.doc_id:
                    batches.setdefault(watch, []).append(event)
        for watch, batch in batches.items():
            watch.queue.put_nowait(batch)

    async def _follow(self) -> None:
        """Poll the log for other processes' writes while any watch is open."""
        loop = asyncio.get_running_loop()
        while self._watch_count and not self._closed:
            await asyncio.sleep(self._poll_interval)
            try:
                await self._run(self._poll_sync, loop)
            except Exception:
                if self._closed:
                    return
                _log.warning("reading the document change log failed", exc_info=True)

    def _poll_sync(self, loop: asyncio.AbstractEventLoop) -> None:
        conn = self._connection()
        # data_version moves only when another connection commits: the common idle poll stops here.
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        self._data_version = version
        events = self._read_log(conn, self._feed_seq)
        if events:
            self._feed_seq = events[-1].seq
            self._emit(loop, events)

    # ------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """End open watches, stop the follower and close the connection."""
        if self._closed:
            return
        self._closed = True
        if self._follower is not None:
            self._follower.cancel()
            self._follower = None
        for watches in self._watches.values():
            for watch in watches:
                watch.queue.put_nowait(None)
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_sync)
        self._executor.shutdown(wait=False)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
