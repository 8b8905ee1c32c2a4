"""Relay-style pagination over docstore queries: opaque cursors, forward and backward."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.errors import bad_input
from domain.ports import DocStore, Document, Filter, Order, Query


@dataclass(frozen=True)
class PageRequest:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of documents with their cursors; `total` is computed only when asked for."""

    items: list[Document]
    cursors: list[str]
    has_next: bool
    has_previous: bool
    total: Callable[[], Awaitable[int]]


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, field_name: str, width: int) -> list[Any]:
    """The values a cursor holds; BAD_USER_INPUT for anything we did not hand out."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise bad_input(field_name, "not a valid cursor") from None
    if not isinstance(values, list) or len(values) != width or not isinstance(values[-1], str):
        raise bad_input(field_name, "not a valid cursor for this list")
    return values


def _value(data: dict[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def check_page_size(page: PageRequest, max_size: int) -> None:
    if page.first is not None and page.last is not None:
        raise bad_input("last", "pass either first or last, not both")
    if page.after is not None and page.before is not None:
        raise bad_input("before", "pass either after or before, not both")
    if page.first is not None and page.before is not None:
        raise bad_input("before", "before pages backward: pass it with last, not first")
    if page.last is not None and page.after is not None:
        raise bad_input("after", "after pages forward: pass it with first, not last")
    for name, size in (("first", page.first), ("last", page.last)):
        if size is not None and not 0 <= size <= max_size:
            raise bad_input(name, f"{name} must be between 0 and {max_size}")


async def paginate(
    docs: DocStore,
    collection: str,
    filters: Sequence[Filter],
    order: Order,
    page: PageRequest,
    *,
    max_size: int,
    default_size: int = 20,
    keep: Callable[[Document], bool] | None = None,
    total: Callable[[], Awaitable[int]] | None = None,
) -> Page:
    """Read one page. `keep` drops rows the store cannot filter; the page is refilled so it stays full,
    and `total` must then count what `keep` keeps."""
    check_page_size(page, max_size)
    backward = page.last is not None or (page.before is not None and page.first is None)
    requested = page.last if backward else page.first
    size = default_size if requested is None else requested
    cursor_arg, cursor_name = (page.before, "before") if backward else (page.after, "after")
    start_after = decode_cursor(cursor_arg, cursor_name, 2) if cursor_arg else None
    query_order = Order(order.field, not order.descending) if backward else order
    rows: list[Document] = []
    while True:
        batch = await docs.query(
            Query(collection, tuple(filters), (query_order,), limit=size + 1, start_after=start_after)
        )
        rows += [row for row in batch if keep is None or keep(row)]
        if len(batch) <= size or len(rows) > size:
            break
        start_after = [_value(batch[-1].data, order.field), batch[-1].id]
    more = len(rows) > size
    rows = rows[:size]
    if backward:
        rows.reverse()
    cursors = [encode_cursor([_value(row.data, order.field), row.id]) for row in rows]

    async def count_all() -> int:
        return await docs.count(collection, tuple(filters))

    return Page(
        items=rows,
        cursors=cursors,
        has_next=(cursor_arg is not None) if backward else more,
        has_previous=more if backward else (cursor_arg is not None),
        total=total or count_all,
    )
