"""Teams: people working together, each with a role (OWNER, EDITOR, VIEWER); only owners manage them.

Documents: `teams/{id}` (name, created_at, created_by, owner_count) and
`team_members/{team_id}:{user_id}` (team_id, user_id, role, joined_at, email). The team keeps its
owner count so that "a team never loses its last owner" is checked in the same transaction as
the change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.access import Actor, require_active
from domain.admin import AuditLog, RequestInfo
from domain.clock import new_id, now_iso
from domain.errors import ErrorCode, StudioError, bad_input, conflict, forbidden, not_found
from domain.pages import Page, PageRequest, paginate
from domain.ports import DocStore, Document, Filter, Increment, Order, Query, Transaction
from domain.users import Directory, Role, normalise_email

TEAMS = "teams"
TEAM_MEMBERS = "team_members"
MAX_NAME_CHARS = 100


class TeamRole(StrEnum):
    OWNER = "OWNER"
    EDITOR = "EDITOR"
    VIEWER = "VIEWER"


@dataclass(frozen=True)
class TeamView:
    """A team as one caller sees it: the document, and the caller's role (None for admins outside it)."""

    doc: Document
    role: TeamRole | None


def member_id(team_id: str, user_id: str) -> str:
    return f"{team_id}:{user_id}"


async def team_roles(docs: DocStore, user_id: str) -> dict[str, str]:
    """Every team the user belongs to, with their role there (what an Actor carries)."""
    found = await docs.query(Query(TEAM_MEMBERS, (Filter("user_id", "==", user_id),)))
    return {doc.data["team_id"]: doc.data["role"] for doc in found}


def check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise bad_input("name", "name must not be empty")
    if len(cleaned) > MAX_NAME_CHARS:
        raise bad_input("name", f"name is longer than {MAX_NAME_CHARS} characters")
    if any(ord(char) < 32 for char in cleaned):
        raise bad_input("name", "name contains control characters")
    return cleaned


class Teams:
    """Creating teams and managing their members; every change is audited and takes effect at once."""

    def __init__(
        self, docs: DocStore, directory: Directory, audit: AuditLog, *, max_page_size: int = 100
    ) -> None:
        self._docs = docs
        self._directory = directory
        self._audit = audit
        self._max = max_page_size
        self._listeners: list[Callable[[str], None]] = []

    def on_membership_changed(self, listener: Callable[[str], None]) -> None:
        """Called with the user id whose teams changed (the Authenticator forgets their cached actor)."""
        self._listeners.append(listener)

    def _changed(self, user_id: str) -> None:
        for listener in self._listeners:
            listener(user_id)

    async def role_of(self, team_id: str, user_id: str) -> TeamRole | None:
        """The user's role read from the store (not from a cached actor)."""
        doc = await self._docs.get(TEAM_MEMBERS, member_id(team_id, user_id))
        return TeamRole(doc.data["role"]) if doc is not None else None

    async def get(self, actor: Actor | None, team_id: str) -> TeamView:
        """A team its members and administrators may see; NOT_FOUND for everyone else."""
        who = require_active(actor)
        membership = await self._docs.get(TEAM_MEMBERS, member_id(team_id, who.id))
        team = await self._docs.get(TEAMS, team_id)
        if team is None or (membership is None and not who.user.is_admin):
            raise not_found("team", team_id)
        return TeamView(team, TeamRole(membership.data["role"]) if membership is not None else None)

    async def members(self, team: TeamView, page: PageRequest) -> Page:
        """A team's members in the order they joined (the caller already sees the team)."""
        return await paginate(
            self._docs,
            TEAM_MEMBERS,
            [Filter("team_id", "==", team.doc.id)],
            Order("joined_at"),
            page,
            max_size=self._max,
            default_size=50,
        )

    async def memberships(self, user_id: str) -> list[Document]:
        return await self._docs.query(Query(TEAM_MEMBERS, (Filter("user_id", "==", user_id),)))

    async def create(self, actor: Actor | None, name: str, request: RequestInfo) -> TeamView:
        """A new team with the caller as its one OWNER. Viewers, who never generate, own no teams."""
        cleaned = check_name(name)

        async def work() -> TeamView:
            who = require_active(actor)
            if who.user.role is Role.VIEWER:
                raise forbidden("Viewers cannot create teams.")
            team_id, now = new_id(), now_iso()

            async def write(tx: Transaction) -> None:
                tx.create(
                    TEAMS,
                    team_id,
                    {"name": cleaned, "created_at": now, "created_by": who.id, "owner_count": 1},
                )
                tx.create(
                    TEAM_MEMBERS,
                    member_id(team_id, who.id),
                    _member(team_id, who.id, who.user.email, TeamRole.OWNER, now),
                )

            await self._docs.run_transaction(write)
            self._changed(who.id)
            return await self.get(who, team_id)

        return await self._audited("team.create", actor, None, request, {"name": cleaned}, work)

    async def add_member(
        self, actor: Actor | None, team_id: str, email: str, role: TeamRole, request: RequestInfo
    ) -> TeamView:
        """Add someone by email. An address without an account gets its user record now, as its first
        sign-in would make it (PENDING unless approved), so the answer never tells whether it existed.
        Adding a member again with the same role changes nothing (a retry is safe); with another
        role it is CONFLICT (setTeamMemberRole changes roles)."""
        try:
            address = normalise_email(email)
        except StudioError:
            raise bad_input("email", "not an email address") from None
        details = {"team_id": team_id, "role": role.value}

        async def work() -> TeamView:
            await self._require_owner(actor, team_id)
            user = await self._directory.sign_in(address)

            async def write(tx: Transaction) -> None:
                team = await tx.get(TEAMS, team_id)
                existing = await tx.get(TEAM_MEMBERS, member_id(team_id, user.id))
                if team is None:
                    raise not_found("team", team_id)
                if existing is not None:
                    if existing.data["role"] == role.value:
                        return
                    raise conflict("Already a member of this team: change the role with setTeamMemberRole.")
                tx.create(
                    TEAM_MEMBERS,
                    member_id(team_id, user.id),
                    _member(team_id, user.id, address, role, now_iso()),
                )
                if role is TeamRole.OWNER:
                    tx.update(TEAMS, team_id, {"owner_count": Increment(1)})

            await self._docs.run_transaction(write)
            self._changed(user.id)
            details["user_id"] = user.id
            return await self.get(actor, team_id)

        return await self._audited("team.member.add", actor, team_id, request, details, work)

    async def set_role(
        self, actor: Actor | None, team_id: str, user_id: str, role: TeamRole, request: RequestInfo
    ) -> TeamView:
        """Change a member's role; CONFLICT when it would leave the team without an owner."""

        async def work() -> TeamView:
            await self._require_owner(actor, team_id)

            async def write(tx: Transaction) -> None:
                team, member = await _read(tx, team_id, user_id)
                before = TeamRole(member.data["role"])
                if before is role:
                    return
                if before is TeamRole.OWNER:
                    _keep_an_owner(team)
                tx.update(TEAM_MEMBERS, member.id, {"role": role.value})
                if TeamRole.OWNER in (before, role):
                    tx.update(TEAMS, team_id, {"owner_count": Increment(1 if role is TeamRole.OWNER else -1)})

            await self._docs.run_transaction(write)
            self._changed(user_id)
            return await self.get(actor, team_id)

        details = {"team_id": team_id, "user_id": user_id, "role": role.value}
        return await self._audited("team.member.role", actor, team_id, request, details, work)

    async def remove_member(
        self, actor: Actor | None, team_id: str, user_id: str, request: RequestInfo
    ) -> TeamView:
        """Take someone out of a team; CONFLICT for its last owner. Someone who is not (or no longer)
        a member is simply not there afterwards either: a retry is safe."""

        async def work() -> TeamView:
            await self._require_owner(actor, team_id)

            async def write(tx: Transaction) -> None:
                team = await tx.get(TEAMS, team_id)
                member = await tx.get(TEAM_MEMBERS, member_id(team_id, user_id))
                if team is None:
                    raise not_found("team", team_id)
                if member is None:
                    return
                if member.data["role"] == TeamRole.OWNER:
                    _keep_an_owner(team)
                    tx.update(TEAMS, team_id, {"owner_count": Increment(-1)})
                tx.delete(TEAM_MEMBERS, member.id)

            await self._docs.run_transaction(write)
            self._changed(user_id)
            return await self.get(actor, team_id)

        details = {"team_id": team_id, "user_id": user_id}
        return await self._audited("team.member.remove", actor, team_id, request, details, work)

    async def _require_owner(self, actor: Actor | None, team_id: str) -> Actor:
        """Owners manage a team: other members (and admins, who see every team) get FORBIDDEN,
        everyone else NOT_FOUND."""
        who = require_active(actor)
        view = await self.get(who, team_id)
        if view.role is not TeamRole.OWNER:
            raise forbidden("Only the team's owners may manage its members.")
        return who

    async def _audited(
        self,
        action: str,
        actor: Actor | None,
        team_id: str | None,
        request: RequestInfo,
        details: dict[str, Any],
        work: Callable[[], Awaitable[TeamView]],
    ) -> TeamView:
        actor_id = actor.id if actor is not None else None
        try:
            view = await work()
        except StudioError as error:
            denied = error.code in (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND, ErrorCode.UNAUTHENTICATED)
            await self._audit.record(
                action,
                actor_id=actor_id,
                target=details.get("user_id") or team_id,
                outcome="denied" if denied else "error",
                request=request,
                details={**details, "code": error.code.value, "reason": error.message},
            )
            raise
        await self._audit.record(
            action,
            actor_id=actor_id,
            target=details.get("user_id") or view.doc.id,
            outcome="ok",
            request=request,
            details={**details, "team_id": view.doc.id},
        )
        return view


def _member(team_id: str, user_id: str, email: str, role: TeamRole, now: str) -> dict[str, Any]:
    return {"team_id": team_id, "user_id": user_id, "role": role.value, "joined_at": now, "email": email}


async def _read(tx: Transaction, team_id: str, user_id: str) -> tuple[Document, Document]:
    team = await tx.get(TEAMS, team_id)
    member = await tx.get(TEAM_MEMBERS, member_id(team_id, user_id))
    if team is None:
        raise not_found("team", team_id)
    if member is None:
        raise not_found("team member", user_id)
    return team, member


def _keep_an_owner(team: Document) -> None:
    if int(team.data.get("owner_count") or 0) <= 1:
        raise conflict("A team keeps at least one OWNER: make someone else an owner first.")
