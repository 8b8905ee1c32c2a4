"""Processes started together on a fresh data dir agree on its per-installation secrets."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from tests.e2e.conftest import Processes
from tests.e2e.helpers import assert_downloads, follow, submit, usage
from tests.support.client import StudioClient
from tests.support.server import mint_token
from wiring import read_or_create_secret  # imported before forking, so the children start at once


def _secret_in_child(path: str, barrier: Barrier, results: Queue[str]) -> None:
    barrier.wait()
    try:
        results.put(read_or_create_secret(Path(path)).hex())
    except SystemExit as error:  # SettingsError: what `genmedia serve` would die of
        results.put(f"error: {error}")


def test_racing_processes_all_get_the_same_url_signing_secret(tmp_path: Path) -> None:
    fork = multiprocessing.get_context("fork")
    for trial in range(20):
        path = tmp_path / f"data-{trial}" / "secrets" / "url-signing.key"
        barrier = fork.Barrier(4)
        results: Queue[str] = fork.Queue()
        children = [
            fork.Process(target=_secret_in_child, args=(str(path), barrier, results)) for _ in range(4)
        ]
        for child in children:
            child.start()
        try:
            got = [results.get(timeout=20) for _ in children]
        finally:
            for child in children:
                child.join(timeout=10)
                if child.is_alive():
                    child.kill()
        assert len(set(got)) == 1 and not got[0].startswith("error"), got
        assert path.read_bytes().hex() == got[0]
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
        assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file is left behind"


async def test_serve_and_workers_started_at_once_on_a_fresh_data_dir_share_the_work(
    processes: Processes,
) -> None:
    fast = {"GENMEDIA_LOCAL_SPEED": "0"}
    workers = [processes.worker(fast), processes.worker(fast)]
    server = processes.serve({"GENMEDIA_WORKERS": "0", **fast})  # the two worker processes race for each job
    client = StudioClient(server.base_url, await mint_token(processes.data_dir, "fresh@example.com"))
    jobs = [await submit(client, "image", {"prompt": f"first light {n}"}) for n in range(6)]
    for submitted in jobs:
        final = (await follow(client, submitted["id"]))[-1]["job"]
        assert final["status"] == "SUCCEEDED" and final["attempts"] == 1, final
        (asset,) = final["assets"]
        await assert_downloads(asset)
    library = await client.data("{ assets { totalCount } }")
    assert library["assets"]["totalCount"] == len(jobs), "each job ran once, whoever claimed it"
    totals = await usage(client)
    assert (totals["images"], totals["jobs"]) == (len(jobs), len(jobs)), totals
    assert all(w.process is not None and w.process.poll() is None for w in workers), processes.logs()
