"""Collections: named, ordered sets of assets, personal or a team's; an asset may be in many."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from domain.access import Actor, can_read, require_active
from domain.assets import ASSETS
from domain.clock import new_id, now_iso
from domain.collection_rules import (
    COLLECTION_ITEMS,
    COLLECTIONS,
    MAX_COLLECTIONS_PER_ASSET,
    can_edit_collection,
    can_read_collection,
    collection_readers,
    item_id,
    readable_collection,
)
from domain.errors import ErrorCode, StudioError, bad_input, forbidden, not_found
from domain.filing import membership, with_membership
from domain.pages import Page, PageRequest, check_page_size, decode_cursor, encode_cursor, paginate
from domain.ports import DocStore, Document, Filter, Order, Query, Transaction

MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_ASSETS_PER_CALL = 50

LoadMany = Callable[[list[str]], Awaitable[list[Document | None]]]


def _name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise bad_input("name", "name must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise bad_input("name", f"name is longer than {MAX_NAME_CHARS} characters")
    if "\x00" in name:
        raise bad_input("name", "name contains a NUL character")
    return name


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise bad_input("description", f"description is longer than {MAX_DESCRIPTION_CHARS} characters")
    if "\x00" in text:
        raise bad_input("description", "description contains a NUL character")
    return text or None


def _asset_ids(asset_ids: Sequence[str]) -> list[str]:
    ids = list(dict.fromkeys(asset_ids))
    if not ids:
        raise bad_input("assetIds", "give at least one asset id")
    if len(ids) > MAX_ASSETS_PER_CALL:
        raise bad_input("assetIds", f"at most {MAX_ASSETS_PER_CALL} assets per call")
    return ids


class Collections:
    """Creating, editing and reading collections, always through the caller's visibility."""

    def __init__(self, docs: DocStore, *, max_page_size: int = 100) -> None:
        self._docs = docs
        self._max_page_size = max_page_size

    async def get(self, actor: Actor | None, collection_id: str) -> Document:
        return await readable_collection(self._docs, require_active(actor), collection_id)

    async def _editable(self, who: Actor, collection_id: str) -> Document:
        doc = await readable_collection(self._docs, who, collection_id)
        if not can_edit_collection(who, doc.data):
            raise forbidden("Only the collection's owner (or its team's editors) may change it.")
        return doc

    async def create(
        self, actor: Actor | None, name: str, description: str | None, team_id: str | None
    ) -> Document:
        who = require_active(actor)
        data: dict[str, Any] = {
            "name": _name(name),
            "description": _description(description),
            "owner_id": who.id,
            "team_id": team_id,
            "next_position": 0,
        }
        if team_id is not None and who.team_role(team_id) is None:
            raise not_found("team", team_id)
        if not can_edit_collection(who, data):
            raise forbidden("Viewers cannot create collections.")
        now = now_iso()
        data |= {"readers": collection_readers(who.id, team_id), "created_at": now, "updated_at": now}
        return await self._docs.create(COLLECTIONS, new_id(), data)

    async def update(
        self, actor: Actor | None, collection_id: str, *, name: str | None, description: str | None
    ) -> Document:
        who = require_active(actor)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = _name(name)
        if description is not None:
            changes["description"] = _description(description)
        doc = await self._editable(who, collection_id)
        if not changes:
            return doc
        changes["updated_at"] = now_iso()
        return await self._docs.update(COLLECTIONS, collection_id, changes)

    async def delete(self, actor: Actor | None, collection_id: str) -> bool:
        """Remove the collection and its memberships; its assets stay where they are.

        Memberships go first and the collection last, so a crash half-way leaves a smaller
        collection that a second delete finishes.
        """
        who = require_active(actor)
        await self._editable(who, collection_id)
        while True:
            items = await self._items(collection_id)
            if not items:
                break
            await self._unlink(collection_id, [item.data["asset_id"] for item in items])
        await self._docs.delete(COLLECTIONS, collection_id)
        return True

    async def _items(self, collection_id: str, limit: int = 100) -> list[Document]:
        return await self._docs.query(
            Query(COLLECTION_ITEMS, (Filter("collection_id", "==", collection_id),), limit=limit)
        )

    async def list(self, actor: Actor | None, team_id: str | None, page: PageRequest) -> Page:
        """The caller's personal collections, or (with a team) the team's; newest first."""
        who = require_active(actor)
        if team_id is not None and who.team_role(team_id) is None:
            raise not_found("team", team_id)
        reader = f"team:{team_id}" if team_id is not None else f"user:{who.id}"
        return await paginate(
            self._docs,
            COLLECTIONS,
            [Filter("readers", "array_contains", reader)],
            Order("created_at", descending=True),
            page,
            max_size=self._max_page_size,
        )

    # ------------------------------------------------------------ membership

    async def add(self, actor: Actor | None, collection_id: str, asset_ids: Sequence[str]) -> Document:
        """File assets into the collection after those already there; adding twice changes nothing.

        Every asset must be one the caller may see; otherwise NOT_FOUND naming none of them.
        """
        who = require_active(actor)
        ids = _asset_ids(asset_ids)
        await self._editable(who, collection_id)
        found = await self._docs.get_many(ASSETS, ids)
        if any(doc is None or doc.data.get("deleted_at") or not can_read(who, doc.data) for doc in found):
            raise StudioError(ErrorCode.NOT_FOUND, "Some of these assets were not found.", field="assetIds")

        async def file(tx: Transaction) -> None:
            current = await tx.get(COLLECTIONS, collection_id)
            if current is None:
                raise not_found("collection", collection_id)
            items = [await tx.get(COLLECTION_ITEMS, item_id(collection_id, a)) for a in ids]
            assets = [await tx.get(ASSETS, a) for a in ids]
            position = int(current.data.get("next_position") or 0)
            now = now_iso()
            for asset_id, item, asset in zip(ids, items, assets, strict=True):
                if asset is None or asset.data.get("deleted_at"):
                    raise StudioError(ErrorCode.NOT_FOUND, "Some of these assets were not found.")
                if item is None:
                    tx.create(
                        COLLECTION_ITEMS,
                        item_id(collection_id, asset_id),
                        membership(collection_id, asset_id, position, now, who.id),
                    )
                    position += 1
                held = list(asset.data.get("collection_ids") or [])
                if collection_id not in held:
                    if len(held) >= MAX_COLLECTIONS_PER_ASSET:
                        raise bad_input(
                            "assetIds", f"an asset can be in at most {MAX_COLLECTIONS_PER_ASSET} collections"
                        )
                    tx.update(ASSETS, asset_id, with_membership(asset.data, [*held, collection_id]))
            tx.update(COLLECTIONS, collection_id, {"next_position": position, "updated_at": now})

        await self._docs.run_transaction(file)
        return await self.get(who, collection_id)

    async def remove(self, actor: Actor | None, collection_id: str, asset_ids: Sequence[str]) -> Document:
        """Take assets out of the collection; ids not in it are ignored."""
        who = require_active(actor)
        ids = _asset_ids(asset_ids)
        await self._editable(who, collection_id)
        await self._unlink(collection_id, ids)
        await self._docs.update(COLLECTIONS, collection_id, {"updated_at": now_iso()})
        return await self.get(who, collection_id)

    async def _unlink(self, collection_id: str, asset_ids: Sequence[str]) -> None:
        async def unlink(tx: Transaction) -> None:
            items = [await tx.get(COLLECTION_ITEMS, item_id(collection_id, a)) for a in asset_ids]
            assets = [await tx.get(ASSETS, a) for a in asset_ids]
            for asset_id, item, asset in zip(asset_ids, items, assets, strict=True):
                if item is not None:
                    tx.delete(COLLECTION_ITEMS, item.id)
                held = list(asset.data.get("collection_ids") or []) if asset is not None else []
                if collection_id in held:
                    held.remove(collection_id)
                    assert asset is not None
                    tx.update(ASSETS, asset_id, with_membership(asset.data, held))

        await self._docs.run_transaction(unlink)

    async def assets_page(
        self, actor: Actor | None, collection: Document, page: PageRequest, load: LoadMany
    ) -> Page:
        """A page of a (readable) collection's assets in the order they were added: one query, one batch read.

        Assets in the trash are not listed; assets the caller may not see are left out of the page.
        """
        who = require_active(actor)
        items = await paginate(
            self._docs,
            COLLECTION_ITEMS,
            [Filter("collection_id", "==", collection.id), Filter("live", "==", True)],
            Order("position"),
            page,
            max_size=self._max_page_size,
        )
        assets = await load([item.data["asset_id"] for item in items.items])
        kept = [
            (doc, cursor)
            for doc, cursor in zip(assets, items.cursors, strict=True)
            if doc is not None and not doc.data.get("deleted_at") and can_read(who, doc.data)
        ]
        return Page(
            items=[doc for doc, _ in kept],
            cursors=[cursor for _, cursor in kept],
            has_next=items.has_next,
            has_previous=items.has_previous,
            total=items.total,
        )

    async def of_asset(self, actor: Actor | None, asset: Document, page: PageRequest, load: LoadMany) -> Page:
        """The collections an asset is in that the caller may see, in the order it joined them."""
        who = require_active(actor)
        check_page_size(page, self._max_page_size)
        if page.last is not None or page.before is not None:
            raise bad_input("last", "collections page forward only")
        ids = list(asset.data.get("collection_ids") or [])
        found = await load(ids) if ids else []
        visible = [doc for doc in found if doc is not None and can_read_collection(who, doc.data)]
        start = 0
        if page.after is not None:
            (after_id,) = decode_cursor(page.after, "after", 1)
            positions = [doc.id for doc in visible]
            if after_id not in positions:
                raise bad_input("after", "not a cursor of this list")
            start = positions.index(after_id) + 1
        size = 20 if page.first is None else page.first
        chosen = visible[start : start + size]

        async def total() -> int:
            return len(visible)

        return Page(
            items=chosen,
            cursors=[encode_cursor([doc.id]) for doc in chosen],
            has_next=start + size < len(visible),
            has_previous=start > 0,
            total=total,
        )
