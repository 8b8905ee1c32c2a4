"""Trash resolvers: soft delete, restore, purge."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from domain.admin import RequestInfo
from schema.assets import Asset
from schema.context import StudioContext
from schema.nodes import decode_id

Ctx = Info[StudioContext, None]


def _request(info: Ctx) -> RequestInfo:
    client = getattr(info.context.request, "client", None)
    return RequestInfo(request_id=info.context.request_id, ip=getattr(client, "host", None))


async def delete_asset(info: Ctx, id: strawberry.ID) -> Asset:
    doc = await info.context.services.trash.delete(info.context.actor, decode_id(id, "Asset"), _request(info))
    return Asset.from_doc(doc)


async def restore_asset(info: Ctx, id: strawberry.ID) -> Asset:
    doc = await info.context.services.trash.restore(
        info.context.actor, decode_id(id, "Asset"), _request(info)
    )
    return Asset.from_doc(doc)


async def purge_deleted(info: Ctx, older_than_days: int | None = 30) -> int:
    days = info.context.services.settings.trash_days if older_than_days is None else older_than_days
    return await info.context.services.trash.purge(info.context.actor, days, _request(info))
