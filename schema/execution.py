"""Execution of subscription events: no memory growth per event, one execution per event and caller.

graphql-core 3.3.2 copies the subscription's executor for every event but shares its sub-field
cache with every copy, so each event adds entries that are never freed (about 25 objects per
subscriber per event). And a thousand sockets following one job would otherwise each execute
the same selection on the same event.
"""

from __future__ import annotations

import json
from typing import Any

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

_RESULTS = "_studio_results"


class StudioExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Per-event executors get a fresh sub-field cache and share results through the event object."""

    _per_event = False

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        executor._per_event = True  # type: ignore[attr-defined]
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        if not self._per_event or not hasattr(self.root_value, "__dict__"):
            return super().execute_operation(serially)
        # The cache lives on the event object, which subscriptions share per job version: it is
        # freed with the event. Results depend on the caller, the operation and its variables.
        principal = getattr(self.context_value, "principal", None)
        key = (
            id(self.operation),
            json.dumps(self.variable_values, sort_keys=True, default=str),
            getattr(principal, "id", None),
        )
        results: dict[tuple[Any, ...], tuple[Any, ExecutionResult]] = self.root_value.__dict__.setdefault(
            _RESULTS, {}
        )
        cached = results.get(key)
        if cached is not None and cached[0] is self.operation:
            return cached[1]
        result = super().execute_operation(serially)
        # Only finished, error-free results are shared: errors are stamped per request later.
        if isinstance(result, ExecutionResult) and not result.errors:
            results[key] = (self.operation, result)
        return result
