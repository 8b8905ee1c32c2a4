"""API key resolvers: who is asking, then one call to domain.apikeys."""

from __future__ import annotations

from datetime import datetime

from strawberry.types import Info

from domain.admin import RequestInfo
from domain.apikeys import ApiKey
from schema.context import StudioContext
from schema.nodes import decode_id

Ctx = Info[StudioContext, None]


def _request(info: Ctx) -> RequestInfo:
    client = getattr(info.context.request, "client", None)
    return RequestInfo(request_id=info.context.request_id, ip=getattr(client, "host", None))


async def api_keys(info: Ctx) -> list[ApiKey]:
    return await info.context.services.api_keys.list_for(info.context.actor)


async def api_key(info: Ctx, id: str) -> ApiKey:
    return await info.context.services.api_keys.get(info.context.actor, decode_id(id, "ApiKey"))


async def create_api_key(
    info: Ctx, name: str, scopes: list[str] | None, expires_at: datetime | None
) -> tuple[ApiKey, str]:
    return await info.context.services.api_keys.create(
        info.context.actor, name, scopes, expires_at, _request(info)
    )


async def revoke_api_key(info: Ctx, id: str) -> ApiKey:
    return await info.context.services.api_keys.revoke(
        info.context.actor, decode_id(id, "ApiKey"), _request(info)
    )
