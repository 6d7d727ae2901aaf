"""Lookups beside a SQLite night: how long a caseworker waits while the night writes.

.venv/bin/python -m bench.sqlite_stall [--persons 60000] [--busy 2] [--runs 1]

The scenario of tests/reliability/test_sqlite_night_stall.py, measured instead of bounded: a
first night of ``--persons`` simulated persons runs in its own ``personkort night`` process
against a fresh embedded store while one client looks up (and so audits) a number over real
HTTP against the real app (uvicorn, one worker, a process of its own), back to back, until
the night ends. ``--busy N`` starts N processes
that spin on a core each, as a loaded CI machine is. Prints the lookups' wait quantiles; every
lookup writes an audit event, so each one needs SQLite's write lock once.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from api.auth import mint
from api.settings import Settings
from bench.api.run import start, stop
from personkort.store import open_engine
from simulator import simulate

PERSONKORT = str(Path(sys.executable).parent / "personkort")
CLAIMS = {"sub": "Z1", "employer": "stat", "office": "nav-oslo", "roles": ["veileder"]}


def measure(drop: Path, work: Path) -> tuple[float, list[float], set[int]]:
    """One night beside back-to-back lookups: (night seconds, each lookup's wait, statuses)."""
    store = f"sqlite:///{work / 'store.sqlite'}"
    open_engine(store).dispose()  # migrated before the night and the server start
    settings = Settings(
        store_url=store, data_dir=str(work / "data"), dev_mode=True, lookups_per_minute=10**6
    )
    env = {
        **os.environ,
        "PERSONKORT_STORE_URL": store,
        "PERSONKORT_DATA_DIR": settings.data_dir,
        "PERSONKORT_DEV_MODE": "1",
        "PERSONKORT_LOOKUPS_PER_MINUTE": str(10**6),
    }
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = start(["api.app:create_app", "--factory"], env, port, workers=1)
    waits: list[float] = []
    statuses: set[int] = set()
    try:
        headers = {"Authorization": f"Bearer {mint(settings, CLAIMS)}"}
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30)
        started = time.monotonic()
        night = subprocess.Popen(
            [PERSONKORT, "night", str(drop), "--store", store],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while night.poll() is None:
            begun = time.monotonic()
            answer = client.post("/api/v1/personkort", json={"ident": "01010112345"})
            waits.append(time.monotonic() - begun)
            statuses.add(answer.status_code)
        seconds = time.monotonic() - started
    finally:
        stop(server)
    if night.returncode != 0:
        raise SystemExit(f"the night failed (exit {night.returncode})")
    return seconds, waits, statuses


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=60_000)
    parser.add_argument("--busy", type=int, default=0, help="processes spinning beside it")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("PERSONKORT_DEV_MODE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        simulate(args.persons, 5, 1, Path(tmp) / "sim")
        spinners = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)
        ]
        try:
            print(f"{args.persons:,} persons, {args.busy} busy processes beside")
            print("run  night_s  lookups  p50_ms  p99_ms  p99.9_ms  max_ms  over_1s  statuses")
            for run in range(1, args.runs + 1):
                work = Path(tmp) / f"run{run}"
                work.mkdir()
                seconds, waits, statuses = measure(Path(tmp) / "sim" / "night1", work)
                ms = [w * 1000 for w in waits]
                print(
                    f"{run:>3}  {seconds:7.1f}  {len(waits):7d}  {quantile(ms, 0.5):6.1f}  "
                    f"{quantile(ms, 0.99):6.1f}  {quantile(ms, 0.999):8.1f}  {max(ms):6.0f}  "
                    f"{sum(w > 1.0 for w in waits):7d}  {sorted(statuses)}"
                )
        finally:
            for spinner in spinners:
                spinner.kill()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
