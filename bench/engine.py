"""Engine throughput, in-process with the domain objects (no HTTP): a backlog of text jobs submitted
through JobDesk, then drained by `run_workers` with W concurrent workers, local generator at speed 0.

Also times the generator alone on the same requests, so the engine's own cost per job is
(drain time per job at 1 worker) - (generator time per job). Prints one JSON line.

Run: `python -m bench.engine --data-dir D --workers 2 --jobs 300` or `... --generator-only`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from backends.docstore.counting import DOCSTORE_CALLS
from config import load_settings
from domain.access import Actor
from domain.jobs import JOBS, JobKind
from domain.ports import Filter, Progress
from domain.runner import JobRunner
from domain.users import Role, UserStatus
from domain.workers import run_workers
from wiring import build_runner, build_services


def _calls() -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in DOCSTORE_CALLS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["operation"]] = sample.value
    return out


class _Counted:
    """The runner, with a count of finished jobs and an event when the last one is done."""

    def __init__(self, runner: JobRunner, total: int) -> None:
        self._runner = runner
        self._total = total
        self.finished = 0
        self.all_done = asyncio.Event()

    async def run(self, job_id: str) -> None:
        await self._runner.run(job_id)
        self.finished += 1
        if self.finished >= self._total:
            self.all_done.set()

    async def sweep(self) -> int:
        return await self._runner.sweep()


async def cancel_hard(task: asyncio.Task[Any]) -> int:
    """Cancel until it is done; how many cancels it took.

    DocstoreQueue.serve waits with `asyncio.wait_for(self._wake.wait(), ...)`; on Python 3.11 a
    cancel that lands when the wake-up has just completed is swallowed (wait_for returns the
    result), so a single cancel can leave the workers running.
    """
    count = 0
    while not task.done():
        task.cancel()
        count += 1
        await asyncio.wait([task], timeout=0.2)
    return count


def _raw(index: int) -> dict[str, Any]:
    return {"prompt": f"a short note about benchmark run number {index}", "maxOutputTokens": 64}


async def _setup(data_dir: Path, workers: int) -> tuple[Any, Actor]:
    settings = load_settings(
        data_dir=data_dir, workers=workers, local_speed=0, log_level="WARNING", job_lease_seconds=30
    )
    services = build_services(settings)
    user = await services.directory.put(
        "engine-bench@example.com",
        role=Role.USER,
        status=UserStatus.ACTIVE,
        terms_version=services.settings.terms_version,
    )
    return services, Actor(user=user)


async def drain(data_dir: Path, workers: int, jobs: int) -> dict[str, Any]:
    services, actor = await _setup(data_dir, workers)
    t0 = time.perf_counter()
    ids = [(await services.desk.submit(actor, JobKind.TEXT, _raw(i))).id for i in range(jobs)]
    submit_seconds = time.perf_counter() - t0

    counted = _Counted(build_runner(services), jobs)
    before = _calls()
    start = time.perf_counter()
    task = asyncio.create_task(
        run_workers(services.queue, counted, concurrency=workers, sweep_seconds=15.0)  # type: ignore[arg-type]
    )
    try:
        await asyncio.wait_for(counted.all_done.wait(), timeout=60)
        elapsed = time.perf_counter() - start
    finally:
        cancels = await cancel_hard(task)
    after = _calls()
    succeeded = await services.docs.count(JOBS, (Filter("status", "==", "SUCCEEDED"),))
    await services.docs.close()
    calls = {op: after.get(op, 0) - before.get(op, 0) for op in after}
    return {
        "workers": workers,
        "jobs": jobs,
        "succeeded": succeeded,
        "submitted": len(ids),
        "submit_per_second": jobs / submit_seconds,
        "seconds": elapsed,
        "cancels_to_stop": cancels,
        "jobs_per_second": jobs / elapsed,
        "ms_per_job": elapsed / jobs * 1000,
        "docstore_calls_per_job": {op: round(n / jobs, 3) for op, n in sorted(calls.items()) if n},
    }


async def generator_only(data_dir: Path, jobs: int) -> dict[str, Any]:
    """The same text requests straight into the generator, with a no-op progress reporter."""
    services, actor = await _setup(data_dir, 1)
    runner = build_runner(services)
    docs = [await services.desk.submit(actor, JobKind.TEXT, _raw(i)) for i in range(min(jobs, 50))]
    requests = [await runner._request_for(doc.data) for doc in docs]
    await services.docs.close()

    async def report(progress: Progress) -> None:
        return None

    for request in requests[:5]:  # warm-up
        await services.generator.generate(request, report)
    start = time.perf_counter()
    for i in range(jobs):
        await services.generator.generate(requests[i % len(requests)], report)
    elapsed = time.perf_counter() - start
    return {"jobs": jobs, "ms_per_job": elapsed / jobs * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--generator-only", action="store_true")
    args = parser.parse_args()
    if args.generator_only:
        result = asyncio.run(generator_only(args.data_dir, args.jobs))
    else:
        result = asyncio.run(drain(args.data_dir, args.workers, args.jobs))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
