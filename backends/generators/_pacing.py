"""Progress pacing for the local generator: strictly increasing reports, a planned duration that
the job is stretched to (so the UI sees realistic latency), and injected failures."""

from __future__ import annotations

import asyncio
import time

from domain.errors import ErrorCode, StudioError
from domain.ports import Progress, ProgressReporter


class Pacer:
    """Reports progress, sleeping so that fraction f is reached about f x `planned_seconds` in.

    With `planned_seconds` 0 it never sleeps. With `fail_at` set, the first step at or past that
    fraction (short of completion) raises an injected UPSTREAM_UNAVAILABLE instead.
    """

    def __init__(
        self,
        report: ProgressReporter,
        planned_seconds: float,
        fail_at: float | None = None,
        *,
        elapsed: float = 0.0,
    ) -> None:
        self._report = report
        self._planned = max(0.0, planned_seconds)
        self._fail_at = fail_at
        # A resumed operation started `elapsed` seconds ago: the steps already due come at once.
        self._start = time.monotonic() - max(0.0, elapsed)
        self._last = -1.0

    async def step(
        self, fraction: float, stage: str, message: str | None = None, *, operation_id: str | None = None
    ) -> None:
        """Wait until `fraction` is due, then report it (with the operation just started, if any);
        fractions must strictly increase up to 1."""
        if not self._last < fraction <= 1.0:
            raise ValueError(f"progress must strictly increase within 0..1: {self._last} -> {fraction}")
        if self._fail_at is not None and self._fail_at <= fraction < 1.0:
            raise StudioError(
                ErrorCode.UPSTREAM_UNAVAILABLE, "local generator: injected failure", retryable=True
            )
        if self._planned > 0:
            delay = self._start + fraction * self._planned - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        self._last = fraction
        await self._report(Progress(fraction, stage, self._eta(fraction), message, operation_id))

    def _eta(self, fraction: float) -> float | None:
        if fraction >= 1.0:
            return 0.0
        elapsed = time.monotonic() - self._start
        planned_left = self._planned * (1.0 - fraction)
        if fraction <= 0.0:
            return planned_left if self._planned > 0 else None
        # Slower than planned (a busy machine): extrapolate from the pace so far instead.
        return round(max(planned_left, elapsed / fraction * (1.0 - fraction)), 3)
