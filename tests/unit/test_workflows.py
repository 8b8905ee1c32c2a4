"""The rules of workflow graphs, and what a run does next, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from config import Settings
from domain.errors import ErrorCode, StudioError
from domain.requests import InputLimits
from domain.workflow_graph import check_workflow, topological_order
from domain.workflow_plan import WAITING, new_step, plan_run
from wiring import build_catalog

CATALOG = build_catalog(Settings.model_construct())


def node(node_id: str, kind: str = "IMAGE", **values: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {} if kind == "UPSCALE" else {"prompt": f"{node_id} prompt"}
    if kind == "VIDEO":
        defaults["durationSeconds"] = 4
    return {"id": node_id, "kind": kind, "input": defaults | values}


def edge(source: str, target: str, field: str) -> dict[str, str]:
    return {"from": source, "to": target, "as": field}


def check(nodes: list[dict[str, Any]], edges: list[dict[str, str]] | None = None, **extra: Any) -> Any:
    draft = {"name": "a workflow", "nodes": nodes, "edges": edges or []} | extra
    return check_workflow(draft, CATALOG, InputLimits(), max_nodes=5)


def refusal(
    nodes: list[dict[str, Any]], edges: list[dict[str, str]] | None = None, **extra: Any
) -> StudioError:
    with pytest.raises(StudioError) as caught:
        check(nodes, edges, **extra)
    assert caught.value.code is ErrorCode.BAD_USER_INPUT
    return caught.value


THREE = [node("image"), node("video", "VIDEO"), node("bigger", "UPSCALE")]
FEEDS = [edge("image", "video", "firstFrameAssetId"), edge("image", "bigger", "assetId")]


def test_a_valid_graph_is_kept_as_given() -> None:
    graph = check(THREE, FEEDS)
    assert [n["id"] for n in graph.nodes] == ["image", "video", "bigger"]
    assert graph.edges == FEEDS
    assert graph.nodes[2]["input"] == {}  # the fed assetId is not stored on the node


@pytest.mark.parametrize(
    ("edges", "field", "words"),
    [
        (
            [edge("a", "b", "referenceAssetIds"), edge("b", "a", "referenceAssetIds")],
            "input.edges[",
            "a -> b -> a",
        ),
        ([edge("a", "a", "referenceAssetIds")], "input.edges[0].to", "cycle"),
        (
            [
                edge("a", "b", "referenceAssetIds"),
                edge("b", "c", "referenceAssetIds"),
                edge("c", "a", "referenceAssetIds"),
            ],
            "input.edges[",
            "cycle",
        ),
    ],
    ids=["two-nodes", "self", "three-nodes"],
)
def test_a_cycle_is_refused_naming_an_edge_on_it(edges: list[dict[str, str]], field: str, words: str) -> None:
    error = refusal([node("a"), node("b"), node("c")], edges)
    assert error.details["field"].startswith(field) and error.details["field"].endswith(".to")
    assert words in error.message


def test_the_cycle_named_is_a_real_one_even_behind_a_node_that_only_follows_it() -> None:
    edges = [
        edge("b", "c", "referenceAssetIds"),
        edge("c", "b", "referenceAssetIds"),
        edge("b", "a", "referenceAssetIds"),
    ]
    error = refusal([node("a"), node("b"), node("c")], edges)
    assert "b -> c -> b" in error.message or "c -> b -> c" in error.message


@pytest.mark.parametrize(
    ("edges", "field"),
    [
        ([edge("nope", "video", "firstFrameAssetId")], "input.edges[0].from"),
        ([edge("image", "nope", "firstFrameAssetId")], "input.edges[0].to"),
        ([FEEDS[0], edge("image", "video", "thumbnail")], "input.edges[1].as"),
    ],
    ids=["unknown-from", "unknown-to", "unknown-as"],
)
def test_unknown_node_ids_and_fields_are_named(edges: list[dict[str, str]], field: str) -> None:
    assert refusal(THREE, edges).details["field"] == field


@pytest.mark.parametrize(
    ("nodes", "edges", "field"),
    [
        (
            [node("a", "TEXT"), node("v", "VIDEO")],
            [edge("a", "v", "firstFrameAssetId")],
            "input.edges[0].from",
        ),
        ([node("v", "VIDEO"), node("u", "UPSCALE")], [edge("v", "u", "assetId")], "input.edges[0].from"),
        ([node("a"), node("t", "TEXT")], [edge("a", "t", "referenceAssetIds")], "input.edges[0].as"),
        ([node("a"), node("b")], [edge("a", "b", "firstFrameAssetId")], "input.edges[0].as"),
        ([node("a"), node("u", "UPSCALE")], [edge("a", "u", "referenceAssetIds")], "input.edges[0].as"),
    ],
    ids=[
        "text-feeds-a-frame",
        "video-feeds-an-upscale",
        "text-takes-nothing",
        "image-has-no-frame",
        "upscale-takes-assetId",
    ],
)
def test_an_edge_must_carry_an_image_into_a_field_its_target_has(
    nodes: list[dict[str, Any]], edges: list[dict[str, str]], field: str
) -> None:
    assert refusal(nodes, edges).details["field"] == field


def test_one_field_fed_twice_or_also_given_is_refused() -> None:
    twice = [node("a"), node("b"), node("v", "VIDEO")]
    fed = [edge("a", "v", "firstFrameAssetId"), edge("b", "v", "firstFrameAssetId")]
    assert refusal(twice, fed).details["field"] == "input.edges[1].as"
    given = [node("a"), node("u", "UPSCALE", assetId="someasset")]
    assert refusal(given, [edge("a", "u", "assetId")]).details["field"] == "input.edges[0].as"


@pytest.mark.parametrize(
    ("nodes", "field"),
    [
        ([node("a"), node("a")], "input.nodes[1].id"),
        ([node("a"), node("has space")], "input.nodes[1].id"),
        ([node("a"), {"id": "b", "kind": "SOUND", "input": {}}], "input.nodes[1].kind"),
        ([node("a"), {"id": "b", "kind": "IMAGE", "input": "draw"}], "input.nodes[1].input"),
        ([node("a"), node("b", prompt="")], "input.nodes[1].input.prompt"),
        ([node("a"), node("b", count=9)], "input.nodes[1].input.count"),
        ([node("a"), node("v", "VIDEO", durationSeconds=5)], "input.nodes[1].input.durationSeconds"),
        ([node("a"), node("u", "UPSCALE")], "input.nodes[1].input.assetId"),
        ([node("a"), node("b", model=["a", "list"])], "input.nodes[1].input.model"),
        ([node("a"), node("b", referenceAssetIds=5)], "input.nodes[1].input.referenceAssetIds"),
        ([], "input.nodes"),
        ([node(f"n{i}") for i in range(6)], "input.nodes"),
    ],
    ids=[
        "duplicate-id",
        "id-with-space",
        "unknown-kind",
        "input-not-an-object",
        "empty-prompt",
        "count-9",
        "duration-5",
        "upscale-without-source",
        "model-not-a-string",
        "references-not-a-list",
        "no-nodes",
        "over-the-cap",
    ],
)
def test_a_bad_node_is_named_by_its_path(nodes: list[dict[str, Any]], field: str) -> None:
    assert refusal(nodes).details["field"] == field


def test_fed_references_count_against_the_limit_of_the_node() -> None:
    nodes = [node("a"), node("b"), node("c"), node("d"), node("v", "VIDEO")]
    edges = [edge(n, "v", "referenceAssetIds") for n in "abcd"]
    assert refusal(nodes, edges).details["field"] == "input.nodes[4].input.referenceAssetIds"


def test_a_last_frame_needs_a_first_frame_even_when_fed() -> None:
    nodes = [node("a"), node("v", "VIDEO")]
    error = refusal(nodes, [edge("a", "v", "lastFrameAssetId")])
    assert error.details["field"] == "input.nodes[1].input.lastFrameAssetId"


@pytest.mark.parametrize(("name", "field"), [("", "input.name"), ("x" * 201, "input.name")])
def test_a_workflow_needs_a_sensible_name(name: str, field: str) -> None:
    assert refusal([node("a")], name=name).details["field"] == field


def test_topological_order_puts_inputs_first_and_finds_cycles() -> None:
    assert topological_order(["v", "a", "u"], [edge("a", "v", "x"), edge("a", "u", "x")]) == ["a", "v", "u"]
    assert topological_order(["a", "b"], [edge("a", "b", "x"), edge("b", "a", "x")]) is None


# ---------------------------------------------------------------- what a run does next


def steps_of(nodes: list[dict[str, Any]], edges: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
    return [new_step(n) for n in check(nodes, edges).nodes]


def job(status: str, *assets: str, code: str | None = None) -> dict[str, Any]:
    error = {"code": code, "message": "refused", "retryable": False} if code else None
    return {"status": status, "asset_ids": list(assets), "error": error}


def test_a_run_starts_with_the_nodes_that_need_no_input() -> None:
    plan = plan_run(steps_of(THREE, FEEDS), FEEDS, {})
    assert [index for index, _ in plan.ready] == [0]
    assert plan.status == "RUNNING"


def test_an_upstream_asset_fills_the_field_of_every_step_it_feeds() -> None:
    steps = steps_of(THREE, FEEDS)
    steps[0]["job_id"] = "j1"
    plan = plan_run(steps, FEEDS, {"j1": job("SUCCEEDED", "asset1", "asset2")})
    ready = dict(plan.ready)
    assert ready[1]["firstFrameAssetId"] == "asset1"
    assert ready[2] == {"assetId": "asset1"}


def test_references_are_appended_to_those_given() -> None:
    nodes = [node("a"), node("b", referenceAssetIds=["mine"])]
    steps = steps_of(nodes)
    steps[0]["job_id"] = "j1"
    plan = plan_run(steps, [edge("a", "b", "referenceAssetIds")], {"j1": job("SUCCEEDED", "made")})
    assert dict(plan.ready)[1]["referenceAssetIds"] == ["mine", "made"]


def test_a_failed_upstream_fails_every_step_downstream_with_its_name() -> None:
    nodes = [node("image"), node("video", "VIDEO"), node("bigger", "UPSCALE"), node("after", "UPSCALE")]
    edges = [*FEEDS, edge("bigger", "after", "assetId")]
    steps = steps_of(nodes, edges)
    steps[0]["job_id"] = "j1"
    plan = plan_run(steps, edges, {"j1": job("FAILED", code="CONTENT_BLOCKED")})
    assert plan.ready == []
    assert [s["status"] for s in plan.steps] == ["FAILED"] * 4
    assert "upstream node 'image' failed (CONTENT_BLOCKED" in plan.steps[1]["reason"]
    assert plan.steps[3]["reason"] == "not run: upstream node 'bigger' was not run"
    assert plan.status == "FAILED"


def test_a_run_succeeds_when_every_step_did() -> None:
    steps = steps_of([node("a"), node("b")])
    for i, step in enumerate(steps):
        step["job_id"] = f"j{i}"
    done = plan_run(steps, [], {"j0": job("SUCCEEDED", "x"), "j1": job("SUCCEEDED", "y")})
    assert done.status == "SUCCEEDED"
    half = plan_run(steps, [], {"j0": job("SUCCEEDED", "x"), "j1": job("RUNNING")})
    assert half.status == "RUNNING"
    assert plan_run(steps, [], {"j0": job("SUCCEEDED", "x"), "j1": job("CANCELLED")}).status == "FAILED"
    assert steps[0]["status"] == WAITING  # planning never changes what it was given
