"""What GENMEDIA_EMBEDDINGS=local costs: memory of the loaded model, and time to embed one asset.

    .venv/bin/python bench/embeddings.py        # about half a minute; needs the `embeddings` extra

One process: VmRSS before and after the first embedding (which loads the model), the load time,
then 100 assets embedded one at a time as the runner does (median and p95), and 100 more in one
call (a backfill's pace). Numbers move with the machine's load; the memory much less than the time.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.embeddings import LocalEmbedder
from bench.common import median, percentile, rss_mb
from domain.embeddings import AssetEmbedder

PROMPTS = [
    f"a {colour} {thing} in the {place}, {style}"
    for colour in ("red", "blue", "golden", "pale", "dark")
    for thing in ("fox", "lantern", "harbour", "bowl of noodles")
    for place in ("snow", "forest", "city at night", "desert", "rain")
    for style in ("watercolour",)
]


async def main() -> None:
    pid = os.getpid()
    before = rss_mb(pid)
    embedder = LocalEmbedder()
    per_asset = AssetEmbedder(embedder)
    started = time.perf_counter()
    await per_asset({"prompt": "warm up"})
    load = time.perf_counter() - started
    loaded = rss_mb(pid)
    times = []
    for prompt in PROMPTS:
        started = time.perf_counter()
        vector = await per_asset({"prompt": prompt, "tags": ["bench"], "title": None})
        times.append(time.perf_counter() - started)
        assert vector is not None
    started = time.perf_counter()
    await embedder.embed(PROMPTS)
    batch = (time.perf_counter() - started) / len(PROMPTS)
    print(f"RSS before loading: {before:.0f} MB; after loading and first use: {loaded:.0f} MB")
    print(f"after {len(PROMPTS)} assets: {rss_mb(pid):.0f} MB")
    print(f"first use (loads the model): {load:.1f} s")
    print(
        f"one asset at a time: median {median(times) * 1000:.1f} ms, p95 {percentile(times, 95) * 1000:.1f} ms"
    )
    print(f"in one batch of {len(PROMPTS)}: {batch * 1000:.1f} ms per asset")


if __name__ == "__main__":
    asyncio.run(main())
