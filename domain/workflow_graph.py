"""The rules of a workflow graph: nodes are generation inputs, edges feed one node's asset into another.

A draft is checked as a whole before anything is stored; every refusal is BAD_USER_INPUT naming the
path of the offending node or edge (`input.nodes[2].input.prompt`, `input.edges[1].to`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.catalog import Catalog
from domain.errors import ErrorCode, StudioError, bad_input
from domain.jobs import JobKind
from domain.requests import InputLimits, check_request

MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 2000
MAX_NODE_ID_CHARS = 64
NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
REFERENCES = "referenceAssetIds"

# Which input field of a node of each kind an upstream asset may fill.
FEEDABLE: dict[JobKind, tuple[str, ...]] = {
    JobKind.IMAGE: (REFERENCES,),
    JobKind.VIDEO: ("firstFrameAssetId", "lastFrameAssetId", REFERENCES),
    JobKind.TEXT: (),
    JobKind.UPSCALE: ("assetId",),
}
ALL_FEEDS = ("firstFrameAssetId", "lastFrameAssetId", REFERENCES, "assetId")
# Only images can feed another step (every asset input of a generation must be an image).
IMAGE_MAKERS = frozenset({JobKind.IMAGE, JobKind.UPSCALE})


@dataclass(frozen=True)
class WorkflowGraph:
    """A checked draft: name, description, nodes ({id, kind, input}) and edges ({from, to, as})."""

    name: str
    description: str | None
    nodes: list[dict[str, Any]]
    edges: list[dict[str, str]]


def check_name(value: Any, field: str) -> str:
    """A workflow name: 1 to MAX_NAME_CHARS characters once trimmed."""
    if not isinstance(value, str) or not value.strip():
        raise bad_input(field, "a workflow needs a name")
    if len(value.strip()) > MAX_NAME_CHARS:
        raise bad_input(field, f"name is longer than {MAX_NAME_CHARS} characters")
    return value.strip()


def _name(draft: Mapping[str, Any]) -> tuple[str, str | None]:
    name = check_name(draft.get("name"), "input.name")
    description = draft.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise bad_input("input.description", "description must be a string")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise bad_input(
                "input.description", f"description is longer than {MAX_DESCRIPTION_CHARS} characters"
            )
        description = description.strip() or None
    return name, description


def _nodes(raw: Any, max_nodes: int) -> list[dict[str, Any]]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise bad_input("input.nodes", "a workflow needs at least one node")
    if len(raw) > max_nodes:
        raise bad_input("input.nodes", f"a workflow has at most {max_nodes} nodes, got {len(raw)}")
    nodes: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(raw):
        path = f"input.nodes[{index}]"
        if not isinstance(node, Mapping):
            raise bad_input(path, "a node is an object {id, kind, input}")
        node_id = node.get("id")
        if not isinstance(node_id, str) or not NODE_ID.match(node_id) or len(node_id) > MAX_NODE_ID_CHARS:
            raise bad_input(
                f"{path}.id",
                f"a node id is 1 to {MAX_NODE_ID_CHARS} letters, digits, '_', '.' or '-', starting with a letter or digit",
            )
        if node_id in seen:
            raise bad_input(
                f"{path}.id", f"node id {node_id!r} is already used by input.nodes[{seen[node_id]}]"
            )
        seen[node_id] = index
        try:
            kind = JobKind(str(node.get("kind")))
        except ValueError:
            raise bad_input(f"{path}.kind", "kind must be IMAGE, VIDEO, TEXT or UPSCALE") from None
        values = node.get("input")
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise bad_input(f"{path}.input", "a node's input is a JSON object")
        clean = {str(key): value for key, value in values.items() if value is not None}
        nodes.append({"id": node_id, "kind": kind.value, "input": clean})
    return nodes


def _edges(raw: Any, nodes: list[dict[str, Any]]) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise bad_input("input.edges", "edges are a list of {from, to, as}")
    kinds = {node["id"]: JobKind(node["kind"]) for node in nodes}
    edges: list[dict[str, str]] = []
    fed: dict[tuple[str, str], int] = {}
    for index, edge in enumerate(raw):
        path = f"input.edges[{index}]"
        if not isinstance(edge, Mapping):
            raise bad_input(path, "an edge is an object {from, to, as}")
        source, target, field = edge.get("from"), edge.get("to"), edge.get("as")
        if not isinstance(source, str) or source not in kinds:
            raise bad_input(f"{path}.from", f"no node has the id {source!r}")
        if not isinstance(target, str) or target not in kinds:
            raise bad_input(f"{path}.to", f"no node has the id {target!r}")
        if not isinstance(field, str) or field not in ALL_FEEDS:
            raise bad_input(f"{path}.as", f"as must be one of {', '.join(ALL_FEEDS)}")
        allowed = FEEDABLE[kinds[target]]
        if field not in allowed:
            shown = ", ".join(allowed) if allowed else "nothing: it takes no asset"
            raise bad_input(f"{path}.as", f"a {kinds[target].value} node can be fed {shown}; not {field}")
        if kinds[source] not in IMAGE_MAKERS:
            raise bad_input(
                f"{path}.from",
                f"node {source!r} makes {kinds[source].value.lower()}, and only images (IMAGE or UPSCALE nodes) feed {field}",
            )
        if source == target:
            raise bad_input(f"{path}.to", f"node {source!r} cannot feed itself: the edges make a cycle")
        key = (target, field)
        if field != REFERENCES and key in fed:
            raise bad_input(
                f"{path}.as", f"{field} of node {target!r} is already fed by input.edges[{fed[key]}]"
            )
        if field == REFERENCES and any(
            e["from"] == source and e["to"] == target and e["as"] == field for e in edges
        ):
            raise bad_input(path, f"this edge repeats an earlier one from {source!r} to {target!r}")
        fed[key] = index
        edges.append({"from": source, "to": target, "as": field})
    return edges


def topological_order(node_ids: Sequence[str], edges: Sequence[Mapping[str, str]]) -> list[str] | None:
    """The node ids with every node after its inputs (stable in the given order); None on a cycle."""
    waiting = {node_id: 0 for node_id in node_ids}
    for edge in edges:
        waiting[edge["to"]] += 1
    order: list[str] = []
    ready = [node_id for node_id in node_ids if waiting[node_id] == 0]
    while ready:
        current = ready.pop(0)
        order.append(current)
        for edge in edges:
            if edge["from"] == current:
                waiting[edge["to"]] -= 1
                if waiting[edge["to"]] == 0:
                    ready.append(edge["to"])
    return order if len(order) == len(node_ids) else None


def _find_cycle(node_ids: Sequence[str], edges: Sequence[Mapping[str, str]]) -> tuple[list[str], int]:
    """One cycle (its node ids, first repeated at the end) and the index of the edge closing it."""
    order = topological_order(node_ids, edges) or []
    left = [node_id for node_id in node_ids if node_id not in order]
    # In what is left every node has an input from what is left: walk inputs backwards until one repeats.
    inputs = {
        node_id: [i for i, e in enumerate(edges) if e["to"] == node_id and e["from"] in left]
        for node_id in left
    }
    path, via = [left[0]], []
    while True:
        index = inputs[path[-1]][0]
        source = edges[index]["from"]
        via.append(index)
        if source in path:
            start = path.index(source)
            cycle = [*path[start:], source]
            cycle.reverse()
            return cycle, via[start]
        path.append(source)


def _check_inputs(
    nodes: list[dict[str, Any]], edges: list[dict[str, str]], catalog: Catalog, limits: InputLimits
) -> None:
    """Each node's input by the rules of its generate mutation, with the fed fields standing in."""
    for index, node in enumerate(nodes):
        probe: dict[str, Any] = dict(node["input"])
        # JSON may hold any type where the mutations' typed inputs hold strings and lists.
        if not isinstance(probe.get("model", ""), str):
            raise bad_input(f"input.nodes[{index}].input.model", "model must be a model id")
        if not isinstance(probe.get(REFERENCES, []), list):
            raise bad_input(
                f"input.nodes[{index}].input.{REFERENCES}", f"{REFERENCES} is a list of asset ids"
            )
        for edge_index, edge in enumerate(edges):
            if edge["to"] != node["id"]:
                continue
            field = edge["as"]
            stand_in = f"<asset of {edge['from']}>"
            if field == REFERENCES:
                given = probe.get(REFERENCES) or []
                probe[REFERENCES] = [*given, stand_in] if isinstance(given, list) else given
            elif probe.get(field) is not None:
                raise bad_input(
                    f"input.edges[{edge_index}].as",
                    f"node {node['id']!r} sets {field} in its input; an edge cannot feed it too",
                )
            else:
                probe[field] = stand_in
        try:
            check_request(JobKind(node["kind"]), probe, catalog, limits)
        except StudioError as error:
            where = error.details.get("field")
            if error.code is not ErrorCode.BAD_USER_INPUT or not isinstance(where, str):
                raise
            inner = where.removeprefix("input.")
            raise bad_input(f"input.nodes[{index}].input.{inner}", error.message) from None


def check_workflow(
    draft: Mapping[str, Any], catalog: Catalog, limits: InputLimits, *, max_nodes: int
) -> WorkflowGraph:
    """A WorkflowInput (name, description, nodes, edges) checked; BAD_USER_INPUT at the first fault."""
    name, description = _name(draft)
    nodes = _nodes(draft.get("nodes"), max_nodes)
    edges = _edges(draft.get("edges"), nodes)
    node_ids = [node["id"] for node in nodes]
    if topological_order(node_ids, edges) is None:
        cycle, edge_index = _find_cycle(node_ids, edges)
        raise bad_input(f"input.edges[{edge_index}].to", f"the edges make a cycle: {' -> '.join(cycle)}")
    _check_inputs(nodes, edges, catalog, limits)
    return WorkflowGraph(name, description, nodes, edges)
