"""A subscriber process: N graphql-transport-ws connections, one `jobProgress` subscription each.

Events the bench writes carry `job.message = "bench:<seq>:<monotonic stamp>"`; each connection
records when (time.monotonic(), system-wide on Linux) it received each seq. Talks to its parent
through stdout lines:

    READY <n>     every connection is subscribed and has had the initial state
    GOT <seq>     every connection has received event <seq>
    FAIL <why>    something went wrong (the process then ends)
    DONE          results written to --out (after every subscription completed, or --max-seconds)

Run: `python -m bench.ws_clients --url ws://127.0.0.1:P/v1/graphql --job-id ID --connections N --out F`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from typing import Any

import websockets
from websockets.asyncio.client import connect

SUBSCRIPTION = (
    "subscription($id: ID!) { jobProgress(id: $id) { previousStatus"
    " job { id status progress stage message etaSeconds } } }"
)
_STAMP = re.compile(r"bench:(\d+):([0-9.]+)")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Recorder:
    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.received: dict[int, list[float]] = {}
        self.stamps: dict[int, float] = {}
        self.initial = 0
        self.errors: list[str] = []

    def initial_state(self) -> None:
        self.initial += 1
        if self.initial == self.connections:
            say(f"READY {self.connections}")

    def event(self, seq: int, stamp: float, at: float) -> None:
        times = self.received.setdefault(seq, [])
        times.append(at)
        self.stamps[seq] = stamp
        if len(times) == self.connections:
            say(f"GOT {seq}")


async def subscriber(
    url: str, token: str | None, job_id: str, recorder: Recorder, gate: asyncio.Semaphore
) -> None:
    async with gate:
        ws = await connect(
            url,
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
            ping_interval=None,
            open_timeout=120,
            max_size=2**20,
        )
        init: dict[str, Any] = {"type": "connection_init", "payload": {}}
        if token:
            init["payload"] = {"authorization": f"Bearer {token}"}
        await ws.send(json.dumps(init))
        ack = json.loads(await ws.recv())
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no ack: {ack}")
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIPTION, "variables": {"id": job_id}},
                }
            )
        )
    try:
        async for raw in ws:
            at = time.monotonic()
            text = raw if isinstance(raw, str) else raw.decode()
            match = _STAMP.search(text)
            if match:
                recorder.event(int(match.group(1)), float(match.group(2)), at)
                continue
            message = json.loads(text)
            kind = message.get("type")
            if kind == "next":
                errors = message.get("payload", {}).get("errors")
                if errors:
                    raise RuntimeError(f"subscription error: {errors}")
                recorder.initial_state()
            elif kind in ("complete", "error"):
                if kind == "error":
                    raise RuntimeError(f"subscription error: {message}")
                return
    finally:
        await ws.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    recorder = Recorder(args.connections)
    gate = asyncio.Semaphore(args.connect_concurrency)
    started = time.monotonic()
    tasks = [
        asyncio.create_task(subscriber(args.url, args.token, args.job_id, recorder, gate))
        for _ in range(args.connections)
    ]
    done, pending = await asyncio.wait(tasks, timeout=args.max_seconds, return_when=asyncio.FIRST_EXCEPTION)
    failed = [task.exception() for task in done if task.exception() is not None]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if failed:
        say(f"FAIL {failed[0]!r}"[:500])
    result = {
        "connections": args.connections,
        "seconds": time.monotonic() - started,
        "received": {str(seq): times for seq, times in recorder.received.items()},
        "stamps": {str(seq): stamp for seq, stamp in recorder.stamps.items()},
        "errors": [repr(error) for error in failed][:5],
        "timed_out": bool(pending),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token")
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    with open(args.out, "w") as handle:
        json.dump(result, handle)
    say("DONE")
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
