"""A user's quota limits: the defaults from settings, and the per-user overrides admins set."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import bad_input
from domain.ports import Delete

OVERRIDES = "quota"  # the user-document field holding an admin's per-user limits


@dataclass(frozen=True)
class QuotaLimits:
    """How much one user may generate: images per day, videos per month, dollars per month (None: no budget)."""

    images_per_day: int
    videos_per_month: int
    monthly_budget_usd: float | None

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> QuotaLimits:
        """These limits with an admin's per-user values (a missing key keeps the default)."""
        if not overrides:
            return self
        budget = overrides.get("monthly_budget_usd", self.monthly_budget_usd)
        return QuotaLimits(
            images_per_day=int(overrides.get("images_per_day", self.images_per_day)),
            videos_per_month=int(overrides.get("videos_per_month", self.videos_per_month)),
            monthly_budget_usd=None if budget is None else float(budget),
        )


_STORED = {
    "imagesPerDay": "images_per_day",
    "videosPerMonth": "videos_per_month",
    "monthlyBudgetUsd": "monthly_budget_usd",
}
MAX_COUNT_LIMIT = 10_000_000
MAX_BUDGET_USD = 1_000_000_000.0


def _check_limit(name: str, value: int | float | None) -> None:
    if name not in _STORED:
        raise bad_input(name, f"unknown limit {name!r}")
    if value is None:
        return
    if name == "monthlyBudgetUsd":
        if isinstance(value, bool) or not math.isfinite(value) or not 0 <= value <= MAX_BUDGET_USD:
            raise bad_input(name, f"{name} must be between 0 and {MAX_BUDGET_USD:.0f} (null: the default)")
    elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT_LIMIT:
        raise bad_input(
            name, f"{name} must be a whole number between 0 and {MAX_COUNT_LIMIT} (null: the default)"
        )


def override_update(changes: Mapping[str, int | float | None]) -> dict[str, Any]:
    """The user-document update for `setQuota`'s arguments (by their API names); None removes the
    override. BAD_USER_INPUT, naming the argument, for a value out of range."""
    for name, value in changes.items():
        _check_limit(name, value)
    return {
        f"{OVERRIDES}.{_STORED[name]}": Delete() if value is None else value
        for name, value in changes.items()
    }
