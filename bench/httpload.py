"""HTTP load: `wrk` with a Lua POST script when installed, else an asyncio httpx client process.

Both give requests/s and p50/p99 latency in ms. As a module
(`python -m bench.httpload --url U --body B --header 'K: V' --connections 32 --duration 8`)
it is the fallback client, printing one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT, child_env, percentile

_LUA = """
wrk.method = "POST"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors, summary.errors.status))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def load(
    url: str,
    body: str,
    headers: Mapping[str, str],
    *,
    connections: int = 32,
    duration: float = 8.0,
    use_wrk: bool | None = None,
) -> dict[str, Any]:
    """One load run: {rps, p50_ms, p99_ms, requests, errors, tool}."""
    if use_wrk if use_wrk is not None else have_wrk():
        return _wrk(url, body, headers, connections, duration)
    return _python(url, body, headers, connections, duration)


def _wrk(
    url: str, body: str, headers: Mapping[str, str], connections: int, duration: float
) -> dict[str, Any]:
    lines = "\n".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(_LUA.format(body=_lua_string(body), headers=lines))
        script = handle.name
    try:
        seconds = max(1, round(duration))
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    finally:
        Path(script).unlink(missing_ok=True)
    match = re.search(r"^BENCH (.*)$", out, re.MULTILINE)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    fields = {k: int(v) for k, v in (part.split("=") for part in match.group(1).split())}
    return {
        "rps": fields["requests"] / (fields["duration_us"] / 1e6),
        "p50_ms": fields["p50_us"] / 1000,
        "p99_ms": fields["p99_us"] / 1000,
        "requests": fields["requests"],
        "errors": fields["errors"] + fields["non2xx"],
        "tool": f"wrk -t1 -c{connections} -d{seconds}s",
    }


def _python(
    url: str, body: str, headers: Mapping[str, str], connections: int, duration: float
) -> dict[str, Any]:
    args = [PYTHON, "-m", "bench.httpload", "--url", url, "--body", body]
    for key, value in headers.items():
        args += ["--header", f"{key}: {value}"]
    args += ["--connections", str(connections), "--duration", str(duration)]
    out = subprocess.run(
        args, capture_output=True, text=True, cwd=ROOT, env=child_env(), timeout=duration + 60, check=True
    ).stdout
    result = dict(json.loads(out.strip().splitlines()[-1]))
    result["tool"] = f"python httpx client, {connections} connections, {duration:g}s"
    return result


async def _client(
    url: str, body: str, headers: dict[str, str], connections: int, duration: float
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as http:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    response = await http.post(url, content=body, headers=headers)
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "requests": len(latencies),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args()
    headers = {"Content-Type": "application/json"}
    for header in args.header:
        key, _, value = header.partition(":")
        headers[key.strip()] = value.strip()
    result = asyncio.run(_client(args.url, args.body, headers, args.connections, args.duration))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
