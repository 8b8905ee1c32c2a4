"""People in the schema."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from domain.access import require_active
from domain.errors import forbidden
from domain.ports import Document
from domain.users import User as DomainUser
from domain.visibility import may_see_private
from schema.context import StudioContext
from schema.nodes import Node, PageInfo, encode_id
from schema.quotas import Quota
from schema.scalars import JSON, Role, UserStatus, moment
from schema.usage import UsageTotals

if TYPE_CHECKING:
    from schema.teams import TeamMembership


@strawberry.type(description="A person using the studio.")
class User(Node):
    _user: strawberry.Private[DomainUser]

    @classmethod
    def from_doc(cls, doc: Document) -> User:
        return cls.of(DomainUser.from_doc(doc.id, doc.data))

    @classmethod
    def of(cls, user: DomainUser) -> User:
        return cls(id=encode_id("User", user.id), _user=user)

    @strawberry.field(
        description="Visible to the user themselves, owners of their teams and administrators; "
        "FORBIDDEN for everyone else."
    )
    async def email(self, info: Info[StudioContext, None]) -> str:
        actor = info.context.actor
        if actor is not None and actor.id == self._user.id:
            return self._user.email  # even while PENDING or BLOCKED: `me` shows who is waiting
        if actor is None or not await _may_see_private(info, self._user.id):
            raise forbidden("Only the user, their team owners and administrators may see this email address.")
        return self._user.email

    @strawberry.field(
        description="The person's teams: all of them for themselves and administrators, "
        "otherwise the teams the caller shares with them."
    )
    async def teams(
        self, info: Info[StudioContext, None]
    ) -> list[Annotated[TeamMembership, strawberry.lazy("schema.teams")]]:
        from schema.teams import memberships_of

        return await memberships_of(info, self._user.id)

    @strawberry.field
    def display_name(self) -> str | None:
        return self._user.display_name

    @strawberry.field
    def role(self) -> Role:
        return self._user.role

    @strawberry.field
    def status(self) -> UserStatus:
        return self._user.status

    @strawberry.field
    def accepted_terms_version(self) -> str | None:
        return self._user.accepted_terms_version

    @strawberry.field
    def created_at(self) -> datetime:
        value = moment(self._user.created_at)
        assert value is not None
        return value

    @strawberry.field
    def last_seen_at(self) -> datetime | None:
        return moment(self._user.last_seen_at)

    @strawberry.field(
        description="Limits and their use; visible to the user, owners of their teams and administrators."
    )
    async def quota(self, info: Info[StudioContext, None]) -> Quota:
        actor = info.context.actor
        own = actor is not None and actor.id == self._user.id
        if not own and not await _may_see_private(info, self._user.id):
            raise forbidden("Only the user, their team owners and administrators may see this quota.")
        return Quota.of(await info.context.services.quotas.use_of(self._user.id))

    @strawberry.field(
        description="Totals over [from, to); visible to the user, owners of their teams and administrators."
    )
    async def usage(
        self,
        info: Info[StudioContext, None],
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> UsageTotals:
        if not await _may_see_private(info, self._user.id):
            raise forbidden("Only the user, their team owners and administrators may see this usage.")
        totals = await info.context.services.ledger.totals(self._user.id, from_, to)
        return UsageTotals.of(totals)


async def _may_see_private(info: Info[StudioContext, None], user_id: str) -> bool:
    actor = require_active(info.context.actor)
    return await may_see_private(actor, user_id, info.context.loaders.team_members.load_many)


@strawberry.type(description="One audited action: an admin change, a denied attempt, a refused sign-in.")
class AuditEvent(Node):
    _doc: strawberry.Private[Document]

    @classmethod
    def from_doc(cls, doc: Document) -> AuditEvent:
        return cls(id=encode_id("AuditEvent", doc.id), _doc=doc)

    @strawberry.field(description="Who acted; null for anonymous callers and unknown tokens.")
    async def actor(self, info: Info[StudioContext, None]) -> User | None:
        actor_id = self._doc.data.get("actor_id")
        if not actor_id:
            return None
        doc = await info.context.loaders.users.load(actor_id)
        return User.from_doc(doc) if doc else None

    @strawberry.field(
        description="user.status.set, user.role.set, user.sessions.revoke, quota.set, signin.refused, "
        "apikey.create, apikey.revoke, team.create, team.member.add, team.member.role, team.member.remove, "
        "asset.share, asset.unshare"
    )
    def action(self) -> str:
        return str(self._doc.data["action"])

    @strawberry.field(description="The affected user's or API key's id (raw), when there is one.")
    def target(self) -> str | None:
        return self._doc.data.get("target")

    @strawberry.field(description="ok, denied or error")
    def outcome(self) -> str:
        return str(self._doc.data["outcome"])

    @strawberry.field
    def request_id(self) -> str | None:
        return self._doc.data.get("request_id")

    @strawberry.field
    def ip(self) -> str | None:
        return self._doc.data.get("ip")

    @strawberry.field
    def at(self) -> datetime:
        value = moment(self._doc.data["at"])
        assert value is not None
        return value

    @strawberry.field
    def details(self) -> JSON | None:
        return self._doc.data.get("details")


@strawberry.type
class AuditEventEdge:
    node: AuditEvent
    cursor: str


@strawberry.type
class AuditEventConnection:
    edges: list[AuditEventEdge]
    page_info: PageInfo
    _total: strawberry.Private[Any]

    @strawberry.field
    async def total_count(self) -> int:
        return int(await self._total())
