"""Team and sharing resolvers: decode ids, call the domain once, map to schema types."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from domain.admin import RequestInfo
from domain.teams import TeamRole
from schema.assets import Asset
from schema.context import StudioContext
from schema.nodes import decode_id
from schema.teams import Team

Ctx = Info[StudioContext, None]


def _request(info: Ctx) -> RequestInfo:
    client = getattr(info.context.request, "client", None)
    return RequestInfo(request_id=info.context.request_id, ip=getattr(client, "host", None))


def _optional(value: strawberry.ID | None, type_name: str, field: str) -> str | None:
    return decode_id(value, type_name, field) if value is not None else None


async def team(info: Ctx, id: strawberry.ID) -> Team | None:
    view = await info.context.services.teams.get(info.context.actor, decode_id(id, "Team"))
    return Team.of(view)


async def create_team(info: Ctx, name: str) -> Team:
    view = await info.context.services.teams.create(info.context.actor, name, _request(info))
    return Team.of(view)


async def add_team_member(
    info: Ctx, team_id: strawberry.ID, email: str, role: TeamRole = TeamRole.VIEWER
) -> Team:
    view = await info.context.services.teams.add_member(
        info.context.actor, decode_id(team_id, "Team", "teamId"), email, role, _request(info)
    )
    return Team.of(view)


async def set_team_member_role(
    info: Ctx, team_id: strawberry.ID, user_id: strawberry.ID, role: TeamRole
) -> Team:
    view = await info.context.services.teams.set_role(
        info.context.actor,
        decode_id(team_id, "Team", "teamId"),
        decode_id(user_id, "User", "userId"),
        role,
        _request(info),
    )
    return Team.of(view)


async def remove_team_member(info: Ctx, team_id: strawberry.ID, user_id: strawberry.ID) -> Team:
    view = await info.context.services.teams.remove_member(
        info.context.actor,
        decode_id(team_id, "Team", "teamId"),
        decode_id(user_id, "User", "userId"),
        _request(info),
    )
    return Team.of(view)


async def share_asset(
    info: Ctx,
    asset_id: strawberry.ID,
    with_user_email: str | None = None,
    with_team_id: strawberry.ID | None = None,
) -> Asset:
    doc = await info.context.services.sharing.share(
        info.context.actor,
        decode_id(asset_id, "Asset", "assetId"),
        _request(info),
        with_email=with_user_email,
        with_team_id=_optional(with_team_id, "Team", "withTeamId"),
    )
    return Asset.from_doc(doc)


async def unshare_asset(
    info: Ctx,
    asset_id: strawberry.ID,
    user_id: strawberry.ID | None = None,
    team_id: strawberry.ID | None = None,
) -> Asset:
    doc = await info.context.services.sharing.unshare(
        info.context.actor,
        decode_id(asset_id, "Asset", "assetId"),
        _request(info),
        user_id=_optional(user_id, "User", "userId"),
        team_id=_optional(team_id, "Team", "teamId"),
    )
    return Asset.from_doc(doc)
