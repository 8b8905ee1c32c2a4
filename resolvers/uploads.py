"""Upload resolvers: authenticate, call `domain.uploads`, map."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry
from strawberry.types import Info

from domain.uploads import UploadTicket as DomainTicket
from schema.assets import Asset
from schema.context import StudioContext
from schema.nodes import decode_id

if TYPE_CHECKING:
    from schema.uploads import UploadTicket

Ctx = Info[StudioContext, None]
__all__ = ["DomainTicket", "complete_upload", "create_upload"]


async def create_upload(
    info: Ctx, filename: str, mime_type: str, bytes: int, team_id: strawberry.ID | None = None
) -> UploadTicket:
    from schema.uploads import UploadTicket

    team = decode_id(team_id, "Team", "teamId") if team_id is not None else None
    ticket = await info.context.services.uploads.create(info.context.actor, filename, mime_type, bytes, team)
    return UploadTicket.of(ticket)


async def complete_upload(info: Ctx, asset_id: strawberry.ID) -> Asset:
    doc = await info.context.services.uploads.complete(
        info.context.actor, decode_id(asset_id, "Asset", "assetId")
    )
    return Asset.from_doc(doc)
