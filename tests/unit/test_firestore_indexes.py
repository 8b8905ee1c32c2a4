"""deploy/firestore.indexes.json against the reads the studio really makes.

The needed indexes are not listed here: deploy/indexes.py drives the studio's read paths on an
embedded store, the reads are replayed through the Firestore adapter (so only what it sends to
Firestore counts, not the filters it runs in memory), and Firestore's indexing rules turn each sent
query into the composite index it needs. Regenerate the file with
`.venv/bin/python deploy/indexes.py > deploy/firestore.indexes.json`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from backends.docstore.indexes import (
    ASCENDING,
    CONTAINS,
    DESCENDING,
    NAME,
    UNINDEXED_FIELDS,
    CompositeIndex,
    IndexField,
    Read,
    RequiredIndex,
    SentQuery,
    index_file,
    missing,
    parse_index_file,
    required_index,
    sent_queries,
    serves,
    unused,
)
from domain.ports import Filter, Order, Query

ROOT = Path(__file__).resolve().parents[2]
INDEX_FILE = ROOT / "deploy" / "firestore.indexes.json"
REGENERATE = ".venv/bin/python deploy/indexes.py > deploy/firestore.indexes.json"


def _derivation() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_indexes", ROOT / "deploy" / "indexes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def needed() -> list[RequiredIndex]:
    """What the studio's reads need (one run of the read paths for the whole module)."""
    result: list[RequiredIndex] = asyncio.run(_derivation().required_indexes())
    return result


@pytest.fixture(scope="module")
def declared() -> list[CompositeIndex]:
    return parse_index_file(json.loads(INDEX_FILE.read_text()))


def _shown(indexes: list[CompositeIndex]) -> str:
    return "\n".join(
        f"  {i.collection}: " + ", ".join(f"{f.path} {f.mode}" for f in i.fields) for i in indexes
    )


def test_every_query_the_studio_sends_firestore_has_its_index_in_the_file(
    needed: list[RequiredIndex], declared: list[CompositeIndex]
) -> None:
    absent = missing(declared, needed)
    assert not absent, f"indexes missing from {INDEX_FILE.name} (run {REGENERATE}):\n" + _shown(
        [n.declared for n in absent]
    )


def test_every_index_in_the_file_serves_some_query(
    needed: list[RequiredIndex], declared: list[CompositeIndex]
) -> None:
    stale = unused(declared, needed)
    assert not stale, f"indexes no query uses (run {REGENERATE}):\n" + _shown(stale)


def test_fields_kept_out_of_the_indexes_are_declared_and_no_query_reads_them() -> None:
    derivation = _derivation()
    sent = asyncio.run(_all_sent(derivation))
    read = {(q.collection, path) for q in sent for path, _ in (*q.filters, *q.orders)}
    assert not read & set(UNINDEXED_FIELDS), "a query reads a field kept out of the indexes"
    overrides = json.loads(INDEX_FILE.read_text())["fieldOverrides"]
    assert overrides == index_file([])["fieldOverrides"], f"run {REGENERATE}"
    assert {"collectionGroup": "assets", "fieldPath": "embedding", "indexes": []} in overrides


async def _all_sent(derivation: ModuleType) -> list[SentQuery]:
    return list(await sent_queries(await derivation.record_reads()))


def test_the_derivation_sees_every_kind_of_read(needed: list[RequiredIndex]) -> None:
    collections = {n.collection for n in needed}
    assert {"assets", "jobs", "usage_daily"} <= collections


# ---------------------------------------------------------------- what the adapter sends


async def _sent(read: Read) -> list[SentQuery]:
    return await sent_queries([read])


async def test_only_one_term_of_array_contains_all_reaches_firestore() -> None:
    terms = Filter("search_terms", "array_contains_all", ["a", "b", "c"])
    query = Query("assets", (Filter("owner_id", "==", "u"), terms), (Order("created_at", True),), limit=3)
    (sent,) = await _sent(Read("query", "assets", tuple(query.filters), query))
    assert sent.filters == (("owner_id", "=="), ("search_terms", "array_contains"))
    assert sent.orders == (("created_at", DESCENDING), (NAME, DESCENDING))


async def test_a_paged_inequality_on_an_unordered_field_runs_in_memory() -> None:
    filters = (Filter("status", "==", "RUNNING"), Filter("lease_expires_at", "<", "2030"))
    (sent,) = await _sent(Read("query", "jobs", filters, Query("jobs", filters, limit=100)))
    assert sent.filters == (("status", "=="),)
    assert required_index(sent) is None


async def test_a_count_and_a_watch_send_their_native_filters_without_order() -> None:
    filters = (Filter("owner_id", "==", "u"), Filter("created_at", ">", "2030"))
    (counted,) = await _sent(Read("count", "assets", filters))
    (watched,) = await _sent(Read("watch", "jobs", (Filter("status", "in", ["QUEUED"]),)))
    assert counted == SentQuery("assets", (("owner_id", "=="), ("created_at", ">")))
    assert watched == SentQuery("jobs", (("status", "in"),))


async def test_a_filter_no_document_matches_sends_nothing() -> None:
    assert await _sent(Read("count", "jobs", (Filter("status", "in", []),))) == []


# ---------------------------------------------------------------- Firestore's rules


def _index(*fields: tuple[str, str]) -> tuple[IndexField, ...]:
    return tuple(IndexField(path, mode) for path, mode in fields)


@pytest.mark.parametrize(
    "sent",
    [
        SentQuery("jobs", (("owner_id", "=="), ("status", "in"))),
        SentQuery("jobs", (("owner_id", "=="),), (("__name__", ASCENDING),)),
        SentQuery("jobs", (("owner_id", "=="), ("kind", "==")), (("__name__", DESCENDING),)),
        SentQuery("jobs", (), (("created_at", DESCENDING), ("__name__", DESCENDING))),
        SentQuery("usage_daily", (("day", ">="), ("day", "<="))),
        SentQuery("assets", (("search_terms", "array_contains"),), (("__name__", ASCENDING),)),
    ],
    ids=["equalities", "equality-by-name", "equalities-by-name-desc", "one-order", "one-range", "one-array"],
)
def test_single_field_indexes_serve(sent: SentQuery) -> None:
    assert required_index(sent) is None


@pytest.mark.parametrize(
    ("sent", "fields"),
    [
        (
            SentQuery("jobs", (("owner_id", "=="),), (("created_at", DESCENDING), (NAME, DESCENDING))),
            _index(("owner_id", ASCENDING), ("created_at", DESCENDING)),
        ),
        (
            SentQuery("usage_daily", (("user_id", "=="), ("day", ">="), ("day", "<="))),
            _index(("user_id", ASCENDING), ("day", ASCENDING)),
        ),
        (
            SentQuery("assets", (("owner_id", "=="), ("search_terms", "array_contains"))),
            _index(("owner_id", ASCENDING), ("search_terms", CONTAINS)),
        ),
        (
            SentQuery("assets", (("tags", "array_contains_any"),), (("bytes", ASCENDING), (NAME, ASCENDING))),
            _index(("tags", CONTAINS), ("bytes", ASCENDING)),
        ),
        (
            SentQuery("assets", (("kind", "in"),), (("created_at", ASCENDING), (NAME, DESCENDING))),
            _index(("kind", ASCENDING), ("created_at", ASCENDING), (NAME, DESCENDING)),
        ),
        (
            SentQuery("assets", (("bytes", ">"), ("created_at", "<"))),
            _index(("bytes", ASCENDING), ("created_at", ASCENDING)),
        ),
        (
            SentQuery("assets", (("updated_at", ">"),), (("created_at", DESCENDING),)),
            _index(("created_at", DESCENDING), ("updated_at", ASCENDING)),
        ),
    ],
    ids=[
        "equality-then-order",
        "equality-then-range",
        "equality-and-array",
        "array-then-order",
        "name-against-the-last-order",
        "two-ranges",
        "unordered-range-after-orders",
    ],
)
def test_composite_indexes_are_needed(sent: SentQuery, fields: tuple[IndexField, ...]) -> None:
    needed = required_index(sent)
    assert needed is not None and needed.declared == CompositeIndex(sent.collection, fields)


def test_an_unknown_operator_has_no_rule_to_guess() -> None:
    with pytest.raises(ValueError, match="no indexing rule"):
        required_index(SentQuery("jobs", (("owner_id", "~="),)))


def test_equality_fields_may_be_declared_in_any_order_and_with_an_explicit_name() -> None:
    needed = required_index(
        SentQuery(
            "assets", (("owner_id", "=="), ("deleted", "==")), (("bytes", DESCENDING), (NAME, DESCENDING))
        )
    )
    assert needed is not None
    reordered = _index(
        ("deleted", DESCENDING), ("owner_id", ASCENDING), ("bytes", DESCENDING), (NAME, DESCENDING)
    )
    assert serves(CompositeIndex("assets", reordered), needed)
    flipped = _index(("owner_id", ASCENDING), ("deleted", ASCENDING), ("bytes", ASCENDING))
    assert not serves(CompositeIndex("assets", flipped), needed)
    assert not serves(CompositeIndex("jobs", needed.declared.fields), needed)


def test_the_file_format_round_trips() -> None:
    needed = required_index(
        SentQuery("assets", (("owner_id", "=="), ("search_terms", "array_contains")), (("bytes", ASCENDING),))
    )
    assert needed is not None
    document = index_file([needed, needed])
    assert document["indexes"][0]["fields"][1] == {"fieldPath": "search_terms", "arrayConfig": "CONTAINS"}
    assert parse_index_file(document) == [needed.declared]
