"""Versions: an upscale, an edit or a video made from frames is a new asset whose parents are its sources."""

from __future__ import annotations

from collections.abc import Sequence

from domain.access import Actor, can_read, require_active
from domain.assets import ASSETS
from domain.ports import DocStore, Document, Filter, Order, Query

MAX_PARENTS_PER_READ = 30  # Firestore's limit on the values of one array-contains-any
MAX_DERIVATIVES_PER_READ = 1000


async def derivatives_of(
    docs: DocStore, actor: Actor | None, parent_ids: Sequence[str]
) -> list[list[Document]]:
    """For each parent, oldest first, the assets made from it that the caller may see (not in the trash).

    One query for up to MAX_PARENTS_PER_READ parents, so a page of assets costs one read, not one per asset.
    """
    who = require_active(actor)
    wanted = list(dict.fromkeys(parent_ids))
    found: dict[str, list[Document]] = {parent: [] for parent in wanted}
    for start in range(0, len(wanted), MAX_PARENTS_PER_READ):
        chunk = wanted[start : start + MAX_PARENTS_PER_READ]
        rows = await docs.query(
            Query(
                ASSETS,
                (Filter("parent_ids", "array_contains_any", chunk), Filter("deleted", "==", False)),
                (Order("created_at"),),
                limit=MAX_DERIVATIVES_PER_READ,
            )
        )
        for row in rows:
            if not can_read(who, row.data):
                continue
            for parent in row.data.get("parent_ids") or ():
                if parent in found:
                    found[parent].append(row)
    return [found[parent] for parent in parent_ids]
