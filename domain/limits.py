"""Rate-limit policy: which class an operation belongs to, who is counted, and how many per window.

Three operation classes, each with its own moving-window rate per caller:

- `generate`: any document that runs a generate*/upscale* mutation or `createUpload` (one slot
  per such root field: an upload stores media as a generation does; `completeUpload` only checks
  what one ticket brought, and counts as a read),
- `subscribe`: a subscription starting,
- `read`: every other query or mutation.

A signed-in caller is counted by their identity (`user:<id>`), an anonymous one by client address
(`ip:<address>`). A caller using an API key is counted twice: against the key (`key:<id>`, with
the key policy's own, lower rates, so one runaway key cannot spend its owner's whole budget) and
against the user. Counting itself is a port (`RateLimiter`), so the
same policy runs on in-process memory or on Redis shared by every API process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from domain.access import Actor, is_generate_field
from domain.errors import ErrorCode, StudioError
from domain.ports import RateLimiter


class OperationClass(StrEnum):
    GENERATE = "generate"
    READ = "read"
    SUBSCRIBE = "subscribe"


# The `limits` library's rate strings: "30/minute", "30 per minute", "10 per 2 hours".
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|\s+per\s+|per)\s*(\d+)?\s*([a-z]+?)s?\s*$", re.IGNORECASE)
_UNITS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86_400,
    "month": 30 * 86_400,  # as the `limits` library counts them
    "year": 360 * 86_400,
}


@dataclass(frozen=True)
class Rate:
    """`amount` operations per `seconds` (a moving window)."""

    amount: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.amount} per {self.seconds} seconds"


def parse_rate(text: str) -> Rate:
    """One rate in the `limits` string format; ValueError saying what is expected otherwise."""
    match = _RATE.match(text or "")
    unit = match.group(3).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            "expected a rate such as '30/minute' or '10 per 2 hours' "
            "(units: second, minute, hour, day, month, year)"
        )
    amount = int(match.group(1))
    multiples = int(match.group(2) or 1)
    if amount < 1 or multiples < 1:
        raise ValueError("a rate needs at least 1 operation per at least 1 unit of time")
    return Rate(amount, multiples * _UNITS[unit])


def classify_operation(operation_type: str, root_fields: Iterable[str]) -> tuple[OperationClass, int]:
    """The class of one operation and how many slots of it the operation takes.

    A document mixing generate mutations and other fields counts as `generate`, one slot per
    generate root field (aliases included), so one request cannot hide many generations.
    """
    if operation_type == "subscription":
        return OperationClass.SUBSCRIBE, 1
    if operation_type == "mutation":
        generations = sum(1 for name in root_fields if is_generate_field(name))
        if generations:
            return OperationClass.GENERATE, generations
    return OperationClass.READ, 1


def caller_key(actor: Actor | None, client_address: str | None) -> str:
    """Whom a hit is counted against: the signed-in caller, else the client's address.

    Every credential of one user shares the user's budget; an API key also has its own (`key_caller`).
    """
    if actor is not None:
        return f"user:{actor.id}"
    return f"ip:{client_address or 'unknown'}"


def key_caller(actor: Actor | None) -> str | None:
    """The API key a hit is also counted against (`key:<id>`), None for other credentials."""
    if actor is None or actor.api_key_id is None:
        return None
    return f"key:{actor.api_key_id}"


@dataclass(frozen=True)
class RatePolicy:
    generate: Rate
    read: Rate
    subscribe: Rate

    def rate(self, operation: OperationClass) -> Rate:
        return {
            OperationClass.GENERATE: self.generate,
            OperationClass.READ: self.read,
            OperationClass.SUBSCRIBE: self.subscribe,
        }[operation]


class RateLimits:
    """Applies the policy through a RateLimiter; a refusal is RATE_LIMITED with `retryAfter`."""

    def __init__(
        self, limiter: RateLimiter, policy: RatePolicy, key_policy: RatePolicy | None = None
    ) -> None:
        self._limiter = limiter
        self.policy = policy
        self.key_policy = key_policy  # per API key; None: keys share only their owner's budget

    async def check(
        self, operation: OperationClass, caller: str, cost: int = 1, *, policy: RatePolicy | None = None
    ) -> None:
        rate = (policy or self.policy).rate(operation)
        if cost > rate.amount:
            raise StudioError(
                ErrorCode.RATE_LIMITED,
                f"This request needs {cost} {operation.value} slots; the limit is {rate.amount} "
                f"per {rate.seconds} s. Send fewer at once.",
                retryable=False,
                limit=rate.amount,
            )
        verdict = await self._limiter.hit(f"{operation.value}/{caller}", rate.amount, rate.seconds, cost)
        if not verdict.allowed:
            retry_after = max(verdict.retry_after, 0.0)
            raise StudioError(
                ErrorCode.RATE_LIMITED,
                f"Too many {operation.value} requests: the limit is {rate.amount} per {rate.seconds} s. "
                f"Retry in {int(retry_after + 0.999)} s.",
                retry_after=retry_after,
            )


class SubscriptionSlots:
    """Live subscriptions per caller in this process, across all their sockets.

    Past the limit a new subscription is RATE_LIMITED without `retryAfter` and not retryable:
    waiting does not free a slot, completing one of the caller's subscriptions does.
    """

    def __init__(self, per_caller: int) -> None:
        self.per_caller = per_caller
        self._live: dict[str, int] = {}

    def acquire(self, caller: str) -> None:
        live = self._live.get(caller, 0)
        if live >= self.per_caller:
            raise StudioError(
                ErrorCode.RATE_LIMITED,
                f"You have {live} live subscriptions, the most allowed; complete one before starting another.",
                retryable=False,
                limit=self.per_caller,
            )
        self._live[caller] = live + 1

    def release(self, caller: str) -> None:
        live = self._live.get(caller, 0) - 1
        if live > 0:
            self._live[caller] = live
        else:
            self._live.pop(caller, None)

    def live(self, caller: str) -> int:
        return self._live.get(caller, 0)
