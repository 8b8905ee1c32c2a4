"""GenMedia Studio benchmarks, each side by side with its baseline in the same run.

    .venv/bin/python bench/run.py              # full run (about 1.5 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick      # shorter, for a smoke check
    .venv/bin/python bench/run.py --only 1,4   # some benchmarks only
    .venv/bin/python bench/run.py --out FILE   # also write the report (markdown) to FILE

1. HTTP `{ me { id } }` with a bearer token: `genmedia serve` vs a bare Starlette JSON endpoint.
2. A 100-asset page: X-Docstore-Calls and latency.
3. jobProgress write → receive latency and spread with 1, 10, 100 subscribers.
4. 1,000 subscribers on one job: first → last receiver spread, studio vs a bare broadcaster.
5. Engine throughput (in-process, local generator at speed 0) with 1, 2, 4 workers.
6. Start to /readyz 200, and idle RSS.
7. On the Firestore emulator: jobProgress write → receive with 1, 10, 100 subscribers (one listener
   per job per process), and the docstore calls of a 100-asset page (bench/on_firestore.py).

Targets print HOLDS or MISSES; they are not assertions. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import bench.* from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx

from bench import httpload
from bench.common import (
    LIFTED_LIMITS,
    PYTHON,
    ROOT,
    child_env,
    free_port,
    median,
    percentile,
    raise_nofile,
    rss_mb,
    stop_process,
    verdict,
    wait_status,
)
from bench.subs import fanout

EMAIL = "bench@example.com"
ME = '{"query":"{ me { id } }"}'
PAGE = "{ assets(first:100) { edges { node { id url owner { id } job { id status } } } totalCount } }"

# Targets
HTTP_RATIO = 0.4
PAGE_CALLS = 4
SPREAD_RATIO = 3.0
JOBS_PER_SECOND = 100.0
START_SECONDS = 1.5
RSS_MB = 150.0


@dataclass(frozen=True)
class Plan:
    http_seconds: float
    warmup_seconds: float
    starts: int
    page_requests: int
    events: int
    big_fanout: int
    engine_jobs: int


FULL = Plan(
    http_seconds=8, warmup_seconds=2, starts=5, page_requests=30, events=50, big_fanout=1000, engine_jobs=400
)
QUICK = Plan(
    http_seconds=3, warmup_seconds=1, starts=3, page_requests=10, events=15, big_fanout=300, engine_jobs=100
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes


class Server:
    """A server process we started (its own session), on a free port, logging to a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], port: int, log_path: Path) -> None:
        self.name, self.args, self.env, self.port, self.log_path = name, args, env, port, log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> float:
        """Start, wait for /readyz 200; seconds from spawn to the first 200."""
        with self.log_path.open("ab") as handle:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                self.args,
                env=self.env,
                cwd=ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            ready = wait_status(self.port, "/readyz", self.process, timeout=60)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{self.log_path.read_text()[-2000:]}") from None
        return ready - self.started_at

    def stop(self) -> float:
        """SIGTERM and wait; seconds it took to exit."""
        start = time.monotonic()
        stop_process(self.process, timeout=20)
        return time.monotonic() - start


def studio_server(data_dir: Path, work: Path, workers: int, extra: dict[str, str] | None = None) -> Server:
    from tests.support.server import studio_env

    port = free_port()
    env = studio_env(data_dir, port, {**LIFTED_LIMITS, "GENMEDIA_WORKERS": str(workers), **(extra or {})})
    return Server("studio", [PYTHON, "-m", "cli", "serve"], env, port, work / f"serve-{port}.log")


def bare_server(work: Path) -> Server:
    port = free_port()
    args = [PYTHON, "-m", "bench.bare_app", "--port", str(port)]
    return Server("bare", args, child_env(), port, work / f"bare-{port}.log")


# ------------------------------------------------------------------ GraphQL helpers


def gql(
    client: httpx.Client, query: str, token: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    return client.post(
        "/v1/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )


def gql_data(client: httpx.Client, query: str, token: str, variables: dict[str, Any] | None = None) -> Any:
    response = gql(client, query, token, variables)
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"GraphQL call failed: {response.status_code} {response.text[:500]}")
    return body["data"]


def mint(data_dir: Path) -> str:
    from tests.support.server import mint_token

    return asyncio.run(mint_token(data_dir, EMAIL, hours=2))


# ------------------------------------------------------------------ 2. assets for the page


def create_assets(data_dir: Path, work: Path, wanted: int) -> dict[str, Any]:
    """Text jobs through the API of a serve with 2 workers at GENMEDIA_LOCAL_SPEED=0."""
    server = studio_server(data_dir, work, 2, {"GENMEDIA_LOCAL_SPEED": "0"})
    server.start()
    try:
        seeded = seed_text_assets(server, mint(data_dir), wanted, wait_seconds=90)
    finally:
        stop_seconds = server.stop()
    return {**seeded, "stop_seconds": stop_seconds}


def seed_text_assets(server: Server, token: str, wanted: int, *, wait_seconds: float) -> dict[str, Any]:
    """Submit `wanted` text jobs (8 at a time), then wait until the caller's library holds them."""
    mutation = "mutation($input: GenerateTextInput!) { generateText(input: $input) { id } }"

    async def submit_all() -> None:
        limits = httpx.Limits(max_connections=8)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
            gate = asyncio.Semaphore(8)

            async def one(i: int) -> None:
                variables = {"input": {"prompt": f"asset number {i} for the page", "maxOutputTokens": 40}}
                async with gate:
                    response = await http.post(
                        "/v1/graphql", json={"query": mutation, "variables": variables}, headers=headers
                    )
                if response.status_code != 200 or response.json().get("errors"):
                    raise RuntimeError(f"generateText failed: {response.text[:300]}")

            await asyncio.gather(*(one(i) for i in range(wanted)))

    started = time.monotonic()
    asyncio.run(submit_all())
    submitted = time.monotonic() - started
    total = 0
    with httpx.Client(base_url=server.url, timeout=60) as http:
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            total = gql_data(http, "{ assets(first:1) { totalCount } }", token)["assets"]["totalCount"]
            if total >= wanted:
                break
            time.sleep(0.1)
    if total < wanted:
        raise RuntimeError(f"only {total} assets after {wait_seconds:.0f} s")
    seconds = time.monotonic() - started
    return {"assets": total, "seconds": seconds, "submit_seconds": submitted}


def page_bench(server: Server, token: str, requests: int) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        gql_data(http, "{ me { id } }", token)  # warm the token (the auth lookup is cached per token)
        calls: list[int] = []
        latencies: list[float] = []
        edges = total = 0
        for _ in range(requests):
            gql_data(http, "{ me { id } }", token)  # keep the token warm (5 s cache)
            t0 = time.perf_counter()
            response = gql(http, PAGE, token)
            latencies.append(time.perf_counter() - t0)
            body = response.json()
            if body.get("errors"):
                raise RuntimeError(f"page query failed: {body['errors']}")
            edges = len(body["data"]["assets"]["edges"])
            total = body["data"]["assets"]["totalCount"]
            calls.append(int(response.headers["x-docstore-calls"]))
    return {
        "edges": edges,
        "total": total,
        "calls_max": max(calls),
        "calls_median": median(calls),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "requests": requests,
    }


# ------------------------------------------------------------------ 1. HTTP


def http_bench(server: Server, token: str | None, plan: Plan) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    check = httpx.post(f"{server.url}/v1/graphql", content=ME, headers=headers, timeout=10)
    if check.status_code != 200 or not check.json().get("data", {}).get("me", {}).get("id"):
        raise RuntimeError(f"{server.name}: unexpected answer {check.status_code} {check.text[:300]}")
    url = f"{server.url}/v1/graphql"
    httpload.load(url, ME, headers, connections=32, duration=plan.warmup_seconds)  # warm-up
    return httpload.load(url, ME, headers, connections=32, duration=plan.http_seconds)


# ------------------------------------------------------------------ 3 and 4. subscriptions


def _job_data(owner_id: str) -> dict[str, Any]:
    """A job document shaped like JobDesk.submit makes it, already RUNNING under a lease no
    worker holds (the API runs with GENMEDIA_WORKERS=0, so nothing claims or sweeps it)."""
    from config import Settings
    from domain.clock import now_iso

    now = now_iso()
    return {
        "kind": "TEXT",
        "status": "RUNNING",
        "progress": 0.0,
        "stage": "generating",
        "message": None,
        "eta_seconds": None,
        "model": Settings.model_fields["model_text"].default,
        "input": {"prompt": "benchmark job", "systemPrompt": None, "temperature": 0.7, "maxOutputTokens": 64},
        "parameters": {"system_prompt": None, "temperature": 0.7, "max_output_tokens": 64},
        "asset_refs": {},
        "owner_id": owner_id,
        "team_id": None,
        "attempts": 1,
        "cached": False,
        "cost_usd": 0.0,
        "asset_ids": [],
        "error": None,
        "created_at": now,
        "updated_at": now,
        "started_at": now,
        "finished_at": None,
        "lease_owner": "bench-writer",
        "lease_expires_at": "2999-01-01T00:00:00.000000Z",
    }


def studio_fanout(
    server: Server, data_dir: Path, token: str, work: Path, subscribers: int, processes: int, events: int
) -> dict[str, Any]:
    """Events written straight into the studio's SQLite file from this process."""
    from backends.docstore.sqlite import SqliteDocStore
    from domain.clock import new_id, now_iso
    from domain.jobs import JOBS
    from domain.users import user_id_for

    async def run() -> dict[str, Any]:
        docs = SqliteDocStore(data_dir / "studio.db")
        try:
            job_id = new_id()
            await docs.create(JOBS, job_id, _job_data(user_id_for(EMAIL)))
            gid = base64.b64encode(f"Job:{job_id}".encode()).decode()

            async def trigger(seq: int, stamp: float) -> None:
                changes = {
                    "progress": round(seq / 1000, 4),
                    "message": f"bench:{seq}:{stamp:.6f}",
                    "updated_at": now_iso(),
                }
                await docs.update(JOBS, job_id, changes)

            async def finish() -> None:
                changes = {"status": "CANCELLED", "stage": "cancelled", "message": "end of benchmark"}
                await docs.update(JOBS, job_id, {**changes, "finished_at": now_iso()})

            return await fanout(
                ws_url=server.url.replace("http", "ws", 1) + "/v1/graphql",
                token=token,
                job_gid=gid,
                subscribers=subscribers,
                processes=processes,
                events=events,
                trigger=trigger,
                finish=finish,
                work_dir=work,
                label=f"studio-{subscribers}",
                server_pid=server.pid,
            )
        finally:
            await docs.close()

    return asyncio.run(run())


def bare_fanout(server: Server, work: Path, subscribers: int, processes: int, events: int) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:

            async def trigger(seq: int, stamp: float) -> None:
                await http.post("/broadcast", content=f"bench:{seq}:{stamp:.6f}")

            async def finish() -> None:
                await http.post("/complete")

            return await fanout(
                ws_url=server.url.replace("http", "ws", 1) + "/v1/graphql",
                token=None,
                job_gid="bench",
                subscribers=subscribers,
                processes=processes,
                events=events,
                trigger=trigger,
                finish=finish,
                work_dir=work,
                label=f"bare-{subscribers}",
                server_pid=server.pid,
            )

    return asyncio.run(run())


# ------------------------------------------------------------------ 5. engine


def engine_bench(work: Path, plan: Plan) -> dict[str, Any]:
    def run(*args: str) -> dict[str, Any]:
        data = Path(tempfile.mkdtemp(prefix="engine-", dir=work))
        out = subprocess.run(
            [PYTHON, "-m", "bench.engine", "--data-dir", str(data), *args],
            cwd=ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"engine bench failed: {out.stderr[-2000:]}")
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    generator = run("--generator-only", "--jobs", str(plan.engine_jobs))
    drains = {w: run("--workers", str(w), "--jobs", str(plan.engine_jobs)) for w in (1, 2, 4)}
    return {"generator": generator, "drains": drains}


# ------------------------------------------------------------------ report


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _http_section(add: Any, http: dict[str, Any]) -> None:
    ratio = http["studio"]["rps"] / http["bare"]["rps"]
    add("### 1. HTTP `{ me { id } }` with a bearer token, 32 connections (same request bytes to both)")
    add("")
    add("| server | req/s | p50 ms | p99 ms | requests | errors |")
    add("|---|---|---|---|---|---|")
    for name in ("studio", "bare"):
        r = http[name]
        add(
            f"| {name} | {fmt(r['rps'], 0)} | {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} "
            f"| {r['requests']} | {r['errors']} |"
        )
    add("")
    add(f"studio/bare = {ratio:.2f}x (target ≥ {HTTP_RATIO}x): **{verdict(ratio >= HTTP_RATIO)}**")


def _page_section(add: Any, page: dict[str, Any]) -> None:
    add(
        f"### 2. 100-asset page ({page['edges']} edges of {page['total']} assets, {page['requests']} requests)"
    )
    add("")
    add("| X-Docstore-Calls (max) | median | p50 ms | p99 ms |")
    add("|---|---|---|---|")
    add(f"| {page['calls_max']} | {page['calls_median']:g} | {fmt(page['p50_ms'])} | {fmt(page['p99_ms'])} |")
    add("")
    add(f"docstore calls ≤ {PAGE_CALLS}: **{verdict(page['calls_max'] <= PAGE_CALLS)}**")


def _subs_section(add: Any, subs: dict[int, dict[str, Any]], events: int) -> None:
    add(f"### 3. jobProgress: SQLite write → WebSocket receive ({events} events)")
    add("")
    add(
        "| subscribers | latency p50 ms | latency p99 ms | spread p50 ms | spread p99 ms "
        "| server CPU µs/delivery | events complete |"
    )
    add("|---|---|---|---|---|---|---|")
    for n, r in subs.items():
        add(
            f"| {n} | {fmt(r['latency_p50_ms'])} | {fmt(r['latency_p99_ms'])} | {fmt(r['spread_p50_ms'], 2)} "
            f"| {fmt(r['spread_p99_ms'], 2)} | {fmt(r['server_cpu_us_per_delivery'], 0)} "
            f"| {r['events_complete']}/{r['events']} |"
        )
    add("")
    add(
        "(no target. The write comes from another process, so it reaches the API through its 50 ms change-log poll.)"
    )


def _big_section(add: Any, big: dict[str, Any], subscribers: int, events: int) -> None:
    ratio = big["studio"]["spread_p99_ms"] / max(big["bare"]["spread_p99_ms"], 1e-9)
    add(f"### 4. {subscribers} subscribers on one job, {events} events, 2 client processes")
    add("")
    add(
        "| server | spread p50 ms | spread p99 ms | latency p50 ms | latency p99 ms "
        "| server CPU µs/delivery | connect s | events complete |"
    )
    add("|---|---|---|---|---|---|---|---|")
    for name in ("studio", "bare"):
        r = big[name]
        add(
            f"| {name} | {fmt(r['spread_p50_ms'])} | {fmt(r['spread_p99_ms'])} | {fmt(r['latency_p50_ms'])} "
            f"| {fmt(r['latency_p99_ms'])} | {fmt(r['server_cpu_us_per_delivery'], 0)} "
            f"| {fmt(r['connect_seconds'])} | {r['events_complete']}/{r['events']} |"
        )
    add("")
    add(
        f"studio/bare spread p99 = {ratio:.2f}x (target ≤ {SPREAD_RATIO}x): **{verdict(ratio <= SPREAD_RATIO)}**"
    )


def _engine_section(add: Any, engine: dict[str, Any], jobs: int) -> None:
    gen_ms = engine["generator"]["ms_per_job"]
    add(f"### 5. Engine: {jobs} queued text jobs drained in-process, GENMEDIA_LOCAL_SPEED=0")
    add("")
    add("| workers | jobs/s | ms per job | engine overhead ms/job | docstore calls per job |")
    add("|---|---|---|---|---|")
    for w, r in engine["drains"].items():
        calls = ", ".join(f"{op} {n:g}" for op, n in r["docstore_calls_per_job"].items())
        add(
            f"| {w} | {fmt(r['jobs_per_second'])} | {fmt(r['ms_per_job'], 2)} "
            f"| {fmt(r['ms_per_job'] - gen_ms, 2)} | {calls} |"
        )
    add("")
    add(f"generator alone: {fmt(gen_ms, 3)} ms per text job (overhead = ms per job - generator)")
    two = engine["drains"][2]["jobs_per_second"]
    add(f"≥ {JOBS_PER_SECOND:g} jobs/s with 2 workers: **{verdict(two >= JOBS_PER_SECOND)}**")
    cancels = max(r.get("cancels_to_stop", 1) for r in engine["drains"].values())
    if cancels > 1:
        add(f"(stopping run_workers took {cancels} cancels each time: see cancel_hard in bench/engine.py)")


def _start_section(add: Any, start: dict[str, Any]) -> None:
    add(f"### 6. Start to /readyz 200 ({len(start['samples'])} starts) and RSS")
    add("")
    add("| start median s | samples s | idle RSS MB | RSS at the end of the run MB |")
    add("|---|---|---|---|")
    samples = ", ".join(f"{s:.2f}" for s in start["samples"])
    end = fmt(start["rss_end_mb"]) if "rss_end_mb" in start else "-"
    add(f"| {start['median']:.2f} | {samples} | {fmt(start['rss_idle_mb'])} | {end} |")
    add("")
    add(f"start ≤ {START_SECONDS} s: **{verdict(start['median'] <= START_SECONDS)}**; ")
    add(f"idle RSS ≤ {RSS_MB:g} MB: **{verdict(start['rss_idle_mb'] <= RSS_MB)}**")


def _firestore_section(add: Any, fs: dict[str, Any], events: int) -> None:
    from bench.on_firestore import section

    section(add, fs, events)


def report(results: dict[str, Any], plan: Plan, command: str) -> str:
    lines: list[str] = []
    add = lines.append
    machine = results["machine"]
    add(f"Run {machine['date']} — `{command}`")
    add("")
    add(
        f"Machine: {machine['nproc']} cores ({machine['cpu']}), Python {machine['python']}, "
        f"{machine['loadgen']}; code at {machine['git']}; wall time of the run "
        f"{fmt(results['wall_seconds'], 0)} s; load average (1 min) {machine['load_before']} before, "
        f"{results.get('load_after', '?')} after (other processes on the machine add noise)."
    )
    sections = [
        ("http", lambda r: _http_section(add, r)),
        ("page", lambda r: _page_section(add, r)),
        ("subs", lambda r: _subs_section(add, r, plan.events)),
        ("big", lambda r: _big_section(add, r, plan.big_fanout, plan.events)),
        ("engine", lambda r: _engine_section(add, r, plan.engine_jobs)),
        ("start", lambda r: _start_section(add, r)),
        ("firestore", lambda r: _firestore_section(add, r, plan.events)),
    ]
    for key, render in sections:
        if key in results:
            add("")
            render(results[key])
    if results.get("notes"):
        add("")
        for note in results["notes"]:
            add(f"- {note}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main


def machine_info() -> dict[str, Any]:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        git = f"{head}" + (f" + {len(dirty.splitlines())} modified files" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        git = "unknown"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadgen": "wrk" if httpload.have_wrk() else "python httpx load client",
        "git": git,
        "load_before": loadavg(),
    }


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def run_all(plan: Plan, only: set[int], work: Path, results: dict[str, Any]) -> None:
    data_dir = work / "data"
    running: list[Server] = []
    try:
        if 2 in only:
            log("2. creating 100 assets (serve with 2 workers, GENMEDIA_LOCAL_SPEED=0)")
            made = create_assets(data_dir, work, 100)
            if made["stop_seconds"] > 5:
                results["notes"].append(
                    f"the serve with workers took {made['stop_seconds']:.1f} s to stop on SIGTERM"
                )
        if only & {1, 2, 3, 4, 6}:
            starts = plan.starts if 6 in only else 1
            log(f"6. {starts} start(s) of genmedia serve (GENMEDIA_WORKERS=0)")
            samples: list[float] = []
            studio: Server | None = None
            for i in range(starts):
                server = studio_server(data_dir, work, 0)
                samples.append(server.start())
                if i < starts - 1:
                    server.stop()
                else:
                    studio = server
                    running.append(server)
            assert studio is not None
            token = mint(data_dir)
            if 6 in only:
                with httpx.Client(base_url=studio.url, timeout=30) as http:
                    for _ in range(10):
                        gql_data(http, "{ me { id } }", token)
                    for _ in range(3):
                        gql_data(http, PAGE, token)
                time.sleep(0.5)
                results["start"] = {
                    "samples": samples,
                    "median": median(samples),
                    "rss_idle_mb": rss_mb(studio.pid),
                }
            if 2 in only:
                log("2. the 100-asset page")
                results["page"] = page_bench(studio, token, plan.page_requests)
            bare = bare_server(work)
            if only & {1, 4}:
                bare.start()
                running.append(bare)
            if 1 in only:
                log("1. HTTP load: studio")
                http_studio = http_bench(studio, token, plan)
                log("1. HTTP load: bare Starlette")
                http_bare = http_bench(bare, token, plan)  # the same request bytes, token included
                results["http"] = {"studio": http_studio, "bare": http_bare}
            if 3 in only:
                results["subs"] = {}
                for n in (1, 10, 100):
                    log(f"3. jobProgress with {n} subscriber(s)")
                    results["subs"][n] = studio_fanout(studio, data_dir, token, work, n, 1, plan.events)
            if 4 in only:
                log(f"4. {plan.big_fanout} subscribers: studio")
                big_studio = studio_fanout(studio, data_dir, token, work, plan.big_fanout, 2, plan.events)
                log(f"4. {plan.big_fanout} subscribers: bare broadcaster")
                big_bare = bare_fanout(bare, work, plan.big_fanout, 2, plan.events)
                results["big"] = {"studio": big_studio, "bare": big_bare}
            if "start" in results:
                results["start"]["rss_end_mb"] = rss_mb(studio.pid)
            for server in running:
                server.stop()
            running.clear()
        if 5 in only:
            log("5. engine throughput (in-process)")
            results["engine"] = engine_bench(work, plan)
        if 7 in only:
            from bench.on_firestore import firestore_bench

            log("7. the studio on the Firestore emulator")
            results["firestore"] = firestore_bench(work, plan)
    finally:
        for server in running:
            server.stop()


RUN_BUDGET_SECONDS = 290


def _out_of_time(signum: int, frame: Any) -> None:
    raise TimeoutError(f"the benchmark run exceeded {RUN_BUDGET_SECONDS} s; stopping its processes")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs and 300 instead of 1,000 sockets")
    parser.add_argument("--only", help="comma-separated benchmark numbers to run (default: all, 1-7)")
    parser.add_argument("--out", type=Path, help="also write the report (markdown) to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    only = {int(part) for part in args.only.split(",")} if args.only else {1, 2, 3, 4, 5, 6, 7}
    command = " ".join([".venv/bin/python bench/run.py", *sys.argv[1:]])
    raise_nofile(20000)
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="genmedia-bench-"))
    results: dict[str, Any] = {"machine": machine_info(), "notes": []}
    log(f"work dir {work}")
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(RUN_BUDGET_SECONDS)  # everything is bounded: servers and clients are stopped in `finally`s
    try:
        run_all(plan, only, work, results)
    except TimeoutError as error:
        results["notes"].append(f"incomplete run: {error}")
    finally:
        signal.alarm(0)
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["wall_seconds"] = time.monotonic() - began
    results["load_after"] = loadavg()
    text = report(results, plan, command)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
