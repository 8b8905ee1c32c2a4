"""The root fields of teams and sharing, merged into Query and Mutation by schema/root.py."""

from __future__ import annotations

import strawberry

from resolvers import teams
from schema.assets import Asset
from schema.teams import Team


@strawberry.type
class TeamQuery:
    team: Team | None = strawberry.field(
        resolver=teams.team, description="A team its members and administrators may see."
    )


@strawberry.type
class TeamMutation:
    create_team: Team = strawberry.mutation(
        resolver=teams.create_team, description="A new team with the caller as its OWNER (not for viewers)."
    )
    add_team_member: Team = strawberry.mutation(
        resolver=teams.add_team_member,
        description="Team owners: add someone by email. An address without an account is added all the same "
        "(its account waits for its first sign-in), so the answer never tells whether one existed.",
    )
    set_team_member_role: Team = strawberry.mutation(
        resolver=teams.set_team_member_role,
        description="Team owners: change a member's role; a team keeps at least one OWNER (CONFLICT).",
    )
    remove_team_member: Team = strawberry.mutation(
        resolver=teams.remove_team_member,
        description="Team owners: take someone out; the last OWNER stays (CONFLICT).",
    )
    share_asset: Asset = strawberry.mutation(
        resolver=teams.share_asset,
        description="Let one person (withUserEmail) or one team (withTeamId, one of the caller's) read the "
        "asset; for those who may edit it.",
    )
    unshare_asset: Asset = strawberry.mutation(
        resolver=teams.unshare_asset,
        description="Withdraw one person's (userId) or one team's (teamId) access granted by shareAsset.",
    )
