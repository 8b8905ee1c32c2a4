"""One formatter for every error a client sees: a code, retryable, requestId; never internals."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from domain.errors import ErrorCode, StudioError
from domain.ports import PreconditionFailed, TransactionConflict

log = logging.getLogger("genmedia.api")

_COMPLEXITY_HINTS = ("exceeds maximum operation depth", "aliases found", "more than", "query cost")


def classify(error: GraphQLError, request_id: str) -> GraphQLError:
    """Turn any error into one with the public extensions; unexpected ones are masked and logged."""
    original = error.original_error
    if isinstance(original, GraphQLError) and original is not error:
        return classify(original, request_id)
    if isinstance(original, StudioError):
        code, message, retryable = original.code, original.message, original.retryable
        extra: dict[str, Any] = {key: value for key, value in original.details.items() if value is not None}
        if original.retry_after is not None:
            extra["retryAfter"] = int(original.retry_after + 0.999)
    elif isinstance(original, PreconditionFailed | TransactionConflict):
        code, message, retryable, extra = (
            ErrorCode.CONFLICT,
            "The object changed while this request ran; try again.",
            True,
            {},
        )
    elif original is None:
        # Parse, validation and variable-coercion errors: the caller's document or variables.
        text = error.message
        if any(hint in text for hint in _COMPLEXITY_HINTS):
            code = ErrorCode.QUERY_TOO_COMPLEX
        else:
            code = ErrorCode.BAD_USER_INPUT
        message, retryable, extra = text, False, {}
        if error.extensions and "code" in error.extensions:
            try:
                code = ErrorCode(error.extensions["code"])
            except ValueError:
                pass
    else:
        log.error(
            "unexpected error",
            exc_info=(type(original), original, original.__traceback__),
            extra={"request_id": request_id},
        )
        code, message, retryable, extra = (
            ErrorCode.INTERNAL,
            f"Internal error. Quote request id {request_id} when reporting it.",
            True,
            {},
        )
    extensions = {"code": code.value, "retryable": retryable, "requestId": request_id, **extra}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorFormatter(SchemaExtension):
    """Applies `classify` to every result: HTTP responses and each WebSocket stream result."""

    def _request_id(self) -> str:
        context = self.execution_context.context
        return getattr(context, "request_id", "") or ""

    def _format(self, result: Any) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            request_id = self._request_id()
            result.errors = [classify(error, request_id) for error in errors]

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        if not self._streamed:
            result = self.execution_context.result
            self._format(getattr(result, "initial_result", result))

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._streamed = True
        self._format(result)
        yield None
