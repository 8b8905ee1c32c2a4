"""The trash: soft delete, restore within the window, and the purge of what stayed there too long.

A deleted asset keeps its document and blobs, marked `deleted` with `deleted_at` and `purge_at`
(+ the trash window); it is hidden everywhere except the owner's trash listing, and its collection
memberships are kept but switched off (`live: false`) so restoring brings it back into them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from domain.access import Actor, can_edit, can_read, require_active, require_admin
from domain.admin import AuditLog, RequestInfo
from domain.assets import ASSETS
from domain.clock import now_iso, to_iso, utcnow
from domain.collection_rules import COLLECTION_ITEMS, item_id
from domain.errors import bad_input, conflict, forbidden, not_found
from domain.ports import BlobStore, DocStore, Document, Filter, Order, Query, Transaction

MAX_PURGE_DAYS = 3650
_BATCH = 100
_BLOB_FIELDS = ("blob_key", "thumbnail_key")


class Trash:
    """Deleting, restoring and purging assets; every change is audited."""

    def __init__(self, docs: DocStore, blobs: BlobStore, audit: AuditLog, *, trash_days: int = 30) -> None:
        self._docs = docs
        self._blobs = blobs
        self._audit = audit
        self._days = trash_days

    async def _own(self, who: Actor, asset_id: str) -> Document:
        """The asset, for someone who may change it; strangers (and readers of trashed assets) get NOT_FOUND."""
        doc = await self._docs.get(ASSETS, asset_id)
        if doc is None or doc.data.get("purging") or not can_read(who, doc.data):
            raise not_found("asset", asset_id)
        if not can_edit(who, doc.data):
            if doc.data.get("deleted_at"):
                raise not_found("asset", asset_id)
            raise forbidden("Only the owner may delete or restore this asset.")
        return doc

    async def delete(self, actor: Actor | None, asset_id: str, request: RequestInfo) -> Document:
        """Move an asset to the trash (deleting it again changes nothing)."""
        who = require_active(actor)
        doc = await self._own(who, asset_id)
        if doc.data.get("deleted_at"):
            return doc
        now = utcnow()
        changes = {
            "deleted": True,
            "deleted_at": to_iso(now),
            "purge_at": to_iso(now + timedelta(days=self._days)),
            "updated_at": to_iso(now),
        }
        await self._switch(asset_id, changes, live=False)
        await self._audit.record(
            "asset.delete", actor_id=who.id, target=asset_id, outcome="ok", request=request
        )
        return await self._reread(asset_id)

    async def restore(self, actor: Actor | None, asset_id: str, request: RequestInfo) -> Document:
        """Bring an asset back from the trash, into the collections it was in."""
        who = require_active(actor)
        doc = await self._own(who, asset_id)
        if not doc.data.get("deleted_at"):
            raise conflict(f"asset {asset_id} is not in the trash")
        changes = {"deleted": False, "deleted_at": None, "purge_at": None, "updated_at": now_iso()}
        await self._switch(asset_id, changes, live=True)
        await self._audit.record(
            "asset.restore", actor_id=who.id, target=asset_id, outcome="ok", request=request
        )
        return await self._reread(asset_id)

    async def _switch(self, asset_id: str, changes: dict[str, Any], *, live: bool) -> None:
        """Change the asset and its memberships together, if it is still in the state we found it in."""

        async def switch(tx: Transaction) -> None:
            current = await tx.get(ASSETS, asset_id)
            if current is None or current.data.get("purging"):
                raise not_found("asset", asset_id)
            if bool(current.data.get("deleted_at")) != live:
                return  # a concurrent call did it already
            collections = list(current.data.get("collection_ids") or [])
            items = [await tx.get(COLLECTION_ITEMS, item_id(c, asset_id)) for c in collections]
            tx.update(ASSETS, asset_id, changes)
            for item in items:
                if item is not None:
                    tx.update(COLLECTION_ITEMS, item.id, {"live": live})

        await self._docs.run_transaction(switch)

    async def _reread(self, asset_id: str) -> Document:
        doc = await self._docs.get(ASSETS, asset_id)
        if doc is None:
            raise not_found("asset", asset_id)
        return doc

    # ------------------------------------------------------------ purge

    async def purge(
        self,
        actor: Actor | None,
        older_than_days: int,
        request: RequestInfo,
        *,
        dry_run: bool = False,
        by_operator: bool = False,
    ) -> int:
        """Remove for good the assets in the trash for longer than `older_than_days`; how many.

        Safe to stop at any point and run again. Each asset goes in three steps:
        1. a transaction re-checks that it is still deleted and old enough (a restored asset is
           never touched) and marks it `purging` — the tombstone: from then on it cannot be
           restored, and a re-run recognises it;
        2. its blobs are deleted (a missing blob is fine, so a re-run repeats this harmlessly);
        3. a transaction deletes its collection memberships and, last, the document itself.
        A crash after 1 or 2 leaves a tombstoned document in the trash query, which the next run finishes.

        `by_operator` is the `genmedia purge` command: the operator of the installation, no caller.
        """
        if isinstance(older_than_days, bool) or not 0 <= older_than_days <= MAX_PURGE_DAYS:
            raise bad_input("olderThanDays", f"olderThanDays must be between 0 and {MAX_PURGE_DAYS}")
        who = None if by_operator else require_admin(actor)
        cutoff = to_iso(utcnow() - timedelta(days=older_than_days))
        purged = 0
        start_after: Sequence[Any] | None = None
        while True:
            batch = await self._docs.query(
                Query(
                    ASSETS,
                    (Filter("deleted", "==", True), Filter("deleted_at", "<", cutoff)),
                    (Order("deleted_at"),),
                    limit=_BATCH,
                    start_after=start_after,
                )
            )
            for doc in batch:
                if dry_run:
                    purged += 1
                elif await self._purge_one(doc.id, cutoff):
                    purged += 1
                    await self._audit.record(
                        "asset.purge",
                        actor_id=who.id if who else None,
                        target=doc.id,
                        outcome="ok",
                        request=request,
                        details={"olderThanDays": older_than_days, "deletedAt": doc.data.get("deleted_at")},
                    )
            if len(batch) < _BATCH:
                return purged
            start_after = [batch[-1].data["deleted_at"], batch[-1].id]

    async def _purge_one(self, asset_id: str, cutoff: str) -> bool:
        async def tombstone(tx: Transaction) -> Document | None:
            current = await tx.get(ASSETS, asset_id)
            deleted_at = current.data.get("deleted_at") if current else None
            if current is None or not current.data.get("deleted") or not deleted_at or deleted_at >= cutoff:
                return None  # gone already, restored, or deleted again more recently
            if not current.data.get("purging"):
                tx.update(ASSETS, asset_id, {"purging": True})
            return current

        doomed = await self._docs.run_transaction(tombstone)
        if doomed is None:
            return False
        for name in _BLOB_FIELDS:
            key = doomed.data.get(name)
            if key:
                await self._blobs.delete(str(key))

        async def remove(tx: Transaction) -> bool:
            current = await tx.get(ASSETS, asset_id)
            if current is None:
                return False
            for collection_id in current.data.get("collection_ids") or []:
                tx.delete(COLLECTION_ITEMS, item_id(collection_id, asset_id))
            tx.delete(ASSETS, asset_id)
            return True

        return bool(await self._docs.run_transaction(remove))
