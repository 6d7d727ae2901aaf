"""Lookup latency and throughput of the real API on PostgreSQL with auditing on, beside a bare
FastAPI endpoint returning a static card of the same size, on this machine in the same run.

    .venv/bin/python -m bench.api.run [--persons 20000] [--rate 500] [--seconds 20]

Each server runs under uvicorn (one worker per core); the load comes from this process over
loopback (bench/api/client.py: prepared requests on keep-alive connections), first at a fixed
arrival rate for latency, then as fast as the server answers for throughput. The personkort
server is measured three ways: lookups of persons not yet looked up this night (every card read
from the store), then, after a warm-up, the same fixed-rate and flat-out runs as the bare one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.api.client import Result, lookup_request, run_load

PORT = 18731
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
                    "AND register <> 'kommune' LIMIT 10000"
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


def measure(requests: list[bytes], **how: Any) -> Result:
    return asyncio.run(run_load("127.0.0.1", PORT, requests, **how))


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
        results: dict[str, Result] = {}
        server = start(["api.app:create_app", "--factory"], env, PORT)
        try:
            card = httpx.post(
                f"http://127.0.0.1:{PORT}/api/v1/personkort",
                json={"ident": idents[0], "purpose": "bench"},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            (folder / "card.json").write_text(json.dumps(card))
            asked = [lookup_request("127.0.0.1", PORT, token, i) for i in idents]
            seen, fresh = asked[:5000], asked[5000:]
            # Never looked up before in this night: every card is read from the store.
            results["personkort first sight"] = measure(
                fresh, rate=None, seconds=args.seconds, connections=8, in_order=True
            )
            # Warm-up, not counted: connections land on either worker process at random, so
            # after ten passes each process has about 1 card in 1,000 of `seen` still to read.
            for _ in range(10):
                measure(seen, rate=None, seconds=60, connections=8, in_order=True)
            results["personkort at fixed rate"] = measure(
                seen, rate=args.rate, seconds=args.seconds
            )
            results["personkort flat out"] = measure(seen, rate=None, seconds=args.seconds)
        finally:
            server.terminate()
            server.wait()
        bare = start(
            ["bench.api.bare:app"], {**env, "BENCH_CARD_FILE": str(folder / "card.json")}, PORT
        )
        try:
            results["bare at fixed rate"] = measure(seen, rate=args.rate, seconds=args.seconds)
            results["bare flat out"] = measure(seen, rate=None, seconds=args.seconds)
        finally:
            bare.terminate()
            bare.wait()
    print(
        f"card size {len(json.dumps(card))} bytes; {args.persons:,} persons on PostgreSQL; audit on"
    )
    print(f"{'run':<28}{'requests':>9}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'5xx':>6}")
    for name, r in results.items():
        print(
            f"{name:<28}{r.requests:>9}{r.per_second:>9.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.errors_5xx:>6}"
        )
    share = results["personkort flat out"].per_second / results["bare flat out"].per_second
    print(f"personkort throughput = {share:.0%} of the bare endpoint's")


if __name__ == "__main__":
    main()
