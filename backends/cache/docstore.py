"""The identical-request cache in the docstore: one `request_cache/{key}` document per entry.

Expired entries are ignored on read and replaced on write; nothing else removes them (a Firestore
TTL policy on `expires_at` does, see deploy/README.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from domain.clock import now_iso, to_iso, utcnow
from domain.ports import CachedResult, DocStore

REQUEST_CACHE = "request_cache"

log = logging.getLogger("genmedia.cache")


class DocstoreResultCache:
    """A ResultCache on the studio's own document store."""

    def __init__(self, docs: DocStore) -> None:
        self._docs = docs

    async def get(self, key: str) -> CachedResult | None:
        try:
            doc = await self._docs.get(REQUEST_CACHE, key)
        except Exception:
            log.warning("request cache read failed; treated as a miss", exc_info=True)
            return None
        if doc is None or doc.data.get("expires_at", "") <= now_iso():
            return None
        return CachedResult(
            job_id=doc.data["job_id"],
            asset_ids=tuple(doc.data["asset_ids"]),
            cost_usd=float(doc.data.get("cost_usd", 0.0)),
        )

    async def put(self, key: str, result: CachedResult, ttl_seconds: int) -> None:
        entry = {
            "job_id": result.job_id,
            "asset_ids": list(result.asset_ids),
            "cost_usd": result.cost_usd,
            "expires_at": to_iso(utcnow() + timedelta(seconds=ttl_seconds)),
        }
        try:
            await self._docs.set(REQUEST_CACHE, key, entry)
        except Exception:
            log.warning("request cache write failed; the result is not cached", exc_info=True)
