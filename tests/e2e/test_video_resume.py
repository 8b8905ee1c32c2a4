"""A worker killed with SIGKILL mid-video on Vertex AI: the next worker resumes the Veo operation the
job stored, so exactly one (billed) generation is ever started."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Processes
from tests.e2e.helpers import assert_downloads, assert_monotonic, submit, subscribe, usage
from tests.e2e.test_vertex_api import vertex_env
from tests.support.client import StudioClient
from tests.support.server import mint_token
from tests.support.vertex_standin import VertexStandIn, vertex_standin


@pytest.fixture
def standin() -> Iterator[VertexStandIn]:
    with vertex_standin() as running:
        yield running


async def test_a_video_whose_worker_is_killed_resumes_its_operation_instead_of_starting_another(
    processes: Processes, standin: VertexStandIn
) -> None:
    standin.video_polls = 40  # about 4 s of polling at 0.1 s: room to kill the worker mid-operation
    env = {
        **vertex_env(standin),
        "GENMEDIA_WORKERS": "1",
        "GENMEDIA_JOB_LEASE_SECONDS": "2",
        "GENMEDIA_VERTEX_TYPICAL_VIDEO_SECONDS": "30",  # progress creeps, so "mid-video" is observable
    }
    server = processes.serve({**env, "GENMEDIA_WORKERS": "0"})
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "resume@example.com"))
    first_worker = processes.worker(env)
    submitted = await submit(client, "video", {"prompt": "a heron taking flight", "durationSeconds": 4})

    async with client.socket() as socket:
        feed = await subscribe(socket, submitted["id"])
        # Past the operation's start (its id is stored with the 0.01 report) and polling.
        await feed.until(
            lambda e: e["job"]["status"] == "RUNNING" and e["job"]["progress"] > 0.02, timeout=20
        )
        assert standin.count("predictLongRunning") == 1
        first_worker.kill(signal.SIGKILL)
        polls_before = standin.count("fetchPredictOperation")

        processes.worker(env)
        events = await feed.to_the_end(timeout=30)

    assert_monotonic(events)
    final = events[-1]["job"]
    assert (final["status"], final["attempts"]) == ("SUCCEEDED", 2), processes.logs()
    assert standin.count("predictLongRunning") == 1, "the second worker started another generation"
    polled = {call.body["operationName"] for call in standin.calls_to("fetchPredictOperation")}
    assert len(polled) == 1 and standin.count("fetchPredictOperation") > polls_before
    (asset,) = final["assets"]
    response = await assert_downloads(asset)
    assert response.content[4:8] == b"ftyp"
    totals = await usage(client)
    assert (totals["videos"], totals["jobs"], totals["failedJobs"]) == (1, 1, 0), totals
