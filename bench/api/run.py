"""Lookup latency and throughput of the real API on PostgreSQL with auditing on, beside a bare
FastAPI endpoint returning a static card of the same size, on this machine in the same run.

    .venv/bin/python -m bench.api.run [--persons 20000] [--rate 500] [--seconds 20]

Each server runs under uvicorn in its own process (one worker per core); the load comes from
this process (asyncio + httpx, a fixed arrival rate for latency, then as fast as it goes for
throughput) over loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

PG = os.environ.get("PERSONKORT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def prepare(persons: int, folder: Path) -> tuple[str, list[str]]:
    from adapters import read_drop
    from adapters.drop import fingerprint
    from personkort.nightly import run_night
    from personkort.store import open_engine
    from simulator import simulate

    schema = "bench_api"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    simulate(persons, 7, 1, folder / "registers")
    drop = folder / "registers" / "night1"
    engine = open_engine(url)
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    with engine.connect() as conn:
        idents = [
            i
            for (i,) in conn.execute(
                sa.text(
                    "SELECT DISTINCT ident FROM source_record WHERE ident IS NOT NULL "
                    "AND register <> 'kommune' LIMIT 5000"
                )
            )
        ]
    return url, idents


def start(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            *args,
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


async def load(
    url: str, token: str, idents: list[str], rate: float | None, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    timeout = httpx.Timeout(30, pool=None)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        headers = {"Authorization": f"Bearer {token}"}

        async def one() -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                response = await client.post(
                    "/api/v1/personkort", json={"ident": random.choice(idents)}, headers=headers
                )
                failed = response.status_code >= 500
            except httpx.HTTPError:
                failed = True
            latencies.append(time.perf_counter() - started)
            errors += failed

        begin = time.perf_counter()
        tasks = []
        if rate:
            n = 0
            while (now := time.perf_counter() - begin) < seconds:
                due = n / rate
                if due > now:
                    await asyncio.sleep(due - now)
                tasks.append(asyncio.create_task(one()))
                n += 1
            await asyncio.gather(*tasks)
        else:

            async def worker() -> None:
                while time.perf_counter() - begin < seconds:
                    await one()

            await asyncio.gather(*(worker() for _ in range(32)))
        elapsed = time.perf_counter() - begin
    latencies.sort()
    return {
        "requests": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "errors_5xx": errors,  # 5xx answers and requests that timed out
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    from api.auth import mint
    from api.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["PERSONKORT_DATA_DIR"] = str(folder / "data")  # one key ring for all
        store, idents = prepare(args.persons, folder)
        env = {
            **os.environ,
            "PERSONKORT_STORE_URL": store,
            "PERSONKORT_DATA_DIR": str(folder / "data"),
        }
        settings = Settings(data_dir=str(folder / "data"))
        token = mint(
            settings,
            {
                "sub": "Z1",
                "employer": "stat",
                "office": "nav-oslo",
                "roles": ["veileder", "kode6", "skjermet"],
            },
        )
        results = {}
        server = start(["api.app:create_app", "--factory"], env, 18731)
        try:
            card = httpx.post(
                "http://127.0.0.1:18731/api/v1/personkort",
                json={"ident": idents[0], "purpose": "bench"},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            (folder / "card.json").write_text(json.dumps(card))
            results["personkort at fixed rate"] = asyncio.run(
                load("http://127.0.0.1:18731", token, idents, args.rate, args.seconds)
            )
            results["personkort flat out"] = asyncio.run(
                load("http://127.0.0.1:18731", token, idents, None, args.seconds)
            )
        finally:
            server.terminate()
            server.wait()
        bare = start(
            ["bench.api.bare:app"], {**env, "BENCH_CARD_FILE": str(folder / "card.json")}, 18732
        )
        try:
            results["bare at fixed rate"] = asyncio.run(
                load("http://127.0.0.1:18732", token, idents, args.rate, args.seconds)
            )
            results["bare flat out"] = asyncio.run(
                load("http://127.0.0.1:18732", token, idents, None, args.seconds)
            )
        finally:
            bare.terminate()
            bare.wait()
    print(
        f"card size {len(json.dumps(card))} bytes; {args.persons:,} persons on PostgreSQL; audit on"
    )
    print(f"{'run':<28}{'requests':>9}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'5xx':>6}")
    for name, r in results.items():
        print(
            f"{name:<28}{r['requests']:>9.0f}{r['per_second']:>9.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors_5xx']:>6.0f}"
        )
    share = results["personkort flat out"]["per_second"] / results["bare flat out"]["per_second"]
    print(f"personkort throughput = {share:.0%} of the bare endpoint's")


if __name__ == "__main__":
    main()
