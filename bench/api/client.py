"""A light load generator: keep-alive HTTP/1.1 connections and requests encoded in advance.

httpx spends more CPU per request than the bare endpoint does to answer it, so on a 2-core
machine it, not the server, sets the ceiling. This client does almost nothing per request
(write prepared bytes, read the status line and Content-Length bytes), so the cores go to the
servers being compared. It speaks only what these servers answer: HTTP/1.1 with Content-Length.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass


def lookup_request(host: str, port: int, token: str, ident: str) -> bytes:
    body = json.dumps({"ident": ident}).encode()
    head = (
        f"POST /api/v1/personkort HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Result:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    errors_5xx: int  # 5xx answers and failed connections
    statuses: dict[int, int]


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def run_load(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    rate: float | None,
    seconds: float,
    connections: int = 32,
    in_order: bool = False,
) -> Result:
    """Send ``requests`` (random picks, or each once in order) for ``seconds``: at a fixed
    arrival rate, each timed from when it was due, so a stalled server shows in the latency
    (no coordinated omission); or, with ``rate=None``, from ``connections`` clients as fast as
    the server answers."""
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(requests)

    async def one(due: float) -> bool:
        request = next(queue, None) if in_order else random.choice(requests)
        if request is None:
            return False
        reader, writer = await pool.get()
        try:
            status = await _exchange(reader, writer, request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status = 599
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
        pool.put_nowait((reader, writer))
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1
        return True

    begin = time.perf_counter()
    if rate:
        tasks = []
        n = 0
        while (now := time.perf_counter() - begin) < seconds:
            due = n / rate
            if due > now:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(one(begin + due)))
            n += 1
        await asyncio.gather(*tasks)
    else:

        async def client() -> None:
            while time.perf_counter() - begin < seconds and await one(time.perf_counter()):
                pass

        await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - begin
    while not pool.empty():
        pool.get_nowait()[1].close()
    latencies.sort()
    return Result(
        requests=len(latencies),
        per_second=len(latencies) / elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        errors_5xx=sum(n for s, n in statuses.items() if s >= 500),
        statuses=statuses,
    )
