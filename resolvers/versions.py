"""Versions: `Asset.derivatives`, batched so a page of assets asks the docstore once."""

from __future__ import annotations

from collections.abc import Sequence

from aiodataloader import DataLoader
from strawberry.types import Info

from domain.ports import Document
from domain.versions import MAX_PARENTS_PER_READ, derivatives_of
from schema.context import StudioContext


async def derivatives(info: Info[StudioContext, None], asset_id: str) -> list[Document]:
    context = info.context
    loader = context.extras.get("derivatives")
    if loader is None:

        async def batch(ids: Sequence[str]) -> list[list[Document]]:
            return await derivatives_of(context.services.docs, context.actor, ids)

        loader = context.extras["derivatives"] = DataLoader(batch, max_batch_size=MAX_PARENTS_PER_READ)
    found: list[Document] = await loader.load(asset_id)
    return found
