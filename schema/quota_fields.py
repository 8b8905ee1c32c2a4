"""The root fields of terms of service and quotas."""

from __future__ import annotations

import strawberry

from resolvers import quotas
from schema.quotas import Terms
from schema.users import User


@strawberry.type
class QuotaQuery:
    current_terms: Terms = strawberry.field(
        resolver=quotas.current_terms, description="The current terms of service; anyone may read them."
    )


@strawberry.type
class QuotaMutation:
    accept_terms: User = strawberry.mutation(
        resolver=quotas.accept_terms,
        description="Accept the terms of service; `version` must be the current one.",
    )
    set_quota: User = strawberry.mutation(
        resolver=quotas.set_quota,
        description=(
            "Administrators: override a user's limits. An omitted argument is left as it is; "
            "null removes the override, so that limit follows the server's default again."
        ),
    )
