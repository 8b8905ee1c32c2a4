"""Filing: how an asset's membership of a collection is written, by a mutation or by a finishing job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain.clock import now_iso
from domain.collection_rules import COLLECTION_ITEMS, COLLECTIONS, item_id
from domain.library import asset_terms
from domain.ports import Document, Transaction


def with_membership(data: Mapping[str, Any], collection_ids: list[str]) -> dict[str, Any]:
    """The asset changes that record its collections (and the search terms that follow from them)."""
    return {
        "collection_ids": collection_ids,
        "search_terms": asset_terms({**data, "collection_ids": collection_ids}),
    }


def membership(collection_id: str, asset_id: str, position: int, now: str, by: str) -> dict[str, Any]:
    """A `collection_items` document: the asset's place in the collection; `live` is false while it is in the trash."""
    return {
        "collection_id": collection_id,
        "asset_id": asset_id,
        "position": position,
        "added_at": now,
        "added_by": by,
        "live": True,
    }


async def filing_target(tx: Transaction, collection_id: str | None) -> Document | None:
    """Inside a job's finishing transaction, before its writes: the collection its results go into, if it still exists."""
    if not collection_id:
        return None
    return await tx.get(COLLECTIONS, collection_id)


def file_new_assets(
    tx: Transaction, collection: Document | None, assets: Sequence[tuple[str, dict[str, Any]]], by: str
) -> None:
    """Put a job's new assets (not yet written) into the collection, after what is already there."""
    if collection is None:
        return
    position = int(collection.data.get("next_position") or 0)
    now = now_iso()
    for asset_id, asset in assets:
        tx.set(
            COLLECTION_ITEMS,
            item_id(collection.id, asset_id),
            membership(collection.id, asset_id, position, now, by),
        )
        asset.update(with_membership(asset, [collection.id]))
        position += 1
    tx.update(COLLECTIONS, collection.id, {"next_position": position, "updated_at": now})
