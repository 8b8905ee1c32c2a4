"""Which assets a listing covers, and who may see a person's private fields (email, quota, usage)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from domain.access import Actor
from domain.errors import bad_input, not_found
from domain.ports import Document, Filter
from domain.teams import TeamRole, member_id


def library_scope(actor: Actor, *, team_id: str | None, shared_with_me: bool) -> list[Filter]:
    """The conditions that pick the listed assets: the caller's own (the default), a team's
    (members and admins), or those others shared with the caller directly.

    Everything goes through the denormalised `readers` array, so one array condition selects the
    set and the other filters (kinds, dates, search terms) narrow it.
    """
    if team_id is not None and shared_with_me:
        raise bad_input("filter.sharedWithMe", "pass either teamId or sharedWithMe, not both")
    if team_id is not None:
        if actor.team_role(team_id) is None and not actor.user.is_admin:
            raise not_found("team", team_id)
        return [Filter("readers", "array_contains", f"team:{team_id}")]
    if shared_with_me:
        return [
            Filter("readers", "array_contains", f"user:{actor.id}"),
            Filter("owner_id", "!=", actor.id),
        ]
    return [Filter("owner_id", "==", actor.id)]


MembershipLoader = Callable[[Sequence[str]], Awaitable[Sequence[Document | None]]]


async def may_see_private(actor: Actor, user_id: str, load_memberships: MembershipLoader) -> bool:
    """A user's email, quota and usage: the user, administrators, and owners of a team the user is in."""
    if actor.id == user_id or actor.user.is_admin:
        return True
    owned = sorted(team for team, role in actor.teams.items() if role == TeamRole.OWNER)
    if not owned:
        return False
    found = await load_memberships([member_id(team, user_id) for team in owned])
    return any(doc is not None for doc in found)
