"""Subscription fan-out measurement: client processes (bench.ws_clients), a trigger per event, and
the write → receive latency and first → last receiver spread computed from their recordings."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT, child_env, cpu_seconds, percentile

Trigger = Callable[[int, float], Awaitable[None]]
Finish = Callable[[], Awaitable[None]]


class _Clients:
    """The client processes and what they have reported on stdout."""

    def __init__(self) -> None:
        self.processes: list[asyncio.subprocess.Process] = []
        self.ready: set[int] = set()
        self.got: dict[int, set[int]] = {}
        self.done: set[int] = set()
        self.failures: list[str] = []
        self.changed = asyncio.Event()
        self.readers: list[asyncio.Task[None]] = []

    async def read(self, index: int, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            word, _, rest = line.decode().strip().partition(" ")
            if word == "READY":
                self.ready.add(index)
            elif word == "GOT":
                self.got.setdefault(int(rest), set()).add(index)
            elif word == "DONE":
                self.done.add(index)
            elif word == "FAIL":
                self.failures.append(rest)
            self.changed.set()
        self.done.add(index)  # a process that ended without DONE counts as done (and maybe failed)
        self.changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.changed.clear()
            if condition():
                return True
            if self.failures:
                raise RuntimeError(f"subscriber process failed: {self.failures[0]}")
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return condition()


async def fanout(
    *,
    ws_url: str,
    token: str | None,
    job_gid: str,
    subscribers: int,
    processes: int,
    events: int,
    trigger: Trigger,
    finish: Finish,
    work_dir: Path,
    label: str,
    server_pid: int,
    ready_timeout: float = 120.0,
    events_budget: float = 90.0,
) -> dict[str, Any]:
    """Connect `subscribers` sockets over `processes` client processes, fire `events` events one at a
    time (each after every subscriber had the previous one, plus 10-60 ms of random gap so writes do
    not phase-lock with the server's 50 ms change-log poll), and measure."""
    clients = _Clients()
    share = [subscribers // processes + (1 if i < subscribers % processes else 0) for i in range(processes)]
    outs = [work_dir / f"{label}-{i}.json" for i in range(processes)]
    logs = [(work_dir / f"{label}-{i}.log").open("wb") for i in range(processes)]
    started = time.monotonic()
    try:
        for index, count in enumerate(share):
            args = [PYTHON, "-m", "bench.ws_clients", "--url", ws_url, "--job-id", job_gid]
            limit = ready_timeout + events_budget + 60
            args += ["--connections", str(count), "--out", str(outs[index]), "--max-seconds", str(limit)]
            if token:
                args += ["--token", token]
            process = await asyncio.create_subprocess_exec(
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=logs[index],
                cwd=ROOT,
                env=child_env(),
                start_new_session=True,
            )
            clients.processes.append(process)
            assert process.stdout is not None
            clients.readers.append(asyncio.create_task(clients.read(index, process.stdout)))
        if not await clients.until(lambda: len(clients.ready) == processes, ready_timeout):
            raise RuntimeError(f"{label}: subscribers not ready after {ready_timeout}s")
        connect_seconds = time.monotonic() - started

        late = fired = 0
        cpu_before = cpu_seconds(server_pid)
        deadline = time.monotonic() + events_budget
        for seq in range(1, events + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                break  # a stalled server must not stall the run: report what was delivered
            await trigger(seq, time.monotonic())
            fired += 1
            if not await clients.until(
                lambda s=seq: len(clients.got.get(s, ())) == processes, min(30.0, left)
            ):
                late += 1
            await asyncio.sleep(random.uniform(0.01, 0.06))
        server_cpu = cpu_seconds(server_pid) - cpu_before
        await finish()
        await clients.until(lambda: len(clients.done) == processes, 60.0)
    finally:
        for process in clients.processes:
            if process.returncode is None:
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        for reader in clients.readers:
            reader.cancel()
        await asyncio.gather(*clients.readers, return_exceptions=True)
        for handle in logs:
            handle.close()

    received: dict[int, list[float]] = {}
    stamps: dict[int, float] = {}
    errors: list[str] = []
    for out in outs:
        if not out.exists():
            errors.append(f"{out.name}: the subscriber process left no results")
            continue
        data = json.loads(out.read_text())
        errors += data["errors"]
        for seq, times in data["received"].items():
            received.setdefault(int(seq), []).extend(times)
        stamps.update({int(seq): stamp for seq, stamp in data["stamps"].items()})
    latencies = [t - stamps[seq] for seq, times in received.items() for t in times]
    complete = [times for times in received.values() if len(times) == subscribers]
    spreads = [max(times) - min(times) for times in complete]
    return {
        "subscribers": subscribers,
        "processes": processes,
        "events": fired,
        "events_complete": len(complete),
        "late_events": late,
        "deliveries": len(latencies),
        "connect_seconds": connect_seconds,
        "latency_p50_ms": percentile(latencies, 50) * 1000,
        "latency_p99_ms": percentile(latencies, 99) * 1000,
        "spread_p50_ms": percentile(spreads, 50) * 1000,
        "spread_p99_ms": percentile(spreads, 99) * 1000,
        "server_cpu_seconds": server_cpu,
        "server_cpu_us_per_delivery": server_cpu / max(len(latencies), 1) * 1e6,
        "errors": errors[:3],
    }
