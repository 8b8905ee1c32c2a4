"""Batch resolvers: the items decoded as their single mutations would be, one domain call, Batch out."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from domain.access import require_active
from domain.batch_tally import RUNNING
from domain.batches import BatchItem, item_path, may_see_batch
from domain.errors import not_found
from domain.jobs import JobKind
from domain.ports import Document
from resolvers.inputs import image_input, team_ref, video_input, webhook_input
from schema.batches import Batch, GenerateBatchInput
from schema.context import StudioContext
from schema.jobs import GenerateImageInput, GenerateVideoInput
from schema.nodes import decode_id

Ctx = Info[StudioContext, None]


def _item(kind: JobKind, given: GenerateImageInput | GenerateVideoInput, path: str) -> BatchItem:
    with item_path(path):  # an id decoded here is named at the item's path
        raw = image_input(given) if isinstance(given, GenerateImageInput) else video_input(given)
        team_id = team_ref(given.team_id)
    return BatchItem(
        kind=kind,
        raw=raw,
        webhook=webhook_input(given.webhook),
        use_cache=given.cache is not False,
        team_id=team_id,
        idempotency_key=given.idempotency_key,
        path=path,
    )


async def generate_batch(info: Ctx, input: GenerateBatchInput) -> Batch:
    items = [_item(JobKind.IMAGE, given, f"input.images[{i}]") for i, given in enumerate(input.images or ())]
    items += [_item(JobKind.VIDEO, given, f"input.videos[{i}]") for i, given in enumerate(input.videos or ())]
    doc = await info.context.services.batches.submit(info.context.actor, items, webhook_input(input.webhook))
    return Batch.from_doc(doc)


async def batch(info: Ctx, id: strawberry.ID) -> Batch | None:
    doc = await info.context.services.batches.get(info.context.actor, decode_id(id, "Batch"))
    return Batch.from_doc(doc)


async def batch_progress(info: Ctx, id: str) -> AsyncGenerator[Document, None]:
    """Every state of the batch, from the current one, until it is final."""
    actor = require_active(info.context.actor)
    batch_id = decode_id(id, "Batch")
    async for doc in info.context.services.batches_hub.subscribe(batch_id):
        if doc is None or not may_see_batch(actor, doc.data):
            raise not_found("batch", id)
        yield doc
        if doc.data.get("status") != RUNNING:
            return
