"""What a client sees of a failure: a code, retryable, the request id — never internals."""

from __future__ import annotations

from graphql import GraphQLError

from domain.errors import ErrorCode, StudioError, bad_input
from domain.ports import PreconditionFailed
from schema.errors import classify


def wrapped(original: Exception) -> GraphQLError:
    return GraphQLError(str(original), original_error=original, path=["asset"])


def test_an_unexpected_exception_becomes_internal_without_its_message() -> None:
    error = classify(wrapped(RuntimeError("database password is hunter2")), "req-1")
    assert error.extensions == {"code": "INTERNAL", "retryable": True, "requestId": "req-1"}
    assert "hunter2" not in error.message and "req-1" in error.message


def test_a_studio_error_keeps_its_code_message_and_field() -> None:
    error = classify(wrapped(bad_input("input.count", "count must be between 1 and 4")), "req-2")
    assert error.message == "count must be between 1 and 4"
    assert error.extensions == {
        "code": "BAD_USER_INPUT",
        "retryable": False,
        "requestId": "req-2",
        "field": "input.count",
    }
    assert error.path == ["asset"]


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    original = StudioError(ErrorCode.RATE_LIMITED, "slow down", retry_after=1.2)
    assert classify(wrapped(original), "r").extensions["retryAfter"] == 2  # type: ignore[index]


def test_a_lost_race_is_a_retryable_conflict() -> None:
    error = classify(wrapped(PreconditionFailed("jobs/1")), "r")
    assert error.extensions["code"] == "CONFLICT" and error.extensions["retryable"] is True  # type: ignore[index]
    assert "jobs/1" not in error.message


def test_validation_errors_are_bad_user_input_and_limits_are_query_too_complex() -> None:
    assert (
        classify(GraphQLError("Cannot query field 'x' on type 'Query'."), "r").extensions["code"]
        == "BAD_USER_INPUT"
    )  # type: ignore[index]
    deep = GraphQLError("'anonymous' exceeds maximum operation depth of 12")
    assert classify(deep, "r").extensions["code"] == "QUERY_TOO_COMPLEX"  # type: ignore[index]
