"""The rate-limit policy, the `limits` adapter on memory, and the query cost computation."""

from __future__ import annotations

import asyncio
import time

import limits
import pytest
from graphql import FragmentDefinitionNode, GraphQLError, OperationDefinitionNode, parse, validate
from prometheus_client import REGISTRY

from backends.ratelimit.limits_adapter import LimitsRateLimiter, storage_uri
from config import SettingsError, load_settings
from domain.access import Actor
from domain.errors import ErrorCode, StudioError
from domain.limits import (
    OperationClass,
    Rate,
    RateLimits,
    RatePolicy,
    SubscriptionSlots,
    caller_key,
    classify_operation,
    parse_rate,
)
from domain.users import Role, User, UserStatus
from endpoints.admission import operation_class, root_fields
from endpoints.query_cost import operation_cost, query_cost_rule
from schema.errors import classify
from schema.root import schema

pytestmark = pytest.mark.timeout(20)
GRAPHQL = schema._schema

# ------------------------------------------------------------------ rates


@pytest.mark.parametrize(
    "text", ["30/minute", "600/minute", "1/second", "10 per 2 hours", "5 per day", "100/month", "7/2 minutes"]
)
def test_rates_read_like_the_limits_library_reads_them(text: str) -> None:
    ours = parse_rate(text)
    theirs = limits.parse(text)
    assert (ours.amount, ours.seconds) == (theirs.amount, theirs.get_expiry())


@pytest.mark.parametrize("text", ["", "thirty/minute", "30", "30/fortnight", "0/minute", "30/0 minutes"])
def test_a_bad_rate_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


@pytest.mark.parametrize("name", ["GENMEDIA_RATE_GENERATE", "GENMEDIA_RATE_READ", "GENMEDIA_RATE_SUBSCRIBE"])
def test_a_bad_rate_setting_stops_start_up_with_one_line(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "lots")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.count("\n") == 0 and name in message and "'30/minute'" in message


def test_the_redis_url_becomes_an_async_limits_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    assert storage_uri(None) == "async+memory://"
    monkeypatch.setenv("GENMEDIA_REDIS_URL", "redis://10.0.0.3:6379/2")
    assert storage_uri(load_settings().redis_url) == "async+redis://10.0.0.3:6379/2"
    monkeypatch.setenv("GENMEDIA_REDIS_URL", "memcached://x")
    with pytest.raises(SettingsError, match="GENMEDIA_REDIS_URL"):
        load_settings()


# ------------------------------------------------------------------ policy


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        ("query", ["me", "assets"], (OperationClass.READ, 1)),
        ("mutation", ["cancelJob", "updateAsset"], (OperationClass.READ, 1)),
        ("mutation", ["generateImage"], (OperationClass.GENERATE, 1)),
        ("mutation", ["upscaleImage", "updateAsset"], (OperationClass.GENERATE, 1)),
        ("mutation", ["generateText", "generateVideo", "cancelJob"], (OperationClass.GENERATE, 2)),
        ("subscription", ["myJobs"], (OperationClass.SUBSCRIBE, 1)),
        ("mutation", ["createUpload", "createUpload"], (OperationClass.GENERATE, 2)),
        ("mutation", ["completeUpload"], (OperationClass.READ, 1)),
    ],
)
def test_operations_fall_into_classes(
    kind: str, fields: list[str], expected: tuple[OperationClass, int]
) -> None:
    assert classify_operation(kind, fields) == expected


def test_root_fields_follow_fragments_and_count_response_keys() -> None:
    document = parse(
        """
        mutation {
          a: generateText(input: {prompt: "a"}) { id }
          a: generateText(input: {prompt: "a"}) { status }
          ...More
          ... on Mutation { cancelJob(id: "x") { id } }
        }
        fragment More on Mutation { b: generateImage(input: {prompt: "b"}) { id } }
        """
    )
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    assert sorted(root_fields(document, operation)) == ["cancelJob", "generateImage", "generateText"]
    assert operation_class(document, operation) == (OperationClass.GENERATE, 2)
    assert operation_class(None, None) == (OperationClass.READ, 1)


def test_callers_are_users_or_addresses() -> None:
    user = User("u1", "a@example.com", Role.USER, UserStatus.ACTIVE, None, "2026-01-01T00:00:00.000000Z")
    actor = Actor(user=user)
    assert caller_key(actor, "10.0.0.1") == "user:u1"
    assert caller_key(None, "10.0.0.1") == "ip:10.0.0.1"
    assert caller_key(None, None) == "ip:unknown"


POLICY = RatePolicy(generate=Rate(2, 60), read=Rate(5, 60), subscribe=Rate(1, 60))


async def test_a_caller_past_the_rate_is_rate_limited_until_a_slot_frees() -> None:
    rate_limits = RateLimits(LimitsRateLimiter(), POLICY)
    for _ in range(2):
        await rate_limits.check(OperationClass.GENERATE, "user:a")
    with pytest.raises(StudioError) as caught:
        await rate_limits.check(OperationClass.GENERATE, "user:a")
    error = caught.value
    assert error.code is ErrorCode.RATE_LIMITED and error.retryable
    assert error.retry_after is not None and 59 < error.retry_after <= 60
    formatted = classify(GraphQLError(error.message, original_error=error), "rid").extensions or {}
    assert formatted["code"] == "RATE_LIMITED" and formatted["retryAfter"] == 60
    # Other classes and other callers have budgets of their own.
    await rate_limits.check(OperationClass.READ, "user:a")
    await rate_limits.check(OperationClass.GENERATE, "user:b")


async def test_a_refused_hit_takes_nothing_and_a_cost_over_the_rate_is_never_retryable() -> None:
    rate_limits = RateLimits(LimitsRateLimiter(), POLICY)
    await rate_limits.check(OperationClass.GENERATE, "user:a")
    with pytest.raises(StudioError):
        await rate_limits.check(OperationClass.GENERATE, "user:a", cost=2)
    await rate_limits.check(OperationClass.GENERATE, "user:a")  # the refused request took no slot
    with pytest.raises(StudioError) as caught:
        await rate_limits.check(OperationClass.GENERATE, "user:c", cost=3)
    assert caught.value.code is ErrorCode.RATE_LIMITED
    assert not caught.value.retryable and caught.value.retry_after is None


async def test_the_window_moves() -> None:
    limiter = LimitsRateLimiter()
    assert (await limiter.hit("k", 1, 1)).allowed
    refused = await limiter.hit("k", 1, 1)
    assert not refused.allowed and 0 < refused.retry_after <= 1
    await asyncio.sleep(refused.retry_after + 0.05)
    assert (await limiter.hit("k", 1, 1)).allowed


def _fail_open_count() -> float:
    return REGISTRY.get_sample_value("genmedia_rate_limit_fail_open_total") or 0.0


async def test_an_unreachable_storage_fails_open_and_then_stops_trying_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = LimitsRateLimiter("async+redis://127.0.0.1:1/0", retry_seconds=60)
    before = _fail_open_count()
    first = await limiter.hit("k", 1, 60)
    started = time.monotonic()
    rest = [await limiter.hit("k", 1, 60) for _ in range(5)]
    assert first.allowed and all(check.allowed for check in rest)
    assert time.monotonic() - started < 0.05, "no storage call while failing open"
    assert _fail_open_count() - before == 6
    warnings = [r for r in caplog.records if "rate-limit storage unavailable" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"


def test_live_subscriptions_are_counted_per_caller() -> None:
    slots = SubscriptionSlots(2)
    slots.acquire("u1")
    slots.acquire("u1")
    with pytest.raises(StudioError) as caught:
        slots.acquire("u1")
    assert caught.value.code is ErrorCode.RATE_LIMITED and caught.value.retry_after is None
    assert not caught.value.retryable
    slots.acquire("u2")
    slots.release("u1")
    slots.acquire("u1")
    for _ in range(3):
        slots.release("u1")
    assert slots.live("u1") == 0


# ------------------------------------------------------------------ query cost


def cost(query: str, **options: int) -> int:
    document = parse(query)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return operation_cost(GRAPHQL, operation, fragments, **options)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ me { id } }", 2),
        ("{ me { id __typename } }", 2),
        ("{ models { id kind } }", 3),  # lists without paging count once
        # the brief's example: 1 + 100 * (edges + node + owner + id)
        ("{ assets(first: 100) { edges { node { owner { id } } } } }", 401),
        ("{ assets(last: 7) { edges { node { id } } } }", 1 + 7 * 3),
        ("{ assets { totalCount edges { node { id } } } }", 1 + 20 * 4),  # no first/last: a page of 20
        ("{ assets(first: null) { totalCount } }", 1 + 20),
        ("{ jobs { totalCount } }", 1 + 20 * 1),  # the argument's own default (20)
        ("{ jobs(first: 3) { edges { node { assets { id owner { id } } } } } }", 1 + 3 * (1 + 1 + 1 + 3)),
        ("query($n: Int) { assets(first: $n) { totalCount } }", 1 + 100),  # a variable: the largest page
        (
            "{ a: assets(first: 10) { edges { node { id job { id } } } } b: jobs(first: 2) { totalCount } }",
            (1 + 10 * (1 + 1 + 1 + 2)) + (1 + 2),
        ),
        (
            "{ assets(first: 10) { ...Page } } fragment Page on AssetConnection { edges { node { ...A } } }"
            " fragment A on Asset { id owner { id } }",
            1 + 10 * (1 + 1 + 1 + 2),
        ),
        (
            '{ node(id: "x") { id ... on Asset { kind owner { id } } ... on Job { status } } }',
            1 + 1 + 1 + 2 + 1,
        ),
        ('mutation { cancelJob(id: "x") { id assets { id } } }', 1 + 1 + 2),
        ("subscription { myJobs { job { id } } }", 3),
    ],
)
def test_query_cost(query: str, expected: int) -> None:
    assert cost(query) == expected


def test_page_sizes_are_settings() -> None:
    query = "query($n: Int) { a: assets { totalCount } b: assets(first: $n) { totalCount } }"
    assert cost(query, default_page=5, variable_page=50) == (1 + 5) + (1 + 50)


def test_fragment_bombs_cost_linear_time_to_check() -> None:
    fragments = ["fragment F0 on Asset { id }"]
    for level in range(1, 40):
        fragments.append(f"fragment F{level} on Asset {{ ...F{level - 1} ...F{level - 1} }}")
    started = time.monotonic()
    assert cost('{ asset(id: "x") { ...F39 } } ' + " ".join(fragments)) == 1 + 2**39
    assert time.monotonic() - started < 0.5


def test_the_rule_reports_query_too_complex_with_the_cost() -> None:
    rule = query_cost_rule(50)
    (error,) = validate(GRAPHQL, parse("{ assets(first: 100) { edges { node { id } } } }"), [rule])
    assert "301" in error.message and "50" in error.message
    formatted = classify(error, "rid").extensions or {}
    assert formatted["code"] == "QUERY_TOO_COMPLEX" and formatted["retryable"] is False
    assert validate(GRAPHQL, parse("{ assets(first: 5) { edges { node { id } } } }"), [rule]) == []


def test_cyclic_fragments_do_not_hang_the_rule() -> None:
    document = parse("{ me { ...A } } fragment A on User { id ...B } fragment B on User { ...A }")
    errors = validate(GRAPHQL, document, [query_cost_rule(50)])
    assert errors == []  # NoFragmentCycles (a specified rule) reports the cycle
