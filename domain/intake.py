"""The intake of generation requests: one request checked and turned into the job document to create.

Single submits (domain.desk) and batches (domain.batches) both make their jobs here, so both follow
the same rules: input validation, moderation, referenced assets, collection filing, webhook vetting,
the identical-request cache, and the job's quota booking estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain import idempotency
from domain.access import Actor, can_read
from domain.assets import ASSETS
from domain.catalog import Catalog
from domain.clock import now_iso
from domain.collection_rules import check_filing
from domain.errors import bad_input
from domain.jobs import JobKind, JobStatus
from domain.moderation import ModerationPolicy
from domain.ports import CachedResult, DocStore, ResultCache
from domain.quotas import Booking, estimated_booking
from domain.request_cache import request_key
from domain.requests import InputLimits, check_request
from domain.webhook_urls import WebhookUrls

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
FIELD_OF_ROLE = {
    "source": "input.assetId",
    "first_frame": "input.firstFrameAssetId",
    "last_frame": "input.lastFrameAssetId",
    "references": "input.referenceAssetIds",
}


@dataclass(frozen=True)
class PreparedJob:
    """A checked request: the job document to create, its quota booking, and its idempotency print."""

    data: dict[str, Any]
    booking: Booking
    fingerprint: str

    @property
    def cached(self) -> bool:
        """Answered from the request cache: created SUCCEEDED, booking nothing."""
        return bool(self.data["cached"])


class JobIntake:
    """Checks requests and builds their job documents; stores nothing."""

    def __init__(
        self,
        docs: DocStore,
        catalog: Catalog,
        *,
        limits: InputLimits = InputLimits(),
        webhooks: WebhookUrls | None = None,
        cache: ResultCache | None = None,
        moderation: ModerationPolicy | None = None,
    ) -> None:
        self._docs = docs
        self._catalog = catalog
        self._limits = limits
        self._webhooks = webhooks
        self._cache = cache
        self._moderation = moderation or ModerationPolicy()

    async def prepare(
        self,
        who: Actor,
        kind: JobKind,
        raw: Mapping[str, Any],
        *,
        webhook: Mapping[str, Any] | None = None,
        use_cache: bool = True,
        team_id: str | None = None,
    ) -> PreparedJob:
        """Check one request (input, referenced assets, collection, webhook) and build its job
        document, answered from the request cache when it may be; nothing is stored yet. Single
        submits and batches make their jobs here, so both follow the same rules."""
        checked = check_request(kind, raw, self._catalog, self._limits)
        await self._moderation.screen(
            self._docs, who, kind=kind.value, model=checked.model.id, inputs=checked.input, team_id=team_id
        )
        await self._check_inputs(who, checked.asset_refs)
        collection_id = raw.get("collectionId")
        if collection_id is not None:
            await check_filing(self._docs, who, collection_id)
        hook = await self.check_webhook(webhook)
        now = now_iso()
        data: dict[str, Any] = {
            "kind": kind.value,
            "status": JobStatus.QUEUED.value,
            "progress": 0.0,
            "stage": "queued",
            "message": None,
            "eta_seconds": None,
            "model": checked.model.id,
            "input": checked.input,
            "parameters": checked.parameters,
            "asset_refs": checked.asset_refs,
            "owner_id": who.id,
            "team_id": team_id,
            "attempts": 0,
            "cached": False,
            "cost_usd": 0.0,
            "asset_ids": [],
            "error": None,
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "finished_at": None,
            "webhook": hook,
            "collection_id": collection_id,
        }
        # Results made for a team (or filed into a collection) belong there: such requests always generate.
        cacheable = use_cache and self._cache is not None and team_id is None and collection_id is None
        cache_key = request_key(kind, checked.model.id, checked.input) if cacheable else None
        if cache_key is not None:
            data["cache_key"] = cache_key
            hit = await self._cached(who, cache_key)
            if hit is not None:
                data.update(
                    status=JobStatus.SUCCEEDED.value,
                    progress=1.0,
                    stage="done",
                    eta_seconds=0,
                    cached=True,
                    asset_ids=list(hit.asset_ids),
                    cached_from=hit.job_id,
                    started_at=now,
                    finished_at=now,
                )
        fingerprint = idempotency.fingerprint(
            [kind.value, checked.model.id, checked.input, *([team_id] if team_id else [])]
        )
        booking = estimated_booking(
            kind.value, checked.model, checked.parameters, data["input"].get("prompt") or ""
        )
        return PreparedJob(data, booking, fingerprint)

    async def _check_inputs(self, who: Actor, refs: Mapping[str, Sequence[str]]) -> None:
        wanted = [(role, asset_id) for role, ids in refs.items() for asset_id in ids]
        if not wanted:
            return
        docs = await self._docs.get_many(ASSETS, [asset_id for _, asset_id in wanted])
        for (role, asset_id), doc in zip(wanted, docs, strict=True):
            field = FIELD_OF_ROLE[role]
            if doc is None or not can_read(who, doc.data) or doc.data.get("deleted_at"):
                raise bad_input(field, f"asset {asset_id} not found")
            if doc.data.get("mime_type") not in IMAGE_TYPES:
                raise bad_input(field, f"asset {asset_id} is not an image")

    async def _cached(self, who: Actor, cache_key: str) -> CachedResult | None:
        """An earlier identical result the caller may see in full, or None."""
        assert self._cache is not None
        hit = await self._cache.get(cache_key)
        if hit is None or not hit.asset_ids:
            return None
        docs = await self._docs.get_many(ASSETS, list(hit.asset_ids))
        for doc in docs:
            if doc is None or doc.data.get("deleted_at") or not can_read(who, doc.data):
                return None
        return hit

    async def check_webhook(
        self, webhook: Mapping[str, Any] | None, field: str = "input.webhook"
    ) -> dict[str, Any] | None:
        """The webhook as stored ({url, events}), None for none; BAD_USER_INPUT naming `field`."""
        if webhook is None:
            return None
        if self._webhooks is None:
            raise bad_input(field, "webhooks are not available on this server")
        return await self._webhooks.check(webhook, field)
