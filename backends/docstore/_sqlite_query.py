"""Firestore semantics for the SQLite document store.

Filters, ordering and cursors become SQL over the JSON text of each document; the same filters
are also evaluated in Python (for query watches); transactions buffer writes, and commits stage
them in memory before storing them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from backends.docstore._order import rank
from domain.ports import Delete, Document, Filter, Increment, PreconditionFailed, Query

Key = tuple[str, str]
# (operation, collection, id, payload, if_version): create/set carry JSON text, update a changes map.
Write = tuple[str, str, str, Any, str | None]

# One canonical text per value: sorted keys make map equality independent of key order, and SQL
# comparisons of arrays and maps (as JSON text) agree with the Python matcher below.
dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True).encode
loads = json.loads

_MISSING = object()
_RANGE_OPS = frozenset({"<", "<=", ">", ">="})
_JSON_TYPES = {1: "('true','false')", 2: "('integer','real')", 3: "('text')", 4: "('array')", 5: "('object')"}
# Firestore's order across types: null < booleans < numbers < strings < arrays < maps; a missing
# field has no rank (NULL), which is how documents without an order field drop out.
_RANK_SQL = (
    "CASE json_type(data, {p}) WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 1"
    " WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3 WHEN 'array' THEN 4"
    " WHEN 'object' THEN 5 END"
)


@lru_cache(maxsize=1024)
def json_path(field: str) -> str:
    """The SQLite JSON path of a dotted field; every segment is quoted so `a.0` is a key, not an index."""
    parts = field.split(".")
    if any(not part or '"' in part for part in parts):
        raise ValueError(f"invalid field path {field!r}")
    return "$" + "".join(f'."{part}"' for part in parts)


class _Sql:
    """Named parameters for one statement; each field path is bound once however often it is used."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._paths: dict[str, str] = {}

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return ":" + name

    def path(self, field: str) -> str:
        if field not in self._paths:
            self._paths[field] = self.param(json_path(field))
        return self._paths[field]

    def comparable(self, value: Any) -> str:
        """A parameter comparable with `json_extract` of a value of the same type."""
        kind = rank(value)
        if kind == 1:
            return self.param(int(value))
        if kind >= 4:
            return f"json({self.param(dumps(value))})"
        return self.param(value)


def _eq(sql: _Sql, t: str, v: str, value: Any) -> str:
    """SQL for `value == field` where `t` is the field's json type and `v` its extracted value."""
    kind = rank(value)
    if kind == 0:
        return f"({t} = 'null')"
    if kind == 1:
        return f"({t} = '{'true' if value else 'false'}')"
    # The value test comes first: it is the selective one, and AND short-circuits.
    return f"({v} = {sql.comparable(value)} AND {t} IN {_JSON_TYPES[kind]})"


def _eq_any(sql: _Sql, t: str, v: str, values: Sequence[Any]) -> str:
    """SQL for `field` equal to one of `values`; strings and numbers each become one IN list."""
    parts: list[str] = []
    for kind in (2, 3):
        group = [x for x in values if rank(x) == kind]
        if group:
            listed = ", ".join(sql.param(x) for x in group)
            parts.append(f"({v} IN ({listed}) AND {t} IN {_JSON_TYPES[kind]})")
    parts += [_eq(sql, t, v, x) for x in values if rank(x) not in (2, 3)]
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def _range(sql: _Sql, t: str, v: str, op: str, value: Any) -> str:
    """SQL for `field op value`; like Firestore, only values of the same type can match."""
    kind = rank(value)
    if kind == 0:
        return f"({t} = 'null')" if op in ("<=", ">=") else "0"
    return f"({v} {op} {sql.comparable(value)} AND {t} IN {_JSON_TYPES[kind]})"


def _values(f: Filter) -> Sequence[Any]:
    if not isinstance(f.value, list | tuple):
        raise TypeError(f"filter {f.op!r} on {f.field!r} needs a list of values")
    return f.value


def filter_sql(sql: _Sql, f: Filter) -> str:
    """One filter as an SQL condition on the `data` column."""
    p = sql.path(f.field)
    t, v = f"json_type(data, {p})", f"json_extract(data, {p})"
    if f.op == "==":
        return _eq(sql, t, v, f.value)
    if f.op == "!=":
        return f"({t} IS NOT NULL AND {t} != 'null' AND NOT {_eq(sql, t, v, f.value)})"
    if f.op in _RANGE_OPS:
        return _range(sql, t, v, f.op, f.value)
    if f.op == "in":
        return _eq_any(sql, t, v, _values(f))
    each = f"EXISTS (SELECT 1 FROM json_each(data, {p}) AS je WHERE "
    if f.op == "array_contains":
        return f"({t} = 'array' AND {each}{_eq(sql, 'je.type', 'je.value', f.value)}))"
    if f.op == "array_contains_any":
        values = _values(f)
        return f"({t} = 'array' AND {each}{_eq_any(sql, 'je.type', 'je.value', values)}))" if values else "0"
    if f.op == "array_contains_all":
        alls = "".join(f" AND {each}{_eq(sql, 'je.type', 'je.value', x)})" for x in _values(f))
        return f"({t} = 'array'{alls})"
    raise ValueError(f"unknown filter operator {f.op!r}")


def _where(sql: _Sql, collection: str, filters: Sequence[Filter]) -> list[str]:
    return [f"collection = {sql.param(collection)}", *(filter_sql(sql, f) for f in filters)]


def count_sql(collection: str, filters: Sequence[Filter]) -> tuple[str, dict[str, Any]]:
    """`SELECT count(*)` of the documents matching `filters`."""
    sql = _Sql()
    where = " AND ".join(_where(sql, collection, filters))
    return f"SELECT count(*) FROM documents WHERE {where}", sql.params


def select_sql(query: Query) -> tuple[str, dict[str, Any]]:
    """The statement for a query, selecting `id, data, version`."""
    sql = _Sql()
    where = _where(sql, query.collection, query.filters)
    order: list[str] = []
    keys: list[tuple[str, str, bool]] = []
    for o in query.order_by:
        p = sql.path(o.field)
        rank_expr, value_expr = _RANK_SQL.format(p=p), f"json_extract(data, {p})"
        where.append(f"json_type(data, {p}) IS NOT NULL")
        direction = " DESC" if o.descending else ""
        order += [rank_expr + direction, value_expr + direction]
        keys.append((rank_expr, value_expr, o.descending))
    last_desc = bool(query.order_by) and query.order_by[-1].descending
    order.append("id DESC" if last_desc else "id")
    if query.start_after is not None:
        where.append(_after_sql(sql, keys, last_desc, query.start_after))
    text = f"SELECT id, data, version FROM documents WHERE {' AND '.join(where)} ORDER BY {', '.join(order)}"
    if query.limit is not None:
        text += f" LIMIT {sql.param(int(query.limit))}"
    return text, sql.params


def _after_sql(
    sql: _Sql, keys: Sequence[tuple[str, str, bool]], last_desc: bool, cursor: Sequence[Any]
) -> str:
    """Rows strictly after the cursor in the query's order: the keyset condition, expanded into ORs."""
    if len(cursor) != len(keys) + 1:
        raise ValueError("start_after needs one value per order field, then the document id")
    alternatives: list[str] = []
    equal: list[str] = []
    for (rank_expr, value_expr, desc), value in zip(keys, cursor, strict=False):
        kind, cmp = rank(value), "<" if desc else ">"
        if kind == 0:  # nulls have no value to compare: only the rank orders them
            after, same = ("0" if desc else f"{rank_expr} > 0"), f"{rank_expr} = 0"
        else:
            cv = sql.comparable(value)
            after = f"({rank_expr} {cmp} {kind} OR ({rank_expr} = {kind} AND {value_expr} {cmp} {cv}))"
            same = f"({rank_expr} = {kind} AND {value_expr} = {cv})"
        alternatives.append(" AND ".join([*equal, after]))
        equal.append(same)
    alternatives.append(
        " AND ".join([*equal, f"id {'<' if last_desc else '>'} {sql.param(str(cursor[-1]))}"])
    )
    return "(" + " OR ".join(f"({a})" for a in alternatives) + ")"


# ---------------------------------------------------------------- the same filters, in Python


def _field(data: Any, field: str) -> Any:
    for part in field.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _compare(a: Any, b: Any) -> int | None:
    """-1, 0 or 1 for values of the same type (None across types), ordered as the SQL above does."""
    kind = rank(a)
    if kind != rank(b):
        return None
    if kind >= 4:
        a, b = dumps(a), dumps(b)
    elif kind == 0:
        return 0
    return int(a > b) - int(a < b)


def _same(a: Any, b: Any) -> bool:
    return _compare(a, b) == 0


def matches(data: Mapping[str, Any], filters: Sequence[Filter]) -> bool:
    """Whether a document's data satisfies every filter, with the semantics of `filter_sql`."""
    for f in filters:
        value = _field(data, f.field)
        if value is _MISSING:
            return False
        op, target = f.op, f.value
        if op == "==":
            ok = _same(value, target)
        elif op == "!=":
            ok = value is not None and not _same(value, target)
        elif op in _RANGE_OPS:
            c = _compare(value, target)
            ok = c is not None and {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]
        elif op == "in":
            ok = any(_same(value, x) for x in _values(f))
        elif not isinstance(value, list):
            ok = False
        elif op == "array_contains":
            ok = any(_same(e, target) for e in value)
        elif op == "array_contains_any":
            ok = any(_same(e, x) for x in _values(f) for e in value)
        elif op == "array_contains_all":
            ok = all(any(_same(e, x) for e in value) for x in _values(f))
        else:
            raise ValueError(f"unknown filter operator {op!r}")
        if not ok:
            return False
    return True


def apply_changes(data: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Apply `update` changes in place: dotted paths create intermediate maps; Increment, Delete."""
    for field, change in changes.items():
        json_path(field)  # validates the path
        *parents, leaf = field.split(".")
        node = data
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                if isinstance(change, Delete):
                    break
                child = node[part] = {}  # like Firestore, a non-map in the way is replaced
            node = child
        else:
            if isinstance(change, Delete):
                node.pop(leaf, None)
            elif isinstance(change, Increment):
                current = node.get(leaf)
                if isinstance(current, int | float) and not isinstance(current, bool):
                    node[leaf] = current + change.amount
                else:  # Firestore too sets a missing or non-numeric field to the amount
                    node[leaf] = change.amount
            else:
                node[leaf] = change


class Staged:
    """A document's state while a commit applies its writes, before it is stored."""

    __slots__ = ("dirty", "existed", "text", "version")

    def __init__(self, text: str | None, version: int | None) -> None:
        self.text, self.version, self.existed, self.dirty = text, version, text is not None, False


def stage(writes: Sequence[Write], load: Callable[[str, str], tuple[str, int] | None]) -> dict[Key, Staged]:
    """Apply writes in memory, in order, to documents read with `load`; PreconditionFailed if one can't."""
    staged: dict[Key, Staged] = {}
    for op, collection, doc_id, payload, if_version in writes:
        st = staged.get((collection, doc_id))
        if st is None:
            st = staged[(collection, doc_id)] = Staged(*(load(collection, doc_id) or (None, None)))
        where = f"{collection}/{doc_id}"
        if if_version is not None and (st.text is None or str(st.version) != if_version):
            raise PreconditionFailed(f"{where} is not at version {if_version}")
        if op == "create" and st.text is not None:
            raise PreconditionFailed(f"{where} already exists")
        if op == "update":
            if st.text is None:
                raise PreconditionFailed(f"{where} does not exist")
            data = loads(st.text)  # a fresh copy: the caller's values are never mutated
            apply_changes(data, payload)
            payload = dumps(data)
        st.text, st.dirty = (None if op == "delete" else payload), True
    return staged


class BufferedTransaction:
    """Reads go to the store and are remembered with their version; writes wait for the commit."""

    def __init__(self, read: Callable[[str, str], Awaitable[Document | None]]) -> None:
        self._read = read
        self._docs: dict[Key, Document | None] = {}
        self.reads: dict[Key, str | None] = {}
        self.writes: list[Write] = []

    async def get(self, collection: str, doc_id: str) -> Document | None:
        """Read a document; reading it again returns the first read (one consistent snapshot)."""
        if self.writes:
            raise RuntimeError("a transaction must do all its reads before its writes")
        key = (collection, doc_id)
        if key not in self._docs:
            doc = await self._read(collection, doc_id)
            self.reads.setdefault(key, None if doc is None else doc.version)
            self._docs.setdefault(key, doc)
        return self._docs[key]

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Create; the commit raises PreconditionFailed if the document exists."""
        self.writes.append(("create", collection, doc_id, dumps(dict(data)), None))

    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Create or replace the whole document."""
        self.writes.append(("set", collection, doc_id, dumps(dict(data)), None))

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        """Change fields; the commit raises PreconditionFailed if the document is missing."""
        self.writes.append(("update", collection, doc_id, dict(changes), None))

    def delete(self, collection: str, doc_id: str) -> None:
        """Remove the document if present."""
        self.writes.append(("delete", collection, doc_id, None, None))
