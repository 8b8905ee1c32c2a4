"""Restarting `genmedia serve` on the same data dir: nothing is lost, and an interrupted job finishes once."""

from __future__ import annotations

import signal
import time

from tests.e2e.conftest import Processes
from tests.e2e.helpers import ASSET, assert_downloads, follow, job, submit, subscribe, usage
from tests.support.client import StudioClient
from tests.support.server import mint_token

LIBRARY = f"""{{
  me {{ id email role status }}
  jobs(first: 10) {{ totalCount edges {{ node {{ id status attempts assets {{ id }} }} }} }}
  assets(first: 10) {{ totalCount edges {{ node {{ {ASSET} }} }} }}
}}"""


async def test_users_jobs_assets_and_signed_urls_survive_a_restart(processes: Processes) -> None:
    server = processes.serve({"GENMEDIA_WORKERS": "1"})
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "keeper@example.com"))
    image = await submit(client, "image", {"prompt": "a paper boat"})
    text = await submit(client, "text", {"prompt": "a line about rivers", "maxOutputTokens": 40})
    for submitted in (image, text):
        assert (await follow(client, submitted["id"]))[-1]["job"]["status"] == "SUCCEEDED"
    before = await client.data(LIBRARY)
    assert before["jobs"]["totalCount"] == 2 and before["assets"]["totalCount"] == 2
    old_assets = {edge["node"]["id"]: edge["node"] for edge in before["assets"]["edges"]}

    server.stop()  # SIGTERM: a graceful shutdown, not the SIGKILL fallback
    assert server.process is not None and server.process.returncode == 0

    again = processes.serve({"GENMEDIA_WORKERS": "1"}, port=server.port)  # the old URLs name this port
    after = await client.data(LIBRARY)  # the same token: the signing key survived too
    assert after["me"] == before["me"]
    assert (after["me"]["email"], after["me"]["role"], after["me"]["status"]) == (
        "keeper@example.com",
        "USER",
        "ACTIVE",
    )
    assert after["jobs"] == before["jobs"]
    assert {edge["node"]["status"] for edge in after["jobs"]["edges"]} == {"SUCCEEDED"}
    assert after["assets"]["totalCount"] == 2
    new_assets = {edge["node"]["id"]: edge["node"] for edge in after["assets"]["edges"]}
    assert new_assets.keys() == old_assets.keys()
    assert {a["kind"] for a in new_assets.values()} == {"IMAGE", "TEXT"}
    for asset_id, old in old_assets.items():
        fresh = new_assets[asset_id]
        assert {k: v for k, v in fresh.items() if k != "url"} == {k: v for k, v in old.items() if k != "url"}
        await assert_downloads(old)  # a URL signed before the restart
        await assert_downloads(fresh)
    finished = await job(client, text["id"])
    assert finished["assets"][0]["text"], finished
    assert again.port == server.port


async def test_a_job_interrupted_by_killing_serve_is_finished_once_after_a_restart(
    processes: Processes,
) -> None:
    env = {"GENMEDIA_WORKERS": "1", "GENMEDIA_JOB_LEASE_SECONDS": "2", "GENMEDIA_LOCAL_SPEED": "2"}
    server = processes.serve(env)
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "phoenix@example.com"))
    submitted = await submit(client, "video", {"prompt": "embers rising", "durationSeconds": 4})
    async with client.socket() as socket:
        feed = await subscribe(socket, submitted["id"])
        await feed.until(lambda e: e["job"]["status"] == "RUNNING" and e["job"]["progress"] > 0.2, timeout=20)
        server.kill(signal.SIGKILL)  # API and its worker, mid-job, no chance to hand the job back

    again = processes.serve(env)
    client = StudioClient(again.base_url, client.token)
    interrupted = await job(client, submitted["id"])
    assert interrupted["status"] in ("RUNNING", "QUEUED") and interrupted["assets"] == [], interrupted

    events = await follow(client, submitted["id"], timeout=20)
    final = events[-1]["job"]
    assert final["status"] == "SUCCEEDED" and final["attempts"] == 2, events
    (asset,) = final["assets"]
    await assert_downloads(asset)
    library = await client.data("{ assets { totalCount } }")
    assert library["assets"]["totalCount"] == 1
    totals = await usage(client)
    assert (totals["videos"], totals["jobs"]) == (1, 1), totals


async def test_sigterm_stops_serve_promptly_with_a_subscriber_connected_and_releases_its_job(
    processes: Processes,
) -> None:
    # A long lease: after the restart the job runs at once only if the stopping server released it.
    env = {"GENMEDIA_WORKERS": "1", "GENMEDIA_JOB_LEASE_SECONDS": "30", "GENMEDIA_LOCAL_SPEED": "2"}
    server = processes.serve(env)
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "graceful@example.com"))
    submitted = await submit(client, "video", {"prompt": "a quiet harbour", "durationSeconds": 4})
    async with client.socket() as socket:
        feed = await subscribe(socket, submitted["id"])
        await feed.until(lambda e: e["job"]["status"] == "RUNNING" and e["job"]["progress"] > 0.2, timeout=20)
        started = time.monotonic()
        server.stop()
        stopped_in = time.monotonic() - started
    assert server.process is not None and server.process.returncode == 0
    assert stopped_in < 5, f"an open WebSocket must not hold up shutdown: {stopped_in:.1f}s"

    again = processes.serve(env)
    client = StudioClient(again.base_url, client.token)
    events = await follow(client, submitted["id"], timeout=15)
    final = events[-1]["job"]
    assert final["status"] == "SUCCEEDED" and final["attempts"] == 2, events
    assert len(final["assets"]) == 1
    assert (await client.data("{ assets { totalCount } }"))["assets"]["totalCount"] == 1
