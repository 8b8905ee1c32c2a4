"""Resilience for calls to Vertex AI: a per-call timeout, retries with exponential backoff and jitter
on transient failures only, and a circuit breaker per model that fails fast while the model is down.

Nothing here imports google-genai at module level: the SDK's exception types are looked up lazily,
the first time a failure has to be classified.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from prometheus_client import Counter, Histogram

from domain.errors import ErrorCode, StudioError

log = logging.getLogger("genmedia.vertex")
UPSTREAM_CALLS = Counter(
    "genmedia_upstream_calls_total",
    "Calls to Vertex AI by model, method and outcome",
    ["model", "method", "outcome"],
)
UPSTREAM_SECONDS = Histogram(
    "genmedia_upstream_call_seconds",
    "Latency of calls to Vertex AI",
    ["model", "method"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)

T = TypeVar("T")

# HTTP statuses worth another try: rate limited, or the service (or its front end) failing.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How one upstream call is retried: at most `attempts` tries, all within `total_seconds`, waiting
    min(initial x multiplier^n + uniform(0, jitter), max) between them. Only 429/500/502/503/504,
    connection failures and timeouts are retried."""

    attempts: int = 5
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 20.0
    multiplier: float = 2.0
    jitter_seconds: float = 1.0
    total_seconds: float = 180.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if min(self.initial_backoff_seconds, self.max_backoff_seconds, self.jitter_seconds) < 0:
            raise ValueError("backoff times must be >= 0")
        if self.total_seconds <= 0:
            raise ValueError("total_seconds must be > 0")


@dataclass(frozen=True)
class BreakerSettings:
    """A model's breaker opens after `failure_threshold` upstream failures in a row, fails fast for
    `recovery_seconds`, then lets one probe call through (half-open): success closes it again."""

    failure_threshold: int = 5
    recovery_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if self.recovery_seconds < 0:
            raise ValueError("recovery_seconds must be >= 0")


BreakerState = Literal["closed", "open", "half_open"]


class BreakerOpen(Exception):
    """The breaker refused the call; `retry_after` is how long until it lets a probe through."""

    def __init__(self, model: str, retry_after: float) -> None:
        super().__init__(f"circuit open for {model}")
        self.model = model
        self.retry_after = retry_after


class CircuitBreaker:
    """A consecutive-failure circuit breaker for one model.

    closed: calls pass; `failure_threshold` failures in a row open it.
    open: calls fail fast (BreakerOpen) until `recovery_seconds` have passed, then it half-opens.
    half_open: exactly one probe call passes; its success closes the breaker, its failure re-opens it.
    Answers that show the service is up (a refusal, a 400) count as successes.
    """

    def __init__(
        self, model: str, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.model = model
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()  # generators may be shared by workers on several loops
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state == "open" and self._remaining() <= 0:
                return "half_open"
            return self._state

    def _remaining(self) -> float:
        return self._opened_at + self._settings.recovery_seconds - self._clock()

    def acquire(self) -> None:
        """Let a call through, or raise BreakerOpen."""
        with self._lock:
            if self._state == "closed":
                return
            if self._state == "open":
                remaining = self._remaining()
                if remaining > 0:
                    raise BreakerOpen(self.model, remaining)
                self._state = "half_open"
            if self._probing:  # half-open: one probe at a time
                raise BreakerOpen(self.model, self._settings.recovery_seconds)
            self._probing = True

    def success(self) -> None:
        with self._lock:
            if self._state != "closed":
                log.info("circuit closed", extra={"model": self.model})
            self._state, self._failures, self._probing = "closed", 0, False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            if self._state == "half_open" or self._failures >= self._settings.failure_threshold:
                if self._state != "open":
                    log.warning(
                        "circuit opened after %d consecutive failures",
                        self._failures,
                        extra={"model": self.model},
                    )
                self._state, self._opened_at = "open", self._clock()

    def release(self) -> None:
        """The call ended without telling anything (cancelled): free the probe slot."""
        with self._lock:
            self._probing = False


class TransientFailure(Exception):
    """An upstream failure worth retrying (429/5xx, connection failure, timeout). `ambiguous` when
    the request may have been carried out anyway (no answer arrived)."""

    def __init__(self, reason: str, retry_after: float | None = None, *, ambiguous: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class Malformed(Exception):
    """The upstream answered 200 with something unusable (unparseable, no candidates, no bytes)."""


class UpstreamCaller:
    """Runs SDK calls with timeout, retries and per-model breakers, and logs every attempt."""

    def __init__(
        self,
        retry: RetryPolicy,
        breaker: BreakerSettings,
        *,
        service: str = "Vertex AI",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._retry = retry
        self._breaker_settings = breaker
        self._service = service
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def breaker(self, model: str) -> CircuitBreaker:
        with self._lock:
            found = self._breakers.get(model)
            if found is None:
                found = self._breakers[model] = CircuitBreaker(model, self._breaker_settings, self._clock)
            return found

    async def call(
        self,
        model: str,
        method: str,
        fn: Callable[[], Awaitable[T]],
        *,
        timeout: float,
        idempotent: bool = True,
    ) -> T:
        """`await fn()` under the model's breaker, with `timeout` per attempt and retries.

        `fn` makes the SDK call and interprets the answer; it may raise StudioError (refusals,
        bad input: final, and proof the service is up) or Malformed (final, counted as a failure).
        A call that is not `idempotent` (it starts something billable) is not retried after a
        failure that may have reached the service (a timeout, a dropped connection).
        Raises StudioError for every failure.
        """
        from tenacity import (
            AsyncRetrying,
            retry_if_exception,
            stop_after_attempt,
            stop_before_delay,
            wait_exponential_jitter,
        )

        def worth_retrying(exc: BaseException) -> bool:
            return isinstance(exc, TransientFailure) and (idempotent or not exc.ambiguous)

        policy = self._retry
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.total_seconds),
            wait=wait_exponential_jitter(
                initial=policy.initial_backoff_seconds,
                max=policy.max_backoff_seconds,
                exp_base=policy.multiplier,
                jitter=policy.jitter_seconds,
            ),
            retry=retry_if_exception(worth_retrying),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    number = attempt.retry_state.attempt_number
                    return await self._attempt(model, method, fn, timeout, number)
        except TransientFailure as failure:
            raise StudioError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"{self._service} model {model} is unavailable right now ({failure.reason}); "
                "please try again later.",
                retryable=True,
                retry_after=failure.retry_after,
            ) from failure
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _attempt(
        self, model: str, method: str, fn: Callable[[], Awaitable[T]], timeout: float, number: int
    ) -> T:
        breaker = self.breaker(model)
        try:
            breaker.acquire()
        except BreakerOpen as refused:
            log.warning(
                "vertex %s refused: circuit open (attempt %d)", method, number, extra={"model": model}
            )
            raise StudioError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"{self._service} model {model} is failing; calls to it are paused for "
                f"{round(max(refused.retry_after, 0.0), 1):g} s.",
                retryable=True,
                retry_after=max(refused.retry_after, 0.0),
            ) from refused

        started = self._clock()
        outcome = "cancelled"
        try:
            try:
                async with asyncio.timeout(timeout):
                    result = await fn()
            except BaseException as exc:
                verdict = self._classify(model, exc, timeout)
                outcome = verdict.outcome
                if verdict.error is None:  # cancellation, or a bug of ours: not the service's fault
                    raise
                if verdict.upstream_failed:
                    breaker.failure()
                else:
                    breaker.success()  # the service answered: a refusal or a client error
                if verdict.error is exc:
                    raise
                raise verdict.error from exc
            outcome = "ok"
            breaker.success()
            return result
        finally:
            if outcome == "cancelled" or outcome.startswith("error "):
                breaker.release()
            seconds = round(self._clock() - started, 3)
            UPSTREAM_CALLS.labels(model, method, "_".join(outcome.split(" ")[:2])).inc()
            UPSTREAM_SECONDS.labels(model, method).observe(seconds)
            level = logging.INFO if outcome in ("ok", "blocked") else logging.WARNING
            log.log(
                level,
                "vertex %s %s (attempt %d)",
                method,
                outcome,
                number,
                extra={"model": model, "seconds": seconds},
            )

    def _classify(self, model: str, exc: BaseException, timeout: float) -> _Verdict:
        """What an attempt's exception means: the log outcome, what to raise, whether it counts
        against the breaker."""
        if isinstance(exc, asyncio.CancelledError):
            return _Verdict("cancelled", None, upstream_failed=False)
        if isinstance(exc, StudioError):
            outcome = "blocked" if exc.code is ErrorCode.CONTENT_BLOCKED else f"refused {exc.code.value}"
            return _Verdict(outcome, exc, upstream_failed=False)
        if isinstance(exc, Malformed):
            return _Verdict("malformed", self._unusable(model, str(exc)), upstream_failed=True)
        if isinstance(exc, TimeoutError):
            failure = TransientFailure(f"no answer within {timeout:g} s", ambiguous=True)
            return _Verdict("timeout", failure, upstream_failed=True)
        sdk = _sdk_errors()
        if sdk is not None and isinstance(exc, sdk.APIError):
            return self._classify_api_error(model, exc)
        if isinstance(exc, json.JSONDecodeError) or _is_validation_error(exc):
            return _Verdict("malformed", self._unusable(model, "the answer could not be read"), True)
        if isinstance(exc, _transport_errors()):
            reason = f"connection failed: {type(exc).__name__}"
            # Failing to connect proves the request never left; any later failure may not.
            ambiguous = "Connect" not in type(exc).__name__
            failure = TransientFailure(reason, ambiguous=ambiguous)
            return _Verdict("connection failed", failure, upstream_failed=True)
        if _is_auth_error(exc):
            error = StudioError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"Could not authenticate to {self._service}: {exc}",
                retryable=False,
            )
            return _Verdict("auth failed", error, upstream_failed=False)
        return _Verdict(f"error {type(exc).__name__}", None, upstream_failed=False)

    def _unusable(self, model: str, detail: str) -> StudioError:
        return StudioError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"{self._service} model {model} sent an unusable answer: {detail}",
            retryable=True,
        )

    def _classify_api_error(self, model: str, exc: Any) -> _Verdict:
        code = int(getattr(exc, "code", 0) or 0)
        status = getattr(exc, "status", None) or ""
        message = getattr(exc, "message", None) or str(exc)
        outcome = f"http {code} {status}".rstrip()
        if code in TRANSIENT_STATUSES:
            failure = TransientFailure(f"HTTP {code} {status}".rstrip(), _retry_after(exc))
            return _Verdict(outcome, failure, upstream_failed=True)
        if code in (400, 413, 422):
            error = StudioError(
                ErrorCode.BAD_USER_INPUT, f"The model rejected the request: {message}", retryable=False
            )
            return _Verdict(outcome, error, upstream_failed=False)
        if code >= 500:
            # A server failure outside the retried set: the breaker counts it, the job may retry it.
            error = StudioError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"{self._service} model {model} failed ({code} {status}): {message}",
                retryable=True,
            )
            return _Verdict(outcome, error, upstream_failed=True)
        if code in (401, 403):
            text = f"The studio may not call {self._service} model {model} ({code} {status}): {message}"
        elif code == 404:
            text = f"{self._service} model {model} was not found ({code} {status}): {message}"
        else:
            text = f"{self._service} model {model} refused the call ({code} {status}): {message}"
        # Configuration problems: retrying the job will not help until an operator fixes them.
        error = StudioError(ErrorCode.UPSTREAM_UNAVAILABLE, text, retryable=False)
        return _Verdict(outcome, error, upstream_failed=False)


@dataclass(frozen=True)
class _Verdict:
    outcome: str
    error: BaseException | None
    upstream_failed: bool


def _sdk_errors() -> Any:
    try:
        from google.genai import errors
    except ImportError:  # pragma: no cover - the SDK is a dependency of this adapter
        return None
    return errors


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level failures of whichever HTTP stack the SDK uses, and of token refreshes."""
    found: list[type[BaseException]] = [ConnectionError]
    try:
        import httpx

        found.append(httpx.TransportError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import httpx2

        found.append(httpx2.TransportError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from google.auth import exceptions as auth_exceptions

        found.append(auth_exceptions.TransportError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


def _is_auth_error(exc: BaseException) -> bool:
    try:
        from google.auth import exceptions as auth_exceptions
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, auth_exceptions.GoogleAuthError)


def _is_validation_error(exc: BaseException) -> bool:
    try:
        import pydantic
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, pydantic.ValidationError)


def _retry_after(exc: Any) -> float | None:
    """The Retry-After seconds an error response carried, if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
