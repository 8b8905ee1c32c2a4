"""7. The studio on the Firestore emulator (GENMEDIA_DOCSTORE=firestore; media stay local files).

- jobProgress write → WebSocket receive latency with 1, 10 and 100 subscribers: the bench process
  updates a RUNNING job document in Firestore (`FirestoreDocStore.update`, through the emulator);
  the API process (GENMEDIA_WORKERS=0) hears it through its `on_snapshot` listener and fans it out.
  One listener per job per process: the server's thread count is sampled with no subscriber and
  while each group is connected (every Firestore listener runs its own consumer thread, so the
  extra threads would grow with the subscribers if each socket opened its own listener).
- The 100-asset page: X-Docstore-Calls per request, and the operations of one request from the
  `genmedia_docstore_calls_total` counters in /metrics (the users and jobs DataLoaders should be
  one `get_many` each).

The 100 assets are made by real text jobs on a serve with 2 workers at GENMEDIA_LOCAL_SPEED=0, so
they also give the engine's rate on Firestore. Users come from `genmedia token` on the same settings.
Without the emulator (or Java) the step is skipped with a note.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench import run as studio_bench
from bench.common import LIFTED_LIMITS, PYTHON, ROOT, percentile
from bench.subs import fanout

EMAIL = studio_bench.EMAIL
# One bench user makes 100 jobs and holds 100 subscriptions: above the per-user defaults.
_METRIC = re.compile(r'^genmedia_docstore_calls_total\{operation="([a-z_]+)"\} ([0-9.e+]+)$', re.M)


def firestore_bench(
    work: Path, plan: studio_bench.Plan, subscribers: tuple[int, ...] = (1, 10, 100)
) -> dict[str, Any]:
    from tests.support.firestore_emulator import (
        EmulatorMissing,
        find_emulator,
        java_available,
        running_emulator,
    )

    try:
        script = find_emulator()
        java_available()
    except EmulatorMissing as exc:
        return {"skipped": str(exc)}
    with running_emulator(work / "firestore", script) as emulator:
        env = {
            **LIFTED_LIMITS,
            "GENMEDIA_DOCSTORE": "firestore",
            "GOOGLE_CLOUD_PROJECT": f"genmedia-bench-{secrets.token_hex(3)}",
            "FIRESTORE_EMULATOR_HOST": emulator.host,
        }
        data_dir = work / "firestore-data"
        results: dict[str, Any] = {"emulator": emulator.host}
        studio_bench.log("7. Firestore: creating 100 assets (serve with 2 workers, GENMEDIA_LOCAL_SPEED=0)")
        results["seed"] = seed_assets(data_dir, work, env, 100)
        server = studio_bench.studio_server(data_dir, work, 0, env)
        results["start_seconds"] = server.start()
        try:
            token = cli_token(data_dir, env)
            studio_bench.log("7. Firestore: the 100-asset page")
            results["page"] = studio_bench.page_bench(server, token, plan.page_requests)
            results["page_operations"] = page_operations(server, token)
            results["threads_idle"] = threads(server.pid)
            results["subs"] = {}
            for n in subscribers:
                studio_bench.log(f"7. Firestore: jobProgress with {n} subscriber(s)")
                results["subs"][n] = firestore_fanout(server, env, token, work, n, plan.events)
        finally:
            server.stop()
    return results


def cli_token(data_dir: Path, env: dict[str, str]) -> str:
    """`genmedia token` on the same settings: the user is made ACTIVE in Firestore."""
    from tests.support.server import studio_env

    out = subprocess.run(
        [PYTHON, "-m", "cli", "token", "--email", EMAIL, "--hours", "2"],
        env=studio_env(data_dir, 0, env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"genmedia token failed: {out.stderr[-1000:]}")
    return out.stdout.strip()


def seed_assets(data_dir: Path, work: Path, env: dict[str, str], wanted: int) -> dict[str, Any]:
    """Text jobs through the API of a serve with 2 workers at GENMEDIA_LOCAL_SPEED=0, on Firestore."""
    server = studio_bench.studio_server(data_dir, work, 2, {**env, "GENMEDIA_LOCAL_SPEED": "0"})
    server.start()
    try:
        seeded = studio_bench.seed_text_assets(server, cli_token(data_dir, env), wanted, wait_seconds=120)
    finally:
        server.stop()
    return {**seeded, "jobs_per_second": seeded["assets"] / seeded["seconds"]}


def docstore_counters(server: studio_bench.Server) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {operation: float(value) for operation, value in _METRIC.findall(text)}


def page_operations(server: studio_bench.Server, token: str) -> dict[str, Any]:
    """The docstore operations of one page request, from /metrics around it (nothing else runs)."""
    with httpx.Client(base_url=server.url, timeout=60) as http:
        studio_bench.gql_data(http, "{ me { id } }", token)  # the token's user is cached for 5 s
        before = docstore_counters(server)
        response = studio_bench.gql(http, studio_bench.PAGE, token)
        after = docstore_counters(server)
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"page query failed: {body['errors']}")
    operations = {
        op: int(after[op] - before.get(op, 0.0)) for op in after if after[op] != before.get(op, 0.0)
    }
    return {
        "header": int(response.headers["x-docstore-calls"]),
        "operations": operations,
        "edges": len(body["data"]["assets"]["edges"]),
    }


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def firestore_fanout(
    server: studio_bench.Server, env: dict[str, str], token: str, work: Path, subscribers: int, events: int
) -> dict[str, Any]:
    """jobProgress fan-out with the events written to Firestore by this process."""
    import os

    from backends.docstore.firestore import FirestoreDocStore
    from domain.clock import new_id, now_iso
    from domain.jobs import JOBS
    from domain.users import user_id_for

    os.environ["FIRESTORE_EMULATOR_HOST"] = env["FIRESTORE_EMULATOR_HOST"]
    sampled: list[int] = []
    write_ms: list[float] = []

    async def run() -> dict[str, Any]:
        docs = FirestoreDocStore(env["GOOGLE_CLOUD_PROJECT"])
        try:
            job_id = new_id()
            await docs.create(JOBS, job_id, studio_bench._job_data(user_id_for(EMAIL)))
            gid = base64.b64encode(f"Job:{job_id}".encode()).decode()

            async def trigger(seq: int, stamp: float) -> None:
                if seq in (1, events):
                    sampled.append(threads(server.pid))  # every subscriber is connected
                changes = {
                    "progress": round(seq / 1000, 4),
                    "message": f"bench:{seq}:{stamp:.6f}",
                    "updated_at": now_iso(),
                }
                await docs.update(JOBS, job_id, changes)
                write_ms.append((time.monotonic() - stamp) * 1000)

            async def finish() -> None:
                changes = {"status": "CANCELLED", "stage": "cancelled", "message": "end of benchmark"}
                await docs.update(JOBS, job_id, {**changes, "finished_at": now_iso()})

            return await fanout(
                ws_url=server.url.replace("http", "ws", 1) + "/v1/graphql",
                token=token,
                job_gid=gid,
                subscribers=subscribers,
                processes=1,
                events=events,
                trigger=trigger,
                finish=finish,
                work_dir=work,
                label=f"firestore-{subscribers}",
                server_pid=server.pid,
            )
        finally:
            await docs.close()

    result = asyncio.run(run())
    result["threads_connected"] = max(sampled) if sampled else -1
    result["write_p50_ms"] = percentile(write_ms, 50)
    return result


# ------------------------------------------------------------------ report


def section(add: Any, fs: dict[str, Any], events: int) -> None:
    fmt = studio_bench.fmt
    add(f"### 7. On the Firestore emulator: jobProgress write → receive ({events} events), 100-asset page")
    add("")
    if "skipped" in fs:
        add(f"skipped: {fs['skipped']}")
        return
    seed = fs["seed"]
    add(
        f"Seeding: {seed['assets']} text jobs through a serve with 2 workers took {fmt(seed['seconds'])} s "
        f"({fmt(seed['jobs_per_second'])} jobs/s on the emulator). API-only serve: start → /readyz "
        f"{fs['start_seconds']:.2f} s; {fs['threads_idle']} threads with no subscriber."
    )
    add("")
    add(
        "| subscribers | latency p50 ms | latency p99 ms | spread p50 ms | spread p99 ms "
        "| write p50 ms | server CPU µs/delivery | server threads connected | events complete |"
    )
    add("|---|---|---|---|---|---|---|---|---|")
    for n, r in fs["subs"].items():
        add(
            f"| {n} | {fmt(r['latency_p50_ms'])} | {fmt(r['latency_p99_ms'])} | {fmt(r['spread_p50_ms'], 2)} "
            f"| {fmt(r['spread_p99_ms'], 2)} | {fmt(r['write_p50_ms'])} "
            f"| {fmt(r['server_cpu_us_per_delivery'], 0)} | {r['threads_connected']} "
            f"| {r['events_complete']}/{r['events']} |"
        )
    add("")
    page, ops = fs["page"], fs["page_operations"]
    add("| X-Docstore-Calls (max) | median | p50 ms | p99 ms | one request, by operation (/metrics) |")
    add("|---|---|---|---|---|")
    by_op = ", ".join(f"{op} {n}" for op, n in sorted(ops["operations"].items()))
    add(
        f"| {page['calls_max']} | {page['calls_median']:g} | {fmt(page['p50_ms'])} | {fmt(page['p99_ms'])} "
        f"| {by_op} |"
    )
    add("")
    holds = page["calls_max"] <= studio_bench.PAGE_CALLS
    add(f"docstore calls ≤ {studio_bench.PAGE_CALLS} on Firestore: **{studio_bench.verdict(holds)}**")
