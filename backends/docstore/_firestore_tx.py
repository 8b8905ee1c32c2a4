"""Firestore transactions as the store runs them: per-document locks inside this process, and one
attempt of `run_transaction` (reads in a Firestore transaction, writes buffered until the commit)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.docstore._firestore_sdk import Key, load_sdk
from backends.docstore._firestore_values import encode, quoted_path
from domain.ports import Delete, Document, Increment

if TYPE_CHECKING:
    from backends.docstore.firestore import FirestoreDocStore

_log = logging.getLogger("backends.docstore.firestore")


# ---------------------------------------------------------------- local document locks


class LockTimeout(Exception):
    """A transaction of this process held a wanted document without progress for too long."""


class Owner:
    """What a document lock is held by: one transaction attempt. `stalled_since` is None while it
    waits on Firestore (the server bounds that itself), else when it last made progress."""

    __slots__ = ("stalled_since",)

    def __init__(self) -> None:
        self.stalled_since: float | None = time.monotonic()


class Slot:
    __slots__ = ("holder", "since", "waiters")

    def __init__(self, holder: Owner) -> None:
        self.holder = holder
        self.since = time.monotonic()
        self.waiters: deque[tuple[Owner, asyncio.Future[None]]] = deque()


class KeyLocks:
    """First-come first-served locks on documents, for the transactions of one store.

    A waiter gives up (and its transaction retries) when the holder has been stalled outside
    Firestore calls for `timeout` seconds: a deadlock between two transactions of this process, or
    one that holds a document while it waits for something else.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._slots: dict[Key, Slot] = {}

    async def acquire(self, key: Key, owner: Owner) -> None:
        slot = self._slots.get(key)
        if slot is None:
            self._slots[key] = Slot(owner)
            return
        if slot.holder is owner:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        slot.waiters.append((owner, future))
        step = max(0.005, min(0.05, self.timeout / 4))
        try:
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(future), step)
                    return
                except TimeoutError:
                    if future.done():
                        return
                holder = slot.holder
                stalled = holder.stalled_since
                since = max(slot.since, stalled) if stalled is not None else None
                if since is not None and time.monotonic() - since >= self.timeout:
                    raise LockTimeout(f"{key[0]}/{key[1]} is held by a stalled transaction")
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(key, owner)  # granted as we gave up: pass it on
            else:
                future.cancel()
                try:
                    slot.waiters.remove((owner, future))
                except ValueError:
                    pass
            raise

    def release(self, key: Key, owner: Owner) -> None:
        slot = self._slots.get(key)
        if slot is None or slot.holder is not owner:
            return
        while slot.waiters:
            waiter, future = slot.waiters.popleft()
            if not future.done():
                slot.holder, slot.since = waiter, time.monotonic()
                future.set_result(None)
                return
        del self._slots[key]


# ---------------------------------------------------------------- transactions


class Attempt:
    """One attempt of `run_transaction`: reads go to Firestore inside a transaction (begun on the
    first read), writes are buffered and sent with the commit."""

    def __init__(self, store: FirestoreDocStore, retry_id: bytes | None) -> None:
        self._store = store
        self._retry_id = retry_id
        self._docs: dict[Key, Document | None] = {}
        self._writes: list[tuple[str, Key, Any]] = []
        self._held: list[Key] = []
        self._read_lock = asyncio.Lock()
        self.owner = Owner()
        self.tx: Any = None  # the SDK AsyncTransaction, once begun
        self.doomed: BaseException | None = None  # set when this attempt cannot commit
        self.committed = False
        self.id: bytes | None = None  # Firestore's id of the transaction, once begun

    async def get(self, collection: str, doc_id: str) -> Document | None:
        """Read a document; reading it again returns the first read (one consistent snapshot)."""
        if self._writes:
            raise RuntimeError("a transaction must do all its reads before its writes")
        key = (collection, doc_id)
        async with self._read_lock:
            if key in self._docs:
                return self._docs[key]
            store = self._store
            sdk = load_sdk()
            try:
                self.owner.stalled_since = time.monotonic()
                await store._locks.acquire(key, self.owner)
                self._held.append(key)
                self.owner.stalled_since = None
                if self.tx is None:
                    self.tx = store._client().transaction()
                    await self.tx._begin(retry_id=self._retry_id)
                    self.id = self.tx._id
                snap = None
                async for found in store._client().get_all([store._ref(key)], transaction=self.tx):
                    snap = found
            except (LockTimeout, sdk.exceptions.Aborted) as exc:
                self.doomed = exc
                raise
            finally:
                self.owner.stalled_since = time.monotonic()
            doc = store._document(snap)
            self._docs[key] = doc
            return doc

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Create; the commit fails with PreconditionFailed if the document exists."""
        self._writes.append(("create", (collection, doc_id), encode(dict(data))))

    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Create or replace the whole document."""
        self._writes.append(("set", (collection, doc_id), encode(dict(data))))

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        """Change fields; the commit fails with PreconditionFailed if the document is missing."""
        self._writes.append(("update", (collection, doc_id), field_changes(changes)))

    def delete(self, collection: str, doc_id: str) -> None:
        """Remove the document if present."""
        self._writes.append(("delete", (collection, doc_id), None))

    async def commit(self) -> None:
        """Send the buffered writes: in the transaction if one was begun, else as one atomic batch."""
        if not self._writes:
            return
        store = self._store
        target = self.tx if self.tx is not None else store._client().batch()
        for op, key, payload in self._writes:
            ref = store._ref(key)
            if op == "create":
                target.create(ref, payload)
            elif op == "set":
                target.set(ref, payload)
            elif op == "update":
                store._add_update(target, ref, payload, None)
            else:
                target.delete(ref)
        self.owner.stalled_since = None
        if self.tx is not None:
            await self.tx._commit()
        else:
            await target.commit()
        self.committed = True

    async def finish(self) -> None:
        """Release the local locks, and Firestore's (rollback) unless committed or aborted there."""
        for key in reversed(self._held):
            self._store._locks.release(key, self.owner)
        self._held.clear()
        tx, self.tx = self.tx, None
        if tx is None or self.committed or not tx.in_progress:
            return
        if isinstance(self.doomed, load_sdk().exceptions.Aborted):
            tx._clean_up()  # Firestore has ended it already
            return
        try:
            await tx._rollback()
        except Exception:  # best effort: the transaction expires on its own
            _log.debug("transaction rollback failed", exc_info=True)


def field_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """`update` changes as SDK field updates: quoted paths; Increment and Delete as sentinels."""
    sdk = load_sdk()
    out: dict[str, Any] = {}
    for field, change in changes.items():
        path = quoted_path(field)
        if isinstance(change, Delete):
            out[path] = sdk.firestore.DELETE_FIELD
        elif isinstance(change, Increment):
            out[path] = sdk.firestore.Increment(change.amount)
        else:
            out[path] = encode(change)
    return out
