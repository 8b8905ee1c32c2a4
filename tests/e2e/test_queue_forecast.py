"""Queued jobs say where they stand in the queue and when they should be done."""

from __future__ import annotations

from tests.e2e.conftest import Processes
from tests.e2e.helpers import poll, submit
from tests.support.client import StudioClient
from tests.support.server import mint_token

FORECAST = "query($id: ID!) { job(id: $id) { status queuePosition etaSeconds } }"


async def forecast(client: StudioClient, job_id: str) -> dict[str, object]:
    return dict((await client.data(FORECAST, {"id": job_id}))["job"])


async def finished(client: StudioClient, job_id: str) -> None:
    await poll(lambda: forecast(client, job_id), lambda job: job["status"] == "SUCCEEDED", timeout=30)


async def test_queued_jobs_show_their_position_and_an_eta_learnt_from_finished_jobs(
    processes: Processes,
) -> None:
    server = processes.serve({"GENMEDIA_WORKERS": "0"})
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "queue@example.com"))
    first = await submit(client, "image", {"prompt": "a lighthouse"})
    # Nothing has ever run: a place in the queue, but no ETA to speak of.
    assert await forecast(client, first["id"]) == {"status": "QUEUED", "queuePosition": 1, "etaSeconds": None}

    worker = processes.worker()
    await finished(client, first["id"])
    worker.stop()

    later = [await submit(client, "image", {"prompt": f"a harbour {index}"}) for index in range(3)]
    seen = [await forecast(client, job["id"]) for job in later]
    assert [job["queuePosition"] for job in seen] == [1, 2, 3]
    etas = [job["etaSeconds"] for job in seen]
    assert all(isinstance(eta, int) for eta in etas), seen
    assert etas == sorted(etas), f"a job further back is not expected sooner: {seen}"

    # Position and ETA together read the queue once: asking for both costs what asking for the
    # position alone does (the engine's recent pace is cached for a few seconds).
    calls = []
    for fields in ("queuePosition", "queuePosition etaSeconds"):
        response = await client.post(
            f"query($id: ID!) {{ job(id: $id) {{ {fields} }} }}", {"id": later[2]["id"]}
        )
        calls.append(response.headers["x-docstore-calls"])
    assert calls[0] == calls[1], calls

    processes.worker()
    for job in later:
        await finished(client, job["id"])
    done = await forecast(client, later[-1]["id"])
    assert done["queuePosition"] is None and done["etaSeconds"] == 0
