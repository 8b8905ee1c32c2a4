"""Admission of one GraphQL operation, shared by HTTP and WebSocket: its class, its caller, the rate limit."""

from __future__ import annotations

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_operation_ast,
)
from prometheus_client import Counter

from domain.access import Actor, require_scopes
from domain.errors import StudioError
from domain.limits import OperationClass, RateLimits, caller_key, classify_operation, key_caller

RATE_LIMITED = Counter(
    "genmedia_rate_limited_total", "Operations refused by a rate limit", ["operation_class"]
)


def root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> list[str]:
    """The field names the operation runs at its root, one per response key (fragments followed)."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    by_key: dict[str, str] = {}

    def walk(selection_set: SelectionSetNode, seen: frozenset[str]) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                by_key.setdefault(key, selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    walk(fragments[name].selection_set, seen | {name})

    walk(operation.selection_set, frozenset())
    return list(by_key.values())


def operation_class(
    document: DocumentNode | None, operation: OperationDefinitionNode | None
) -> tuple[OperationClass, int]:
    """The class and slot count of an operation; a document that cannot run counts as one read."""
    if document is None or operation is None:
        return OperationClass.READ, 1
    return classify_operation(operation.operation.value, root_fields(document, operation))


async def admit(
    limits: RateLimits | None,
    operation: OperationClass,
    cost: int,
    actor: Actor | None,
    client_address: str | None,
) -> StudioError | None:
    """None when the caller may run the operation now; the RATE_LIMITED error otherwise."""
    if limits is None:
        return None
    try:
        key = key_caller(actor)
        if key is not None and limits.key_policy is not None:  # the key first: its hits stay its own
            await limits.check(operation, key, cost, policy=limits.key_policy)
        await limits.check(operation, caller_key(actor, client_address), cost)
    except StudioError as error:
        RATE_LIMITED.labels(operation.value).inc()
        return error
    return None


def scope_refusal(
    actor: Actor | None, document: DocumentNode, operation_name: str | None
) -> StudioError | None:
    """FORBIDDEN when an API key lacks a scope the operation's root fields need (domain.access rules)."""
    if actor is None or actor.scopes is None:
        return None
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    try:
        require_scopes(actor, operation.operation.value, root_fields(document, operation))
    except StudioError as error:
        return error
    return None
