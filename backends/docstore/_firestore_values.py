"""Values for the Firestore document store: JSON documents in and out, versions, and Firestore's order.

The studio's documents are JSON (what the SQLite store keeps), so values are checked the same way
on the way in. Firestore cannot hold an array directly inside an array: such inner arrays are
stored as a one-key map `{NESTED_ARRAY: [...]}` and unwrapped on the way out, so documents round
trip unchanged. Nothing here imports the SDK.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cmp_to_key, lru_cache
from typing import Any

from backends.docstore._order import rank
from domain.ports import Filter

NESTED_ARRAY = "(genmedia-array)"  # not a reserved name (those are __x__), and no studio field looks like it
_MISSING = object()
RANGE_OPS = frozenset({"<", "<=", ">", ">="})


# ---------------------------------------------------------------- field paths


@lru_cache(maxsize=1024)
def field_parts(field: str) -> tuple[str, ...]:
    """The segments of a dotted field path; empty segments are refused, as in the SQLite store."""
    parts = tuple(field.split("."))
    if any(not part for part in parts):
        raise ValueError(f"invalid field path {field!r}")
    return parts


@lru_cache(maxsize=1024)
def quoted_path(field: str) -> str:
    """The path in Firestore's own syntax: segments that are not plain identifiers get backticks."""
    out: list[str] = []
    for part in field_parts(field):
        simple = (part[0].isalpha() or part[0] == "_") and all(c.isalnum() or c == "_" for c in part)
        if simple and part.isascii():
            out.append(part)
        else:
            out.append("`" + part.replace("\\", "\\\\").replace("`", "\\`") + "`")
    return ".".join(out)


def field_value(data: Mapping[str, Any], field: str) -> Any:
    """The value at a dotted path, or `MISSING`."""
    node: Any = data
    for part in field_parts(field):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


MISSING = _MISSING


# ---------------------------------------------------------------- encoding


def encode(value: Any) -> Any:
    """A JSON value as Firestore stores it (a fresh copy); TypeError/ValueError for anything not JSON."""
    return _encode(value, in_array=False)


def encode_element(value: Any) -> Any:
    """A value that is (or is compared with) an element of an array."""
    return _encode(value, in_array=True)


def _encode(value: Any, in_array: bool) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"integer out of Firestore's 64-bit range: {value}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
        return value
    if isinstance(value, list | tuple):
        items = [_encode(item, in_array=True) for item in value]
        return {NESTED_ARRAY: items} if in_array else items
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            out[key] = _encode(item, in_array=False)
        if in_array and len(out) == 1 and NESTED_ARRAY in out:
            raise ValueError(f"a map holding only {NESTED_ARRAY!r} cannot be stored in an array")
        return out
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def decode(value: Any) -> Any:
    """A stored value as the studio wrote it: inner arrays unwrapped."""
    if isinstance(value, list):
        return [_decode_element(item) for item in value]
    if isinstance(value, dict):
        return {key: decode(item) for key, item in value.items()}
    return value


def _decode_element(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1 and NESTED_ARRAY in value:
        inner = value[NESTED_ARRAY]
        if isinstance(inner, list):
            return [_decode_element(item) for item in inner]
    return decode(value)


# ---------------------------------------------------------------- versions


def version_of(timestamp: Any) -> str:
    """A document's version: its update time as RFC 3339 with nine fraction digits (sortable text)."""
    pb = timestamp.timestamp_pb() if hasattr(timestamp, "timestamp_pb") else timestamp
    seconds, nanos = int(pb.seconds), int(pb.nanos)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def parse_version(version: str) -> tuple[int, int] | None:
    """(seconds, nanos) of a version made by `version_of`; None if it is not one."""
    try:
        stamp, fraction = version.removesuffix("Z").split(".")
        if not version.endswith("Z") or len(fraction) != 9 or not fraction.isdigit():
            return None
        moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp()), int(fraction)


# ---------------------------------------------------------------- Firestore's order, in Python


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 in Firestore's total order (numbers by value; arrays element-wise; maps by sorted keys)."""
    ra, rb = rank(a), rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == 4:
        for x, y in zip(a, b, strict=False):
            if c := compare(x, y):
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra == 5:
        ka, kb = sorted(a), sorted(b)
        for x, y in zip(ka, kb, strict=False):
            if x != y:
                return -1 if x < y else 1
            if c := compare(a[x], b[y]):
                return c
        return (len(ka) > len(kb)) - (len(ka) < len(kb))
    if ra == 0:
        return 0
    return (a > b) - (a < b)


def same(a: Any, b: Any) -> bool:
    return compare(a, b) == 0


def values_of(f: Filter) -> Sequence[Any]:
    if not isinstance(f.value, list | tuple):
        raise TypeError(f"filter {f.op!r} on {f.field!r} needs a list of values")
    return f.value


def matches(data: Mapping[str, Any], filters: Sequence[Filter]) -> bool:
    """Whether decoded document data satisfies every filter, as Firestore (and the SQLite store) decide."""
    for f in filters:
        value = field_value(data, f.field)
        if value is _MISSING:
            return False
        op, target = f.op, f.value
        if op == "==":
            ok = same(value, target)
        elif op == "!=":
            ok = value is not None and not same(value, target)
        elif op in RANGE_OPS:
            if target is None:
                ok = value is None and op in ("<=", ">=")
            elif rank(value) != rank(target):
                ok = False
            else:
                c = compare(value, target)
                ok = {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]
        elif op == "in":
            ok = any(same(value, x) for x in values_of(f))
        elif not isinstance(value, list):
            ok = False
        elif op == "array_contains":
            ok = any(same(e, target) for e in value)
        elif op == "array_contains_any":
            ok = any(same(e, x) for x in values_of(f) for e in value)
        elif op == "array_contains_all":
            ok = all(any(same(e, x) for e in value) for x in values_of(f))
        else:
            raise ValueError(f"unknown filter operator {op!r}")
        if not ok:
            return False
    return True


def sort_key(fields: Sequence[tuple[str, bool]], last_descending: bool) -> Any:
    """A key function ordering decoded documents (objects with `.id` and `.data`) like a Firestore query."""

    def cmp(a: Any, b: Any) -> int:
        for field, descending in fields:
            c = compare(field_value(a.data, field), field_value(b.data, field))
            if c:
                return -c if descending else c
        c = (a.id > b.id) - (a.id < b.id)
        return -c if last_descending else c

    return cmp_to_key(cmp)
