"""The cost of a GraphQL operation, and a validation rule refusing operations that cost too much.

Every field costs 1 (`__typename` is free). A field taking `first`/`last` (a connection or a paged
list) multiplies the cost of what it selects by the page it asks for: the literal value, the
largest page (`variable_page`) when the value comes from a variable (validation cannot see
variables, so a variable counts as the worst case), or `default_page` when absent. So
`assets(first: 100) { edges { node { owner { id } } } }` costs 1 + 100 * 4 = 401.

Lists without paging arguments (`models`, `Job.assets`, usage rows) are small and count once.
Fragments are costed once each (memoised), so fragment-heavy documents cost linear time to check.

The rule is plain graphql-core: use it in `validate(...)` (the HTTP endpoint does) or give it to a
strawberry schema with `AddValidationRules([query_cost_rule(...)])`.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
    get_named_type,
)
from graphql.language.visitor import SKIP
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef

from domain.errors import ErrorCode

PAGE_ARGUMENTS = ("first", "last")


class _Coster:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        default_page: int,
        variable_page: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.default_page = default_page
        self.variable_page = variable_page
        self._fragment_costs: dict[str, int] = {}
        self._visiting: set[str] = set()

    def operation(self, operation: OperationDefinitionNode) -> int:
        root = self.schema.get_root_type(operation.operation)
        return self.selections(root, operation.selection_set)

    def selections(self, parent: GraphQLNamedType | None, selection_set: SelectionSetNode) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(parent, selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(target, selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value)
        return total

    def fragment(self, name: str) -> int:
        cost = self._fragment_costs.get(name)
        if cost is not None:
            return cost
        definition = self.fragments.get(name)
        if definition is None or name in self._visiting:  # unknown or cyclic: other rules report it
            return 0
        self._visiting.add(name)
        try:
            target = self.schema.get_type(definition.type_condition.name.value)
            cost = self.selections(target, definition.selection_set)
        finally:
            self._visiting.discard(name)
        self._fragment_costs[name] = cost
        return cost

    def field(self, parent: GraphQLNamedType | None, node: FieldNode) -> int:
        name = node.name.value
        if name == "__typename":
            return 0
        definition = self._definition(parent, name)
        if node.selection_set is None:
            return 1
        child = get_named_type(definition.type) if definition is not None else None
        return 1 + self.page(node, definition) * self.selections(child, node.selection_set)

    def _definition(self, parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
        if name == "__schema":
            return SchemaMetaFieldDef
        if name == "__type":
            return TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return parent.fields.get(name)
        return None

    def page(self, node: FieldNode, definition: GraphQLField | None) -> int:
        if definition is None or not any(arg in definition.args for arg in PAGE_ARGUMENTS):
            return 1
        sizes: list[int] = []
        given = {argument.name.value: argument.value for argument in node.arguments or ()}
        for name in PAGE_ARGUMENTS:
            if name not in definition.args:
                continue
            value = given.get(name)
            if isinstance(value, IntValueNode):
                sizes.append(max(int(value.value), 0))
            elif isinstance(value, VariableNode):
                sizes.append(self.variable_page)
            elif value is None or isinstance(value, NullValueNode):
                default = definition.args[name].default_value if value is None else None
                if isinstance(default, int) and not isinstance(default, bool):
                    sizes.append(max(default, 0))
        return max(sizes) if sizes else self.default_page


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    *,
    default_page: int = 20,
    variable_page: int = 100,
) -> int:
    """The cost of one operation of a document (see the module docstring)."""
    return _Coster(schema, fragments, default_page, variable_page).operation(operation)


def query_cost_rule(
    max_cost: int, *, default_page: int = 20, variable_page: int = 100
) -> type[ValidationRule]:
    """A validation rule: QUERY_TOO_COMPLEX for each operation costing more than `max_cost`."""

    class QueryCostRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> Any:
            context = self.context
            fragments = {
                definition.name.value: definition
                for definition in context.document.definitions
                if isinstance(definition, FragmentDefinitionNode)
            }
            cost = operation_cost(
                context.schema,
                node,
                fragments,
                default_page=default_page,
                variable_page=variable_page,
            )
            if cost > max_cost:
                name = f"'{node.name.value}'" if node.name else "The operation"
                self.report_error(
                    GraphQLError(
                        f"{name} has a query cost of {cost}, over the limit of {max_cost}: each field "
                        "costs 1 and first/last multiply what they select. Ask for smaller pages "
                        "or fewer fields.",
                        node,
                        extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value},
                    )
                )
            return SKIP

    return QueryCostRule
