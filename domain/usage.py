"""Usage and cost: per-job counters booked once, at the job's final transition, and reports over them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import partial
from typing import Any

from domain.access import Actor, require_active
from domain.clock import to_iso
from domain.errors import bad_input, forbidden, not_found
from domain.ports import DocStore, Filter, Increment, Query, Transaction
from domain.teams import TEAM_MEMBERS
from domain.visibility import may_see_private

USAGE = "usage_daily"
GROUPS = ("DAY", "MONTH", "USER", "TEAM", "MODEL", "KIND")
MAX_REPORT_DAYS = 400
KIND_COUNTER = {"IMAGE": "images", "VIDEO": "videos", "TEXT": "texts", "UPSCALE": "upscales"}


@dataclass
class UsageTotals:
    images: int = 0
    videos: int = 0
    texts: int = 0
    upscales: int = 0
    video_seconds: float = 0.0
    jobs: int = 0
    failed_jobs: int = 0
    cost_usd: float = 0.0
    refused: int = 0  # prompts the moderation policy refused, and jobs a model's safety filter failed

    def add(self, data: dict[str, Any]) -> None:
        for item in fields(self):
            value = data.get(item.name)
            if value:
                setattr(self, item.name, getattr(self, item.name) + value)
        self.cost_usd = round(self.cost_usd, 6)


@dataclass
class UsageRow:
    key: list[str]
    totals: UsageTotals = field(default_factory=UsageTotals)


@dataclass
class UsageReport:
    start: datetime
    end: datetime
    group_by: list[str]
    rows: list[UsageRow]
    totals: UsageTotals


def usage_doc_id(user_id: str, day: str, model: str, kind: str, team_id: str | None = None) -> str:
    """One counter per user, day, model and kind, and per team for work done in a team."""
    base = f"{user_id}|{day}|{model}|{kind}"
    return f"{base}|{team_id}" if team_id else base


async def book_usage(
    tx: Transaction,
    *,
    user_id: str,
    team_id: str | None,
    day: str,
    model: str,
    kind: str,
    counts: dict[str, float],
) -> None:
    """Add one finished job's counts to the day's counter document, inside the finishing transaction.

    Must be called before any write in the transaction (it reads first).
    """
    doc_id = usage_doc_id(user_id, day, model, kind, team_id)
    existing = await tx.get(USAGE, doc_id)
    if existing is None:
        tx.create(
            USAGE,
            doc_id,
            {
                "user_id": user_id,
                "team_id": team_id,
                "day": day,
                "month": day[:7],
                "model": model,
                "kind": kind,
            }
            | {name: value for name, value in counts.items()},
        )
    else:
        tx.update(USAGE, doc_id, {name: Increment(value) for name, value in counts.items()})


def job_counts(
    kind: str, *, succeeded: bool, units: dict[str, float], cost: float, refused: bool = False
) -> dict[str, float]:
    """What one finished job adds to usage: media counts only when it succeeded; a failure the
    safety filters caused (CONTENT_BLOCKED) also counts as `refused`."""
    counts: dict[str, float] = {"jobs": 1}
    if succeeded:
        counts[KIND_COUNTER[kind]] = units.get("images", 1) if kind in ("IMAGE", "UPSCALE") else 1
        if kind == "VIDEO":
            counts["video_seconds"] = units.get("video_seconds", 0.0)
        counts["cost_usd"] = cost
    else:
        counts["failed_jobs"] = 1
        if refused:
            counts["refused"] = 1
    return counts


def check_team_usage(who: Actor, team_id: str) -> None:
    """A team's usage is for its OWNERs and administrators; other members get FORBIDDEN, others NOT_FOUND."""
    role = who.team_role(team_id)
    if who.user.is_admin or role == "OWNER":
        return
    if role is None:
        raise not_found("team", team_id)
    raise forbidden("Only the team's owners may read its usage.")


class UsageLedger:
    """Usage reports for a caller (or, for admins, anyone)."""

    def __init__(self, docs: DocStore) -> None:
        self._docs = docs

    async def totals(self, user_id: str, start: datetime, end: datetime) -> UsageTotals:
        report = await self._report([Filter("user_id", "==", user_id)], start, end, [])
        return report.totals

    async def team_totals(self, team_id: str, start: datetime, end: datetime) -> UsageTotals:
        """A team's usage; the caller checks first that it is the team's owner or an admin."""
        report = await self._report([Filter("team_id", "==", team_id)], start, end, [])
        return report.totals

    async def may_see_user(self, actor: Actor, user_id: str) -> bool:
        """The user themself, administrators, and owners of a team the user belongs to."""
        return await may_see_private(actor, user_id, partial(self._docs.get_many, TEAM_MEMBERS))

    async def report(
        self,
        actor: Actor | None,
        start: datetime,
        end: datetime,
        group_by: Sequence[str],
        user_id: str | None = None,
        team_id: str | None = None,
    ) -> UsageReport:
        """The caller's usage; administrators: anyone's or everyone's; team owners: their team's and
        their members'."""
        who = require_active(actor)
        if team_id is not None:
            check_team_usage(who, team_id)
        if user_id is not None and not await self.may_see_user(who, user_id):
            raise forbidden("Only administrators and the user's team owners may read other users' usage.")
        for group in group_by:
            if group not in GROUPS:
                raise bad_input("query.groupBy", f"unknown group {group}")
        filters: list[Filter] = []
        if team_id is not None:
            filters.append(Filter("team_id", "==", team_id))
        if user_id is not None:
            filters.append(Filter("user_id", "==", user_id))
        elif not who.user.is_admin and team_id is None:
            filters.append(Filter("user_id", "==", who.id))
        return await self._report(filters, start, end, list(dict.fromkeys(group_by)))

    async def _report(
        self, filters: list[Filter], start: datetime, end: datetime, group_by: list[str]
    ) -> UsageReport:
        if end <= start:
            raise bad_input("query.to", "to must be later than from")
        if (end - start).days > MAX_REPORT_DAYS:
            raise bad_input("query.to", f"a report spans at most {MAX_REPORT_DAYS} days")
        first_day, last_day = to_iso(start)[:10], to_iso(end)[:10]
        filters = [*filters, Filter("day", ">=", first_day), Filter("day", "<=", last_day)]
        docs = await self._docs.query(Query(USAGE, tuple(filters)))
        rows: dict[tuple[str, ...], UsageRow] = {}
        totals = UsageTotals()
        for doc in docs:
            data = doc.data
            key_of = {
                "DAY": data.get("day", ""),
                "MONTH": data.get("month", ""),
                "USER": data.get("user_id", ""),
                "TEAM": data.get("team_id") or "",
                "MODEL": data.get("model", ""),
                "KIND": data.get("kind", ""),
            }
            key = tuple(key_of[group] for group in group_by)
            rows.setdefault(key, UsageRow(list(key))).totals.add(data)
            totals.add(data)
        ordered = [rows[key] for key in sorted(rows)]
        return UsageReport(start, end, group_by, ordered, totals)
