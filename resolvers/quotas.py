"""Resolvers for the terms of service and for setting quotas."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from domain.admin import RequestInfo
from schema.context import StudioContext
from schema.nodes import decode_id
from schema.quotas import Terms
from schema.users import User

Ctx = Info[StudioContext, None]


def current_terms(info: Ctx) -> Terms:
    return Terms.of(info.context.services.terms.current)


async def accept_terms(info: Ctx, version: str) -> User:
    return User.of(await info.context.services.terms.accept(info.context.actor, version))


async def set_quota(
    info: Ctx,
    user_id: strawberry.ID,
    images_per_day: int | None = strawberry.UNSET,
    videos_per_month: int | None = strawberry.UNSET,
    monthly_budget_usd: float | None = strawberry.UNSET,
) -> User:
    given = {
        "imagesPerDay": images_per_day,
        "videosPerMonth": videos_per_month,
        "monthlyBudgetUsd": monthly_budget_usd,
    }
    changes = {name: value for name, value in given.items() if value is not strawberry.UNSET}
    client = getattr(info.context.request, "client", None)
    request = RequestInfo(request_id=info.context.request_id, ip=getattr(client, "host", None))
    services = info.context.services
    user = await services.quotas.set_limits(
        info.context.actor, decode_id(user_id, "User", "userId"), changes, services.audit, request
    )
    return User.of(user)
