"""The identical-request cache, side by side in one run: how long until a job is final when an identical
earlier result answers it, and when it is generated (local generator at speed 1, `cache: false`).

    .venv/bin/python bench/request_cache.py [--requests 30]

A `genmedia serve` with 2 workers on a temporary data dir; one user; seeded image requests. Only
127.0.0.1 is contacted. Prints a markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from tests.support.client import StudioClient
from tests.support.server import mint_token, start_server

ASK = """mutation($input: GenerateImageInput!) { generateImage(input: $input) { id status cached } }"""
STATUS = "query($id: ID!) { job(id: $id) { status } }"
SEEDED = {"prompt": "a lighthouse at dusk", "seed": 7}


async def until_final(client: StudioClient, job_id: str) -> None:
    while (await client.data(STATUS, {"id": job_id}))["job"]["status"] not in ("SUCCEEDED", "FAILED"):
        await asyncio.sleep(0.01)


async def timed(client: StudioClient, values: dict[str, Any]) -> tuple[float, bool]:
    """Milliseconds from sending the request to the job being final, and whether it was cached."""
    started = time.perf_counter()
    job = (await client.data(ASK, {"input": values}))["generateImage"]
    if job["status"] != "SUCCEEDED":
        await until_final(client, job["id"])
    return (time.perf_counter() - started) * 1000, bool(job["cached"])


async def measure(base_url: str, token: str, requests: int) -> dict[str, list[float]]:
    client = StudioClient(base_url, token)
    first, _ = await timed(client, SEEDED)  # the result every cached answer points at
    cached: list[float] = []
    generated: list[float] = []
    for index in range(requests):  # alternating, so both see the same machine
        took, hit = await timed(client, SEEDED)
        assert hit, "an identical seeded request must be answered from the cache"
        cached.append(took)
        took, hit = await timed(client, {**SEEDED, "cache": False, "prompt": f"a lighthouse {index}"})
        assert not hit
        generated.append(took)
    return {"cached": cached, "generated": generated, "first": [first]}


def report(results: dict[str, list[float]]) -> str:
    def row(name: str, values: list[float]) -> str:
        ordered = sorted(values)
        p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
        return f"| {name} | {len(values)} | {statistics.median(values):.1f} | {p95:.1f} |"

    cached, generated = results["cached"], results["generated"]
    ratio = statistics.median(generated) / statistics.median(cached)
    return "\n".join(
        [
            "| request → job final | n | median ms | p95 ms |",
            "|---|---|---|---|",
            row("identical seeded image, answered from the cache", cached),
            row("new seeded image, generated (`cache: false`, local speed 1)", generated),
            "",
            f"cached answers are final {ratio:.0f}x sooner (medians)",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genmedia-bench-cache-") as tmp:
        data = Path(tmp) / "data"
        # Polling for the end reads often: the read limit is out of the way (it is not measured here).
        env = {"GENMEDIA_WORKERS": "2", "GENMEDIA_LOCAL_SPEED": "1", "GENMEDIA_RATE_READ": "100000/minute"}
        server = start_server(data, env)
        try:
            token = asyncio.run(mint_token(data, "cache-bench@example.com"))
            print(report(asyncio.run(measure(server.base_url, token, args.requests))))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
