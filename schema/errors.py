"""One formatter for every error a client sees: a code, retryable, requestId; never internals."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension

from domain.errors import ErrorCode, StudioError
from domain.ports import PreconditionFailed, TransactionConflict

log = logging.getLogger("genmedia.api")

_COMPLEXITY_HINTS = ("exceeds maximum operation depth", "aliases found", "more than", "query cost")
_VARIABLE = re.compile(r"^Variable '\$(\w+)'(?: has invalid value(?: at )?((?:\.\w+|\[\d+\])*))?")


def _variable_path(message: str) -> str | None:
    """`input.count` for "Variable '$input' has invalid value at .count: ..." (list indices dropped)."""
    match = _VARIABLE.match(message)
    if match is None:
        return None
    return match.group(1) + re.sub(r"\[\d+\]", "", match.group(2) or "")


def classify(error: GraphQLError, request_id: str) -> GraphQLError:
    """Turn any error into one with the public extensions; unexpected ones are masked and logged."""
    original = error.original_error
    variable = _variable_path(error.message)
    if isinstance(original, GraphQLError) and original is not error:
        if variable is None or original.original_error is not None:
            return classify(original, request_id)
        original = None  # a variable's coercion detail: this message says where it went wrong
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
        if variable is not None:
            extra["field"] = variable
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


class CachedParser(ParserCache):
    """ParserCache that leaves syntax errors to strawberry's own parse step.

    Raised from this hook they would escape the operation (no code on HTTP, a silent `complete` on
    WebSocket); strawberry's parse step turns them into an ordinary error result that gets formatted.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield


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
