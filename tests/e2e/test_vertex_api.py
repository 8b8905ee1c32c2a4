"""The whole API on the Vertex AI generator, against a stand-in that speaks Vertex AI's REST shapes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Processes
from tests.e2e.helpers import assert_downloads, assert_monotonic, follow, submit
from tests.support.client import StudioClient
from tests.support.server import mint_token
from tests.support.vertex_standin import VertexStandIn, vertex_standin


@pytest.fixture
def standin() -> Iterator[VertexStandIn]:
    with vertex_standin() as running:
        yield running


def vertex_env(standin: VertexStandIn) -> dict[str, str]:
    return {
        "GENMEDIA_GENERATOR": "vertex",
        "GENMEDIA_VERTEX_BASE_URL": standin.base_url,
        "GOOGLE_CLOUD_PROJECT": "studio-test",
        "GENMEDIA_VERTEX_POLL_SECONDS": "0.1",
        "GENMEDIA_VERTEX_TYPICAL_VIDEO_SECONDS": "1",
        "GENMEDIA_WORKERS": "2",
    }


async def test_a_video_job_on_vertex_streams_progress_while_the_operation_runs(
    processes: Processes, standin: VertexStandIn
) -> None:
    standin.video_polls = 8
    server = processes.serve(vertex_env(standin))
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "veo@example.com"))
    job = await submit(
        client, "video", {"prompt": "a paper boat on a river", "durationSeconds": 4, "seed": 3}
    )
    events = await follow(client, job["id"], timeout=40)
    assert_monotonic(events)
    final = events[-1]["job"]
    assert final["status"] == "SUCCEEDED", processes.logs()
    assert len({event["job"]["progress"] for event in events}) >= 4, "progress moves while Veo works"
    (asset,) = final["assets"]
    await assert_downloads(asset)
    (call,) = standin.calls_to("predictLongRunning")
    assert call.parameters["durationSeconds"] == 4 and call.parameters["seed"] == 3
    assert standin.count("fetchPredictOperation") >= 8


async def test_a_refused_prompt_on_vertex_fails_with_content_blocked(
    processes: Processes, standin: VertexStandIn
) -> None:
    server = processes.serve(vertex_env(standin))
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "refused@example.com"))
    standin.refuse_next("prompt_blocked")
    job = await submit(client, "text", {"prompt": "something the filter refuses"})
    final = (await follow(client, job["id"], timeout=30))[-1]["job"]
    assert final["status"] == "FAILED" and final["attempts"] == 1
    assert final["error"]["code"] == "CONTENT_BLOCKED" and final["error"]["message"]
    assert standin.count("generateContent") == 1, "a refusal is never retried"


async def test_an_image_on_vertex_is_tagged_by_one_gemini_call(
    processes: Processes, standin: VertexStandIn
) -> None:
    server = processes.serve(vertex_env(standin) | {"GENMEDIA_MODEL_TAGGING": "gemini-tagger"})
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "tagged@example.com"))
    job = await submit(client, "image", {"prompt": "a red fox in the snow"})
    final = (await follow(client, job["id"], timeout=30))[-1]["job"]
    assert final["status"] == "SUCCEEDED", processes.logs()

    (asset,) = final["assets"]
    tagged = await client.data("query($id: ID!) { asset(id: $id) { tags } }", {"id": asset["id"]})
    assert {"fox", "red"} <= set(tagged["asset"]["tags"])
    (call,) = [call for call in standin.calls_to("generateContent") if call.model == "gemini-tagger"]
    assert call.inline_media() and call.generation_config["responseMimeType"] == "application/json"
