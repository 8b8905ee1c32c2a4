"""Queries for the Firestore document store: which filters Firestore runs, which run here, and how.

Firestore refuses some filters or combinations the studio's contract allows (two array-contains
filters, two not-equal filters, more than 30 `in` values, `in` lists holding null, ...), and it orders
results by every inequality field before the document name. The planner sends Firestore what it
can answer exactly and keeps the rest to be checked here, fetching more pages while rows are
filtered out, so `limit` and cursors keep their meaning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.docstore._firestore_values import (
    RANGE_OPS,
    encode,
    encode_element,
    field_parts,
    matches,
    quoted_path,
    values_of,
)
from domain.ports import Filter, Query

_MAX_DISJUNCTIONS = 30  # Firestore's limit on `in` / array-contains-any combinations
_ARRAY_CONTAINS = frozenset({"array_contains", "array_contains_any"})
_INEQUALITY = RANGE_OPS | {"!="}


@dataclass
class Plan:
    """How one filtered read runs: `native` goes to Firestore, `memory` is checked on each row here."""

    native: list[Filter] = field(default_factory=list)
    memory: list[Filter] = field(default_factory=list)
    empty: bool = False  # a filter no document can satisfy
    sort_here: bool = False  # Firestore's order is not the contract's: sort the (complete) result here


def plan(filters: Sequence[Filter], order_fields: Sequence[str] = (), *, paged: bool = False) -> Plan:
    """Split filters between Firestore and memory.

    An inequality on a field that is not ordered on makes Firestore order by that field first.
    When the read is paged (limit or cursor) such a filter is checked here instead; otherwise it
    stays native and the result is re-sorted here.
    """
    p = Plan()
    ordered = set(order_fields)
    disjunctions = 1
    has_array = has_not_equal = False
    for f in filters:
        field_parts(f.field)  # validates the path
        op, value = f.op, f.value
        if op in ("in", "array_contains_any", "array_contains_all"):
            values = values_of(f)
            if not values and op != "array_contains_all":
                p.empty = True
                continue
        if op in RANGE_OPS and value is None:  # null has no order: only `<=`/`>=` (equal) match
            if op in ("<", ">"):
                p.empty = True
            else:
                p.native.append(Filter(f.field, "==", None))
            continue
        if op == "==":
            p.native.append(f)
        elif op in _INEQUALITY:
            if (op == "!=" and has_not_equal) or (paged and f.field not in ordered):
                p.memory.append(f)
            else:
                has_not_equal = has_not_equal or op == "!="
                if f.field not in ordered:
                    p.sort_here = True
                p.native.append(f)
        elif op == "in":
            values = values_of(f)
            if any(v is None for v in values) or disjunctions * len(values) > _MAX_DISJUNCTIONS:
                p.memory.append(f)  # Firestore's `in` never matches null; and the 30-term limit
            else:
                disjunctions *= len(values)
                p.native.append(f)
        elif op == "array_contains":
            if has_array or value is None:
                p.memory.append(f)
            else:
                has_array = True
                p.native.append(f)
        elif op == "array_contains_any":
            values = values_of(f)
            if has_array or any(v is None for v in values) or disjunctions * len(values) > _MAX_DISJUNCTIONS:
                p.memory.append(f)
            else:
                has_array = True
                disjunctions *= len(values)
                p.native.append(f)
        elif op == "array_contains_all":
            # Not a Firestore filter: one term narrows the read natively, the whole test runs here.
            values = values_of(f)
            term = next((v for v in values if v is not None), None)
            if not has_array and term is not None:
                has_array = True
                p.native.append(Filter(f.field, "array_contains", term))
            p.memory.append(f)
        else:
            raise ValueError(f"unknown filter operator {op!r}")
    if paged:
        p.sort_here = False
    return p


def native_value(f: Filter) -> Any:
    """The filter's value as Firestore stores it."""
    if f.op in ("in", "array_contains_any"):
        encoder = encode if f.op == "in" else encode_element
        return [encoder(v) for v in f.value]
    if f.op == "array_contains":
        return encode_element(f.value)
    return encode(f.value)


def build(collection_ref: Any, filters: Sequence[Filter], field_filter: Any) -> Any:
    """The SDK query for a collection with native filters."""
    q = collection_ref
    for f in filters:
        q = q.where(filter=field_filter(quoted_path(f.field), f.op, native_value(f)))
    return q


def ordered(q: Any, query: Query, *, with_name: bool) -> Any:
    """Add the query's order (and the document name tie-break, in the last order's direction)."""
    for o in query.order_by:
        q = q.order_by(quoted_path(o.field), direction="DESCENDING" if o.descending else "ASCENDING")
    if with_name:
        last_desc = bool(query.order_by) and query.order_by[-1].descending
        q = q.order_by("__name__", direction="DESCENDING" if last_desc else "ASCENDING")
    return q


def cursor_values(query: Query) -> list[Any] | None:
    """The query's `start_after` as Firestore cursor values (order values, then the document id)."""
    if query.start_after is None:
        return None
    if len(query.start_after) != len(query.order_by) + 1:
        raise ValueError("start_after needs one value per order field, then the document id")
    *values, doc_id = query.start_after
    return [encode(v) for v in values] + [str(doc_id)]


def keep(data: Mapping[str, Any], memory: Sequence[Filter]) -> bool:
    return not memory or matches(data, memory)


def needed_fields(memory: Sequence[Filter]) -> list[str]:
    """Top-level-quoted paths the memory filters read (a field mask for counting)."""
    return sorted({quoted_path(f.field) for f in memory})
