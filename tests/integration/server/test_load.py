"""A bounded load test: 64 keep-alive clients for ~10 s, zero errors, steady memory."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.server import infer_body, raw_request, read_response, rss_bytes

CLIENTS = 64
WARMUP_S = 2.0
DURATION_S = 8.0
# Allocator caches and a few lazily built objects may still grow a little after warm-up;
# a leak of even 1 KiB per request would pass this by far (tens of thousands of requests).
MAX_RSS_GROWTH = 16 * 1024 * 1024


async def client(
    port: int, body: bytes, stop: float, statuses: dict[int, int], counts: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = raw_request("POST", "/v2/models/digits/infer", body)
    try:
        while time.monotonic() < stop:
            writer.write(raw)
            status, _, _ = await read_response(reader)
            statuses[status] = statuses.get(status, 0) + 1
            counts[0] += 1
    finally:
        writer.close()


def test_64_clients_for_10_seconds(
    start_server: Any, digits_dir: Path, digits_images: np.ndarray
) -> None:
    server = start_server(
        {
            "MODEL_DIR": str(digits_dir),
            "INFERSTACK_MAX_BATCH_SIZE": "64",
            "INFERSTACK_THREADS": "1",
        }
    )
    rng = np.random.default_rng(0)
    bodies = [
        infer_body({"image": digits_images[i : i + int(rng.integers(1, 4))]}) for i in range(64)
    ]
    statuses: dict[int, int] = {}
    counts = [0]
    rss: list[int] = []

    async def run() -> None:
        stop = time.monotonic() + WARMUP_S + DURATION_S
        clients = [
            asyncio.ensure_future(client(server.port, bodies[i], stop, statuses, counts))
            for i in range(CLIENTS)
        ]
        await asyncio.sleep(WARMUP_S)
        rss.append(rss_bytes(server.pid))
        warm = counts[0]
        await asyncio.gather(*clients)
        rss.append(rss_bytes(server.pid))
        counts.append(counts[0] - warm)

    asyncio.run(run())
    assert statuses == {200: counts[0]}, statuses
    assert counts[1] > 1000, f"only {counts[1]} requests in {DURATION_S} s"
    assert rss[1] - rss[0] < MAX_RSS_GROWTH, f"RSS grew {(rss[1] - rss[0]) / 2**20:.1f} MiB"
    metrics = server.metrics()
    assert metrics['inferstack_requests_total{model="digits",outcome="ok"}'] == counts[0]
    assert metrics["inferstack_batch_size_count"] < counts[0]  # requests were batched
    print(
        f"\n{counts[0]} requests, {counts[1] / DURATION_S:.0f}/s after warm-up,"
        f" RSS {rss[0] / 2**20:.1f} -> {rss[1] / 2**20:.1f} MiB"
    )
