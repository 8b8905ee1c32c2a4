"""Terms of service, quotas and budgets in the schema."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.quotas import QuotaUse
from domain.terms import Terms as DomainTerms


@strawberry.type(description="A user's limits and their use in the current UTC day and month.")
class Quota:
    images_per_day: int
    videos_per_month: int
    images_used_today: int
    videos_used_this_month: int
    monthly_budget_usd: float | None = strawberry.field(description="null: no budget")
    spent_this_month_usd: float = strawberry.field(
        description=(
            "Booked this month: the price charged for finished jobs, the estimate for unfinished ones; "
            "jobs cancelled while queued or failed upstream count nothing."
        )
    )
    resets_at: datetime = strawberry.field(
        description="The next UTC midnight, when the daily count resets (the monthly ones reset on the 1st)."
    )

    @classmethod
    def of(cls, use: QuotaUse) -> Quota:
        return cls(
            images_per_day=use.limits.images_per_day,
            videos_per_month=use.limits.videos_per_month,
            images_used_today=use.images_today,
            videos_used_this_month=use.videos_this_month,
            monthly_budget_usd=use.limits.monthly_budget_usd,
            spent_this_month_usd=use.spent_this_month_usd,
            resets_at=use.resets_at,
        )


@strawberry.type(description="The terms of service users must accept (acceptTerms) before they may generate.")
class Terms:
    version: str
    url: str | None
    published_at: datetime

    @classmethod
    def of(cls, terms: DomainTerms) -> Terms:
        return cls(version=terms.version, url=terms.url, published_at=terms.published_at)
