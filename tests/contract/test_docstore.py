"""The DocStore contract: every adapter in DOC_BACKENDS must pass this same suite.

To add an adapter, add a DocBackend to DOC_BACKENDS: how to name a fresh, empty database and how
to connect to it. The cross-process tests connect the same way from child processes, which run
this module's `child_main`.

What every adapter guarantees, and so what this suite checks:
- Transactions never commit over a change to a document they read. Stores that check at commit
  (SQLite) retry the transaction; stores that lock what a transaction reads (Firestore) make the
  other write wait until the transaction ends. Either way no update is lost.
- Watches yield the current state first, then later states in commit order, never one twice, and
  always the latest. Every state is reported by the SQLite store; Firestore may coalesce states
  written in quick succession into the latest of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from backends.docstore.firestore import FirestoreDocStore
from backends.docstore.sqlite import SqliteDocStore
from domain.ports import (
    Change,
    Delete,
    DocStore,
    Document,
    Filter,
    Increment,
    Order,
    PreconditionFailed,
    Query,
    Transaction,
    TransactionConflict,
)

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0


@dataclass(frozen=True)
class DocBackend:
    """How the suite reaches one DocStore implementation."""

    new_database: Callable[[Path], str]  # a fresh, empty database, named by a string
    connect: Callable[[str], DocStore]  # a new client of that database (also used in child processes)
    fixtures: tuple[str, ...] = ()  # session fixtures the backend needs (e.g. an emulator)
    drop_database: Callable[[str], None] | None = None  # cleanup after each test
    # Scales the cross-process contention tests: Google's emulator settles each lock conflict
    # between processes only by a 2 s lock timeout.
    contention: float = 1.0


def _drop_firestore(project: str) -> None:
    from tests.support.firestore_emulator import reset_documents

    reset_documents(project)


DOC_BACKENDS: dict[str, DocBackend] = {
    "sqlite": DocBackend(
        new_database=lambda tmp: str(tmp / "docs.sqlite3"),
        connect=lambda database: SqliteDocStore(database, poll_interval=0.02),
    ),
    "firestore": DocBackend(
        new_database=lambda tmp: f"contract-{uuid.uuid4().hex[:16]}",  # a project of its own
        # A short stall limit: the test of giving up holds a document in a transaction.
        connect=lambda database: FirestoreDocStore(database, lock_timeout=0.1),
        fixtures=("firestore_emulator",),
        drop_database=_drop_firestore,
        contention=0.05,
    ),
}


def scaled(backend: DocBackend, n: int) -> int:
    """A test size for the backend's contention scale (at least 1)."""
    return max(1, round(n * backend.contention))


@dataclass(frozen=True)
class _Current:
    backend: str
    database: str


_CURRENT = pytest.StashKey[_Current]()


@pytest.fixture(params=sorted(DOC_BACKENDS))
async def docstore(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocStore]:
    """Each registered DocStore adapter in turn, on an empty database."""
    backend = DOC_BACKENDS[request.param]
    for name in backend.fixtures:
        request.getfixturevalue(name)
    database = backend.new_database(tmp_path)
    request.node.stash[_CURRENT] = _Current(request.param, database)
    store = backend.connect(database)
    try:
        yield store
    finally:
        await store.close()
        if backend.drop_database is not None:
            backend.drop_database(database)


@pytest.fixture
def backend(docstore: DocStore, request: pytest.FixtureRequest) -> DocBackend:
    """The DocBackend of the current `docstore`."""
    return DOC_BACKENDS[request.node.stash[_CURRENT].backend]


OtherProcess = Callable[..., Awaitable[None]]


@pytest.fixture
def other_process(docstore: DocStore, request: pytest.FixtureRequest) -> OtherProcess:
    """Runs one of CHILD_PROGRAMS in a new process, connected to the same database."""
    current = request.node.stash[_CURRENT]

    async def run(program: str, *args: Any) -> None:
        code = (
            "import asyncio, importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('docstore_contract', sys.argv[1])\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules['docstore_contract'] = module\n"
            "spec.loader.exec_module(module)\n"
            "asyncio.run(module.child_main(*sys.argv[2:]))\n"
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        argv = [__file__, current.backend, current.database, program, json.dumps(args)]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, *argv, cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, stderr.decode()

    return run


# ---------------------------------------------------------------- helpers


async def increment(store: DocStore, collection: str, doc_id: str) -> None:
    """Add one to `n` of a document in a transaction (the document must exist)."""

    async def add_one(tx: Transaction) -> None:
        doc = await tx.get(collection, doc_id)
        assert doc is not None
        tx.update(collection, doc_id, {"n": doc.data["n"] + 1})

    await store.run_transaction(add_one)


async def increment_many(store: DocStore, collection: str, doc_id: str, times: int, concurrency: int) -> None:
    """`times` increments spread over `concurrency` concurrent tasks."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await increment(store, collection, doc_id)

    concurrency = max(1, min(concurrency, times))
    share = [times // concurrency + (i < times % concurrency) for i in range(concurrency)]
    await asyncio.gather(*(worker(count) for count in share))


async def apply_writes(store: DocStore, collection: str, writes: Sequence[Sequence[Any]]) -> None:
    """Apply `["set", id, data]`, `["update", id, changes]` and `["delete", id]` in order."""
    for op, doc_id, *rest in writes:
        if op == "set":
            await store.set(collection, doc_id, rest[0])
        elif op == "update":
            await store.update(collection, doc_id, rest[0])
        else:
            await store.delete(collection, doc_id)


CHILD_PROGRAMS: dict[str, Callable[..., Awaitable[None]]] = {
    "increment_many": increment_many,
    "apply_writes": apply_writes,
}


async def child_main(backend: str, database: str, program: str, args: str) -> None:
    """Entry point of the child processes started by `other_process`."""
    store = DOC_BACKENDS[backend].connect(database)
    try:
        await CHILD_PROGRAMS[program](store, *json.loads(args))
    finally:
        await store.close()


async def next_of(watch: AsyncIterator[Any]) -> Any:
    return await asyncio.wait_for(anext(watch), TIMEOUT)


async def next_changes(watch: AsyncIterator[list[Change]], count: int) -> list[tuple[str, str]]:
    """The next `count` changes of a query watch, however they are batched, as (kind, id)."""
    changes: list[tuple[str, str]] = []
    while len(changes) < count:
        changes += [(c.kind, c.document.id) for c in await next_of(watch)]
    return changes


async def states_until(watch: AsyncIterator[Any], last: Any) -> list[Any]:
    """States of a document watch up to and including `last`."""
    seen: list[Any] = []
    while not seen or seen[-1] != last:
        seen.append(await next_of(watch))
    return seen


def in_order(seen: Sequence[Any], written: Sequence[Any]) -> bool:
    """Whether `seen` is `written` with some states left out (none repeated, none reordered)."""
    rest = iter(written)
    return all(any(state == w for w in rest) for state in seen)


def replay(matches: dict[str, dict[str, Any]], changes: Sequence[Change]) -> None:
    """Apply a query watch's changes to the matches, checking each fits the state before it."""
    for change in changes:
        doc = change.document
        if change.kind == "added":
            assert doc.id not in matches, f"{doc.id} added twice"
            matches[doc.id] = doc.data
        elif change.kind == "modified":
            assert doc.id in matches, f"{doc.id} modified while not matching"
            matches[doc.id] = doc.data
        else:
            assert doc.id in matches, f"{doc.id} removed while not matching"
            del matches[doc.id]


async def stop(watch: AsyncIterator[Any]) -> None:
    """Close a watch (the Protocol types it as an AsyncIterator; adapters return async generators)."""
    await cast(AsyncGenerator[Any, None], watch).aclose()


async def data_of(store: DocStore, collection: str, doc_id: str) -> dict[str, Any] | None:
    doc = await store.get(collection, doc_id)
    return None if doc is None else doc.data


def ids(docs: Sequence[Document | None]) -> list[str | None]:
    return [None if d is None else d.id for d in docs]


async def seed(store: DocStore, collection: str, docs: dict[str, dict[str, Any]]) -> None:
    async def write_all(tx: Transaction) -> None:
        for doc_id, data in docs.items():
            tx.set(collection, doc_id, data)

    await store.run_transaction(write_all)


# ---------------------------------------------------------------- documents


async def test_implements_the_protocol_and_answers_ping(docstore: DocStore) -> None:
    assert isinstance(docstore, DocStore)
    await docstore.ping()


async def test_created_document_round_trips_json_values(docstore: DocStore) -> None:
    data = {
        "s": "héllo ✓",
        "i": 7,
        "f": 2.5,
        "b": False,
        "z": None,
        "l": [1, "a", [2], {"k": True}],
        "m": {"x": {}},
    }

    created = await docstore.create("things", "t1", data)

    assert created == Document("t1", data, created.version)
    assert await docstore.get("things", "t1") == created


async def test_get_of_missing_document_is_none(docstore: DocStore) -> None:
    assert await docstore.get("things", "nope") is None


async def test_set_replaces_the_whole_document_and_changes_its_version(docstore: DocStore) -> None:
    first = await docstore.set("things", "t1", {"a": 1, "b": 2})

    second = await docstore.set("things", "t1", {"c": 3})

    assert second.data == {"c": 3}
    assert second.version != first.version
    assert await docstore.get("things", "t1") == second


async def test_delete_removes_the_document_and_missing_is_fine(docstore: DocStore) -> None:
    await docstore.create("things", "t1", {"a": 1})

    await docstore.delete("things", "t1")
    await docstore.delete("things", "t1")

    assert await docstore.get("things", "t1") is None


async def test_create_of_existing_document_fails(docstore: DocStore) -> None:
    await docstore.create("things", "t1", {"a": 1})

    with pytest.raises(PreconditionFailed):
        await docstore.create("things", "t1", {"a": 2})
    assert await data_of(docstore, "things", "t1") == {"a": 1}


async def test_update_of_missing_document_fails(docstore: DocStore) -> None:
    with pytest.raises(PreconditionFailed):
        await docstore.update("things", "nope", {"a": 1})
    assert await docstore.get("things", "nope") is None


async def test_update_with_current_version_applies_and_stale_version_fails(docstore: DocStore) -> None:
    created = await docstore.create("things", "t1", {"state": "QUEUED"})
    claimed = await docstore.update("things", "t1", {"state": "RUNNING"}, if_version=created.version)

    with pytest.raises(PreconditionFailed):
        await docstore.update("things", "t1", {"state": "RUNNING", "by": "other"}, if_version=created.version)
    assert await docstore.get("things", "t1") == claimed
    assert claimed.data == {"state": "RUNNING"}


async def test_delete_with_version_fails_when_stale_or_missing(docstore: DocStore) -> None:
    created = await docstore.create("things", "t1", {"a": 1})
    updated = await docstore.update("things", "t1", {"a": 2})

    with pytest.raises(PreconditionFailed):
        await docstore.delete("things", "t1", if_version=created.version)
    await docstore.delete("things", "t1", if_version=updated.version)
    with pytest.raises(PreconditionFailed):
        await docstore.delete("things", "t1", if_version=updated.version)
    assert await docstore.get("things", "t1") is None


async def test_update_sets_nested_paths_creating_intermediate_maps(docstore: DocStore) -> None:
    await docstore.create("things", "t1", {"a": {"keep": 1}, "top": "x"})

    updated = await docstore.update("things", "t1", {"a.b.c": 1, "a.d": [1, 2], "new.deep": {"z": None}})

    assert updated.data == {
        "a": {"keep": 1, "b": {"c": 1}, "d": [1, 2]},
        "top": "x",
        "new": {"deep": {"z": None}},
    }
    assert await docstore.get("things", "t1") == updated


async def test_update_increment_and_delete_sentinels(docstore: DocStore) -> None:
    await docstore.create("things", "t1", {"n": 5, "f": 1.5, "stats": {"hits": 1, "gone": True}, "old": 1})

    updated = await docstore.update(
        "things",
        "t1",
        {
            "n": Increment(2),
            "f": Increment(0.25),
            "stats.hits": Increment(10),
            "stats.misses": Increment(3),
            "stats.gone": Delete(),
            "old": Delete(),
            "never.there": Delete(),
        },
    )

    assert updated.data == {"n": 7, "f": 1.75, "stats": {"hits": 11, "misses": 3}}


async def test_get_many_keeps_the_order_asked_and_reports_missing_as_none(docstore: DocStore) -> None:
    await seed(docstore, "things", {"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}})

    docs = await docstore.get_many("things", ["c", "missing", "a", "a"])

    assert ids(docs) == ["c", None, "a", "a"]
    assert [d.data["v"] for d in docs if d is not None] == [3, 1, 1]
    assert await docstore.get_many("things", []) == []


# ---------------------------------------------------------------- queries

PEOPLE: dict[str, dict[str, Any]] = {
    "ada": {"age": 36, "tags": ["math", "code"], "team": {"name": "core", "size": 3}, "active": True},
    "bob": {"age": 25, "tags": ["art"], "team": {"name": "art", "size": 5}, "active": False},
    "cy": {"age": "25", "tags": [], "team": {"name": "core"}, "active": True},
    "dee": {"age": 41.5, "tags": ["code", "art"], "active": None},
    "eve": {"tags": "code", "team": {"name": "ops", "size": 1}},
    "fay": {"age": None, "tags": [["nested"], {"k": 1}, 7]},
    "gus": {"age": 1, "active": 1},
}

FILTER_CASES: list[tuple[list[Filter], list[str]]] = [
    ([Filter("age", "==", 25)], ["bob"]),
    ([Filter("age", "==", 25.0)], ["bob"]),
    ([Filter("age", "==", "25")], ["cy"]),
    ([Filter("age", "==", None)], ["fay"]),
    ([Filter("active", "==", True)], ["ada", "cy"]),
    ([Filter("active", "==", False)], ["bob"]),
    ([Filter("active", "==", 1)], ["gus"]),
    ([Filter("active", ">", 0)], ["gus"]),
    ([Filter("age", "!=", 25)], ["ada", "cy", "dee", "gus"]),
    ([Filter("age", "<", 36)], ["bob", "gus"]),
    ([Filter("age", "<=", 36)], ["ada", "bob", "gus"]),
    ([Filter("age", ">", 30)], ["ada", "dee"]),
    ([Filter("age", ">=", 41.5)], ["dee"]),
    ([Filter("age", ">=", "2")], ["cy"]),
    ([Filter("age", "in", [25, "25", 99])], ["bob", "cy"]),
    ([Filter("tags", "array_contains", "code")], ["ada", "dee"]),
    ([Filter("tags", "array_contains", {"k": 1})], ["fay"]),
    ([Filter("tags", "array_contains", ["nested"])], ["fay"]),
    ([Filter("tags", "array_contains_any", ["art", "math", 7])], ["ada", "bob", "dee", "fay"]),
    ([Filter("tags", "array_contains_all", ["code", "art"])], ["dee"]),
    ([Filter("tags", "array_contains_all", ["code"])], ["ada", "dee"]),
    ([Filter("tags", "in", ["code", "[]"])], ["eve"]),
    ([Filter("team", "==", '{"name":"core"}')], []),
    ([Filter("tags", "==", [])], ["cy"]),
    ([Filter("team.name", "==", "core")], ["ada", "cy"]),
    ([Filter("team.size", ">", 3)], ["bob"]),
    ([Filter("team", "==", {"size": 3, "name": "core"})], ["ada"]),
    ([Filter("team.name", "==", "core"), Filter("active", "==", True)], ["ada", "cy"]),
    ([Filter("age", ">", 20), Filter("tags", "array_contains", "code")], ["ada", "dee"]),
]


def _case_id(case: tuple[list[Filter], list[str]]) -> str:
    return " & ".join(f"{f.field} {f.op} {f.value!r}" for f in case[0])


@pytest.mark.parametrize("filters, expected", FILTER_CASES, ids=[_case_id(c) for c in FILTER_CASES])
async def test_query_filters_match_like_firestore(
    docstore: DocStore, filters: list[Filter], expected: list[str]
) -> None:
    await seed(docstore, "people", PEOPLE)

    found = await docstore.query(Query("people", filters=filters))

    assert ids(found) == expected  # no order_by: by document id
    assert await docstore.count("people", filters) == len(expected)


@pytest.mark.parametrize("filters, expected", FILTER_CASES, ids=[_case_id(c) for c in FILTER_CASES])
async def test_query_watch_applies_filters_to_new_writes_like_query(
    docstore: DocStore, filters: list[Filter], expected: list[str]
) -> None:
    watch = docstore.watch_query("people", filters)
    assert await next_of(watch) == []

    await seed(docstore, "people", PEOPLE)

    assert sorted(await next_changes(watch, len(expected))) == [("added", i) for i in expected]
    await stop(watch)


async def test_count_counts_matching_documents(docstore: DocStore) -> None:
    await seed(docstore, "people", PEOPLE)

    assert await docstore.count("people") == 7
    assert await docstore.count("people", [Filter("active", "==", True)]) == 2
    assert await docstore.count("nobody") == 0


SCORES: dict[str, dict[str, Any]] = {
    "a": {"score": 3},
    "b": {"score": 1},
    "c": {"score": 2},
    "d": {"score": 2.0},
    "e": {"other": 1},
    "f": {"score": None},
    "g": {"score": "x"},
    "h": {"score": True},
    "i": {"score": [1]},
    "j": {"score": {"k": 1}},
    "k": {"score": False},
}


async def test_order_follows_firestore_type_order_and_excludes_missing_field(docstore: DocStore) -> None:
    await seed(docstore, "scores", SCORES)

    found = await docstore.query(Query("scores", order_by=[Order("score")]))

    assert ids(found) == ["f", "k", "h", "b", "c", "d", "a", "g", "i", "j"]


async def test_descending_order_breaks_ties_by_id_descending(docstore: DocStore) -> None:
    await seed(docstore, "scores", SCORES)

    found = await docstore.query(Query("scores", order_by=[Order("score", descending=True)]))

    assert ids(found) == ["j", "i", "g", "a", "d", "c", "b", "h", "k", "f"]


async def test_order_by_several_fields_with_filter_and_limit(docstore: DocStore) -> None:
    docs = {f"d{i}": {"group": i % 3, "rank": i % 4, "kind": "x" if i % 5 else "y"} for i in range(12)}
    await seed(docstore, "rows", docs)
    by_id_descending = sorted((i for i in docs if docs[i]["kind"] == "x"), reverse=True)
    wanted = sorted(by_id_descending, key=lambda i: (docs[i]["group"], -int(docs[i]["rank"])))  # stable

    found = await docstore.query(
        Query("rows", [Filter("kind", "==", "x")], [Order("group"), Order("rank", descending=True)], limit=5)
    )

    assert ids(found) == wanted[:5]


async def test_query_orders_by_nested_field(docstore: DocStore) -> None:
    await seed(docstore, "people", PEOPLE)

    found = await docstore.query(Query("people", order_by=[Order("team.size")]))

    assert ids(found) == ["eve", "ada", "bob"]


def _bucket(i: int) -> Any:
    # Ties, nulls and a string among the numbers, so cursors cross types and ties.
    return None if i % 11 == 0 else "s" if i % 13 == 0 else i % 7


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
async def test_start_after_pages_through_250_documents_without_gaps_or_duplicates(
    docstore: DocStore, descending: bool
) -> None:
    await seed(docstore, "items", {f"item-{i:03d}": {"bucket": _bucket(i), "i": i} for i in range(250)})
    order = [Order("bucket", descending=descending)]
    everything = await docstore.query(Query("items", order_by=order))

    seen: list[Document] = []
    cursor: list[Any] | None = None
    while True:
        page = await docstore.query(Query("items", order_by=order, limit=20, start_after=cursor))
        if not page:
            break
        seen += page
        cursor = [page[-1].data["bucket"], page[-1].id]

    assert len(everything) == 250
    assert ids(seen) == ids(everything)


async def test_start_after_with_two_order_fields(docstore: DocStore) -> None:
    await seed(docstore, "items", {f"item-{i:03d}": {"a": i % 3, "b": i % 4} for i in range(40)})
    order = [Order("a", descending=True), Order("b")]
    everything = await docstore.query(Query("items", order_by=order))

    seen: list[Document] = []
    cursor: list[Any] | None = None
    while page := await docstore.query(Query("items", order_by=order, limit=7, start_after=cursor)):
        seen += page
        cursor = [page[-1].data["a"], page[-1].data["b"], page[-1].id]

    assert ids(seen) == ids(everything)
    assert len(set(ids(seen))) == 40


# ---------------------------------------------------------------- transactions


async def test_transaction_commits_all_its_writes_and_returns_the_result(docstore: DocStore) -> None:
    await seed(docstore, "acct", {"a": {"n": 1}, "c": {"n": 3}})

    async def move(tx: Transaction) -> str:
        a = await tx.get("acct", "a")
        assert a is not None and await tx.get("acct", "missing") is None
        tx.update("acct", "a", {"n": Increment(-1)})
        tx.set("acct", "b", {"n": a.data["n"]})
        tx.delete("acct", "c")
        tx.create("acct", "d", {"n": 0})
        return "done"

    assert await docstore.run_transaction(move) == "done"
    docs = await docstore.get_many("acct", ["a", "b", "c", "d"])
    assert [None if d is None else d.data for d in docs] == [{"n": 0}, {"n": 1}, None, {"n": 0}]


async def test_transaction_that_raises_writes_nothing(docstore: DocStore) -> None:
    await docstore.create("acct", "a", {"n": 1})

    async def fail(tx: Transaction) -> None:
        await tx.get("acct", "a")
        tx.update("acct", "a", {"n": 2})
        tx.set("acct", "b", {"n": 2})
        raise ValueError("changed my mind")

    with pytest.raises(ValueError, match="changed my mind"):
        await docstore.run_transaction(fail)
    assert ids(await docstore.get_many("acct", ["a", "b"])) == ["a", None]
    assert await data_of(docstore, "acct", "a") == {"n": 1}


@pytest.mark.parametrize("op", ["create-existing", "update-missing"])
async def test_transaction_failing_a_precondition_writes_nothing_and_is_not_retried(
    docstore: DocStore, op: str
) -> None:
    await docstore.create("acct", "a", {"n": 1})
    calls = 0

    async def write(tx: Transaction) -> None:
        nonlocal calls
        calls += 1
        tx.set("acct", "side", {"n": 1})
        if op == "create-existing":
            tx.create("acct", "a", {"n": 2})
        else:
            tx.update("acct", "missing", {"n": 2})

    with pytest.raises(PreconditionFailed):
        await docstore.run_transaction(write)
    assert calls == 1
    assert await docstore.get("acct", "side") is None


async def test_transaction_never_commits_over_a_change_to_a_document_it_read(docstore: DocStore) -> None:
    await docstore.create("acct", "a", {"n": 0})
    calls = 0
    landed_while_open = False
    writer: asyncio.Task[Document] | None = None

    async def add_one(tx: Transaction) -> None:
        nonlocal calls, landed_while_open, writer
        calls += 1
        doc = await tx.get("acct", "a")
        assert doc is not None
        if calls == 1:  # someone else writes in between; it lands at once where reads take no locks
            writer = asyncio.create_task(docstore.update("acct", "a", {"n": Increment(100)}))
            done, _ = await asyncio.wait({writer}, timeout=0.5)
            landed_while_open = bool(done)
        tx.update("acct", "a", {"n": doc.data["n"] + 1})

    await docstore.run_transaction(add_one)
    assert writer is not None
    await writer

    # Retried when the other write landed while it was open; else that write waited for its commit.
    assert calls == (2 if landed_while_open else 1)
    assert await data_of(docstore, "acct", "a") == {"n": 101}


async def test_transaction_gives_up_with_conflict_when_retries_run_out(docstore: DocStore) -> None:
    await docstore.create("acct", "a", {"n": 0})
    held, release = asyncio.Event(), asyncio.Event()

    async def hold(tx: Transaction) -> None:  # keeps "a" busy where reads lock it
        await tx.get("acct", "a")
        held.set()
        await release.wait()

    holder = asyncio.create_task(docstore.run_transaction(hold))
    await asyncio.wait_for(held.wait(), TIMEOUT)
    calls = 0
    writers: list[asyncio.Task[Document]] = []

    async def always_interrupted(tx: Transaction) -> None:
        nonlocal calls
        calls += 1
        doc = await tx.get("acct", "a")
        assert doc is not None
        # Where reads take no locks, a write lands before every commit.
        writers.append(asyncio.create_task(docstore.update("acct", "a", {"n": Increment(1)})))
        await asyncio.wait(writers[-1:], timeout=0.5)
        tx.update("acct", "a", {"n": -1})

    try:
        with pytest.raises(TransactionConflict):
            await docstore.run_transaction(always_interrupted)
    finally:
        release.set()
        await asyncio.wait_for(holder, TIMEOUT)
        await asyncio.wait_for(asyncio.gather(*writers), 30)

    assert calls > 1  # it was retried before giving up
    assert await data_of(docstore, "acct", "a") == {"n": len(writers)}  # and never wrote


async def test_concurrent_transactions_lose_no_increments(docstore: DocStore) -> None:
    await docstore.create("acct", "counter", {"n": 0})

    await asyncio.gather(*(increment(docstore, "acct", "counter") for _ in range(50)))

    assert await data_of(docstore, "acct", "counter") == {"n": 50}


async def test_transactions_in_two_processes_lose_no_increments(
    docstore: DocStore, other_process: OtherProcess, backend: DocBackend
) -> None:
    await docstore.create("acct", "counter", {"n": 0})
    theirs, ours = scaled(backend, 30), scaled(backend, 20)

    await asyncio.gather(
        other_process("increment_many", "acct", "counter", theirs, 3),
        other_process("increment_many", "acct", "counter", theirs, 3),
        increment_many(docstore, "acct", "counter", ours, 2),
    )

    assert await data_of(docstore, "acct", "counter") == {"n": 2 * theirs + ours}


# ---------------------------------------------------------------- watches


async def test_document_watch_yields_current_state_then_later_states_in_order(docstore: DocStore) -> None:
    created = await docstore.create("jobs", "j1", {"progress": 0})
    watch = docstore.watch_document("jobs", "j1")
    assert await next_of(watch) == created

    written = [await docstore.update("jobs", "j1", {"progress": p}) for p in range(1, 21)]
    await docstore.delete("jobs", "j1")

    seen = await states_until(watch, None)
    assert in_order(seen, [*written, None])  # in order, none twice, ending with the latest
    await stop(watch)


async def test_document_watch_of_missing_document_starts_with_none(docstore: DocStore) -> None:
    watch = docstore.watch_document("jobs", "later")
    assert await next_of(watch) is None

    created = await docstore.create("jobs", "later", {"status": "QUEUED"})

    assert await next_of(watch) == created
    await stop(watch)


async def test_document_watch_opened_during_a_write_reports_no_state_twice(docstore: DocStore) -> None:
    await docstore.create("jobs", "j1", {"n": 0})
    writing = asyncio.create_task(docstore.update("jobs", "j1", {"n": 1}))
    watch = docstore.watch_document("jobs", "j1")

    first = await next_of(watch)  # the write may land just before or just after the watch starts
    await writing
    later = await docstore.update("jobs", "j1", {"n": 2})

    states = [first.data["n"]] + ([] if first.data["n"] == 1 else [(await next_of(watch)).data["n"]])
    assert states == [0, 1] or states == [1]
    assert await next_of(watch) == later
    await stop(watch)


async def test_query_watch_opened_during_a_write_reports_no_change_twice(docstore: DocStore) -> None:
    await docstore.create("jobs", "j1", {"n": 0})
    writing = asyncio.create_task(docstore.update("jobs", "j1", {"n": 1}))
    watch = docstore.watch_query("jobs")

    seen = [(c.kind, c.document.data["n"]) for c in await next_of(watch)]
    await writing
    await docstore.update("jobs", "j1", {"n": 2})
    while seen[-1][1] != 2:
        seen += [(c.kind, c.document.data["n"]) for c in await next_of(watch)]

    assert seen in ([("added", 0), ("modified", 1), ("modified", 2)], [("added", 1), ("modified", 2)])
    await stop(watch)


async def test_document_watch_sees_transaction_writes(docstore: DocStore) -> None:
    await docstore.create("jobs", "j1", {"n": 0})
    watch = docstore.watch_document("jobs", "j1")
    await next_of(watch)

    await increment(docstore, "jobs", "j1")

    assert (await next_of(watch)).data == {"n": 1}
    await stop(watch)


async def test_document_watch_sees_writes_from_another_process(
    docstore: DocStore, other_process: OtherProcess
) -> None:
    watch = docstore.watch_document("jobs", "j1")
    assert await next_of(watch) is None

    await other_process(
        "apply_writes",
        "jobs",
        [["set", "j1", {"v": 1}], ["update", "j1", {"v": 2}], ["delete", "j1"], ["set", "j1", {"v": 3}]],
    )

    final = await docstore.get("jobs", "j1")
    assert final is not None and final.data == {"v": 3}
    states = await states_until(watch, final)
    assert in_order([None if s is None else s.data for s in states], [{"v": 1}, {"v": 2}, None, {"v": 3}])
    await stop(watch)


async def test_watch_sees_states_once_and_in_order_when_this_and_another_process_write(
    docstore: DocStore, other_process: OtherProcess, backend: DocBackend
) -> None:
    await docstore.create("acct", "counter", {"n": 0})
    watch = docstore.watch_document("acct", "counter")
    await next_of(watch)

    async def increment_once_the_other_process_does() -> None:
        start = docstore.watch_document("acct", "counter")
        await next_of(start)
        await next_of(start)  # the first change: the other process is running
        await stop(start)
        await increment_many(docstore, "acct", "counter", each, 2)

    each = scaled(backend, 100)
    await asyncio.gather(
        other_process("increment_many", "acct", "counter", each, 2),
        increment_once_the_other_process_does(),
    )

    seen = [doc.data["n"] for doc in await states_until(watch, await docstore.get("acct", "counter"))]
    assert seen[-1] == 2 * each
    assert in_order(seen, range(1, 2 * each + 1))
    await stop(watch)


async def test_query_watch_reports_added_modified_and_removed(docstore: DocStore) -> None:
    await seed(docstore, "jobs", {"a": {"status": "open"}, "b": {"status": "closed"}})
    watch = docstore.watch_query("jobs", [Filter("status", "==", "open")])
    assert [(c.kind, c.document) for c in await next_of(watch)] == [
        ("added", await docstore.get("jobs", "a"))
    ]

    created = await docstore.create("jobs", "c", {"status": "open"})
    assert await next_of(watch) == [Change("added", created)]
    modified = await docstore.update("jobs", "a", {"note": "hi"})
    assert await next_of(watch) == [Change("modified", modified)]
    await docstore.update("jobs", "c", {"status": "closed"})
    assert await next_changes(watch, 1) == [("removed", "c")]
    await docstore.update("jobs", "b", {"status": "open"})
    assert await next_changes(watch, 1) == [("added", "b")]
    await docstore.delete("jobs", "a")
    assert await next_changes(watch, 1) == [("removed", "a")]
    await docstore.set("other", "x", {"status": "open"})  # another collection: not reported
    await docstore.set("jobs", "z", {"status": "closed"})  # never matched: not reported
    await docstore.set("jobs", "y", {"status": "open"})
    assert await next_changes(watch, 1) == [("added", "y")]
    await stop(watch)


async def test_query_watch_sees_writes_from_another_process(
    docstore: DocStore, other_process: OtherProcess
) -> None:
    await docstore.create("jobs", "a", {"status": "open"})
    watch = docstore.watch_query("jobs", [Filter("status", "==", "open")])
    assert await next_changes(watch, 1) == [("added", "a")]

    await other_process(
        "apply_writes",
        "jobs",
        [["set", "b", {"status": "open"}], ["update", "a", {"n": 1}], ["update", "b", {"status": "done"}]],
    )

    # Every change fits the matches before it, and they end as the store does (b came and went).
    matches: dict[str, dict[str, Any]] = {"a": {"status": "open"}}
    final = {"a": {"status": "open", "n": 1}}
    while matches != final:
        replay(matches, await next_of(watch))
    await stop(watch)


def _open_watches(store: DocStore) -> int | None:
    # Only adapters that expose a count can show the subscription itself is gone.
    count = getattr(store, "watch_count", None)
    return count if isinstance(count, int) else None


async def consume(watch: AsyncIterator[Any]) -> None:
    async for _ in watch:
        pass


@pytest.mark.parametrize("how", ["aclose", "break", "cancel"])
async def test_closing_a_watch_releases_its_subscription(docstore: DocStore, how: str) -> None:
    await docstore.create("jobs", "j1", {"n": 0})

    if how == "aclose":
        watch = docstore.watch_query("jobs")
        await next_of(watch)
        await stop(watch)
    elif how == "break":
        async for _ in docstore.watch_document("jobs", "j1"):
            break
    else:
        consumer = asyncio.create_task(consume(docstore.watch_document("jobs", "j1")))
        await asyncio.sleep(0.05)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
    for _ in range(50):  # a generator left behind by `break` is finalised by the event loop soon after
        if _open_watches(docstore) in (0, None):
            break
        await asyncio.sleep(0.01)

    assert _open_watches(docstore) in (0, None)
    await docstore.update("jobs", "j1", {"n": 1})  # nobody left to notify: must not fail


async def test_close_ends_open_watches(docstore: DocStore) -> None:
    doc_watch = docstore.watch_document("jobs", "j1")
    query_watch = docstore.watch_query("jobs")
    await next_of(doc_watch)
    await next_of(query_watch)

    await docstore.close()

    with pytest.raises(StopAsyncIteration):
        await next_of(doc_watch)
    with pytest.raises(StopAsyncIteration):
        await next_of(query_watch)
