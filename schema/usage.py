"""Usage and cost in the schema."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from domain import usage as domain_usage


@strawberry.enum
class UsageGroupBy(Enum):
    DAY = "DAY"
    MONTH = "MONTH"
    USER = "USER"
    TEAM = "TEAM"
    MODEL = "MODEL"
    KIND = "KIND"


@strawberry.type(description="Counts and cost over a period.")
class UsageTotals:
    images: int
    videos: int
    texts: int
    upscales: int
    video_seconds: float
    jobs: int
    failed_jobs: int
    cost_usd: float
    refused: int = strawberry.field(
        description="Prompts refused by the content policy, and jobs a model's safety filter refused."
    )

    @classmethod
    def of(cls, totals: domain_usage.UsageTotals) -> UsageTotals:
        return cls(
            images=int(totals.images),
            videos=int(totals.videos),
            texts=int(totals.texts),
            upscales=int(totals.upscales),
            video_seconds=float(totals.video_seconds),
            jobs=int(totals.jobs),
            failed_jobs=int(totals.failed_jobs),
            cost_usd=round(float(totals.cost_usd), 6),
            refused=int(totals.refused),
        )


@strawberry.type
class UsageRow:
    key: list[str]
    totals: UsageTotals


@strawberry.type
class UsageReport:
    from_: datetime = strawberry.field(name="from")
    to: datetime
    group_by: list[UsageGroupBy]
    rows: list[UsageRow]
    totals: UsageTotals

    @classmethod
    def of(cls, report: domain_usage.UsageReport) -> UsageReport:
        return cls(
            from_=report.start,
            to=report.end,
            group_by=[UsageGroupBy(group) for group in report.group_by],
            rows=[UsageRow(key=row.key, totals=UsageTotals.of(row.totals)) for row in report.rows],
            totals=UsageTotals.of(report.totals),
        )


@strawberry.input
class UsageQuery:
    from_: datetime = strawberry.field(name="from")
    to: datetime
    group_by: list[UsageGroupBy] | None = strawberry.field(default_factory=lambda: [UsageGroupBy.DAY])
    user_id: strawberry.ID | None = strawberry.UNSET
    team_id: strawberry.ID | None = strawberry.UNSET
