"""Teams, their members and a person's memberships in the schema."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from domain.access import Actor, require_active
from domain.errors import forbidden
from domain.pages import PageRequest
from domain.ports import Document
from domain.teams import TeamRole, TeamView
from schema.context import StudioContext
from schema.nodes import Node, PageInfo, encode_id
from schema.scalars import moment
from schema.usage import UsageTotals

if TYPE_CHECKING:
    from schema.assets import AssetConnection, AssetFilter, AssetSort
    from schema.collections import CollectionConnection
    from schema.users import User

strawberry.enum(TeamRole, description="OWNER manages the team; EDITOR generates and edits; VIEWER reads.")


@strawberry.type(description="People working together: team assets are visible to every member.")
class Team(Node):
    _view: strawberry.Private[TeamView]

    @classmethod
    def of(cls, view: TeamView) -> Team:
        return cls(id=encode_id("Team", view.doc.id), _view=view)

    @strawberry.field
    def name(self) -> str:
        return str(self._view.doc.data["name"])

    @strawberry.field(description="Members in the order they joined.")
    async def members(
        self, info: Info[StudioContext, None], first: int | None = 50, after: str | None = None
    ) -> TeamMemberConnection:
        page = await info.context.services.teams.members(self._view, PageRequest(first=first, after=after))
        edges = [
            TeamMemberEdge(node=TeamMember(_doc=doc), cursor=cursor)
            for doc, cursor in zip(page.items, page.cursors, strict=True)
        ]
        return TeamMemberConnection(edges=edges, page_info=PageInfo.of(page), _total=page.total)

    @strawberry.field(description="Assets made in the team or shared with it.")
    async def assets(
        self,
        info: Info[StudioContext, None],
        filter: Annotated[AssetFilter, strawberry.lazy("schema.assets")] | None = None,
        sort: Annotated[AssetSort, strawberry.lazy("schema.assets")] | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Annotated[AssetConnection, strawberry.lazy("schema.assets")]:
        from resolvers.queries import assets
        from schema.assets import AssetFilter

        scoped = dataclasses.replace(filter or AssetFilter(), team_id=self.id)
        return await assets(info, filter=scoped, sort=sort, first=first, after=after)

    @strawberry.field(description="The team's collections, newest first.")
    async def collections(
        self, info: Info[StudioContext, None], first: int | None = 20, after: str | None = None
    ) -> Annotated[CollectionConnection, strawberry.lazy("schema.collections")]:
        from resolvers.collections import collections

        return await collections(info, team_id=self.id, first=first, after=after)

    @strawberry.field(
        description="Totals over [from, to) of work done in the team; its owners and administrators."
    )
    async def usage(
        self,
        info: Info[StudioContext, None],
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> UsageTotals:
        actor = require_active(info.context.actor)
        if self._view.role is not TeamRole.OWNER and not actor.user.is_admin:
            raise forbidden("Only the team's owners may see its usage.")
        totals = await info.context.services.ledger.team_totals(self._view.doc.id, from_, to)
        return UsageTotals.of(totals)

    @strawberry.field
    def created_at(self) -> datetime:
        value = moment(self._view.doc.data["created_at"])
        assert value is not None
        return value


@strawberry.type(description="A person in a team, with their role there.")
class TeamMember:
    _doc: strawberry.Private[Document]

    @strawberry.field
    async def user(self, info: Info[StudioContext, None]) -> Annotated[User, strawberry.lazy("schema.users")]:
        from schema.users import User

        doc = await info.context.loaders.users.load(self._doc.data["user_id"])
        if doc is None:
            raise RuntimeError("team member's user is missing")
        return User.from_doc(doc)

    @strawberry.field
    def role(self) -> TeamRole:
        return TeamRole(self._doc.data["role"])

    @strawberry.field
    def joined_at(self) -> datetime:
        value = moment(self._doc.data["joined_at"])
        assert value is not None
        return value


@strawberry.type
class TeamMemberEdge:
    node: TeamMember
    cursor: str


@strawberry.type
class TeamMemberConnection:
    edges: list[TeamMemberEdge]
    page_info: PageInfo
    _total: strawberry.Private[Any]

    @strawberry.field(description="How many members the team has.")
    async def total_count(self) -> int:
        return int(await self._total())


@strawberry.type(description="A team a person belongs to, and their role there.")
class TeamMembership:
    team: Team
    role: TeamRole


async def memberships_of(info: Info[StudioContext, None], user_id: str) -> list[TeamMembership]:
    """A person's teams as the caller may see them: all of them for the person and administrators,
    otherwise only the teams the caller shares with them."""
    actor = require_active(info.context.actor)
    found = await info.context.services.teams.memberships(user_id)
    if actor.id != user_id and not actor.user.is_admin:
        found = [doc for doc in found if actor.team_role(doc.data["team_id"]) is not None]
    teams = await info.context.loaders.teams.load_many([doc.data["team_id"] for doc in found])
    own = {doc.data["team_id"]: TeamRole(doc.data["role"]) for doc in found}
    return [
        TeamMembership(
            team=Team.of(
                TeamView(team, own[team.id] if actor.id == user_id else _caller_role(actor, team.id))
            ),
            role=own[team.id],
        )
        for team in teams
        if team is not None
    ]


def _caller_role(actor: Actor, team_id: str) -> TeamRole | None:
    role = actor.team_role(team_id)
    return TeamRole(role) if role is not None else None


async def team_of(info: Info[StudioContext, None], team_id: str | None) -> Team | None:
    """A job's or asset's team, for its members and administrators; null for anyone else (someone an
    asset was shared with sees the asset, not the team)."""
    if not team_id:
        return None
    actor = require_active(info.context.actor)
    role = _caller_role(actor, team_id)
    if role is None and not actor.user.is_admin:
        return None
    doc = await info.context.loaders.teams.load(team_id)
    return Team.of(TeamView(doc, role)) if doc is not None else None
