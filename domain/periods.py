"""Quota periods: UTC calendar days and months, their keys and the moments they end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def day_key(moment: datetime) -> str:
    """`2026-11-28`: the UTC day a moment falls in."""
    return _utc(moment).strftime("%Y-%m-%d")


def month_key(moment: datetime) -> str:
    """`2026-11`: the UTC calendar month a moment falls in."""
    return _utc(moment).strftime("%Y-%m")


def next_day(moment: datetime) -> datetime:
    """The midnight (UTC) that ends the moment's day."""
    start = _utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(days=1)


def next_month(moment: datetime) -> datetime:
    """Midnight (UTC) on the first day of the month after the moment's."""
    utc = _utc(moment)
    year, month = (utc.year + 1, 1) if utc.month == 12 else (utc.year, utc.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def seconds_until(end: datetime, moment: datetime) -> float:
    """Seconds from `moment` to `end`, never negative."""
    return max((end - _utc(moment)).total_seconds(), 0.0)
