"""A whole night, full then incremental: wall time per phase and peak memory.

.venv/bin/python bench/bench_night.py --persons 1000000 [--sim FOLDER] [--store URL]

Simulates two nights (or reuses ``--sim`` if it already holds night1/ and night2/), then runs
`personkort night` on each, in its own process, into a fresh embedded SQLite store: the first
night is a full build, the second the incremental one (the simulator changes about 1 % of the
records between nights; "reconciled" is how many records the engine ran on).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator import simulate

PERSONKORT = str(Path(sys.executable).parent / "personkort")
SHOWN = (
    "seconds_read",
    "seconds_reconcile",
    "seconds_write",
    "records_new",
    "records_changed",
    "records_removed",
    "records_reconciled",
    "cards",
)


def run_night(drop: Path, store: str) -> dict[str, str]:
    """One night through the CLI; its counts, wall seconds and the process's peak RSS."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [PERSONKORT, "night", str(drop), "--store", store], stdout=out, stderr=err, text=True
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        printed, problems = out.read(), err.read()
    if proc.returncode:
        raise SystemExit(f"night {drop} failed:\n{problems}")
    counts = {}
    for line in printed.splitlines():
        key, sep, value = line.strip().partition(": ")
        if sep and key in SHOWN:
            counts[key] = value
    counts["wall"] = f"{wall:.1f}"
    counts["peak_rss_mib"] = f"{usage.ru_maxrss / 1024:,.0f}"
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--sim", type=Path, help="reuse (or write) the simulated drops here")
    parser.add_argument(
        "--store",
        help="an empty store URL (e.g. a PostgreSQL schema); default: a fresh SQLite file",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sim = args.sim or Path(tmp) / "sim"
        if not (sim / "night2").is_dir():
            simulate(args.persons, 1, 2, sim)
        store = args.store or f"sqlite:///{Path(tmp) / 'night.sqlite'}"
        os.environ.setdefault("PERSONKORT_DATA_DIR", str(Path(tmp) / "data"))
        results = {name: run_night(sim / name, store) for name in ("night1", "night2")}
    where = "PostgreSQL store" if store.startswith("postgresql") else "embedded SQLite store"
    print(f"{args.persons:,} persons, {where}")
    columns = ("wall", *SHOWN[:3], "peak_rss_mib", *SHOWN[3:])
    print(f"{'night':<8}" + "".join(f"{c.removeprefix('seconds_'):>20}" for c in columns))
    for name, counts in results.items():
        print(f"{name:<8}" + "".join(f"{counts.get(c, '-'):>20}" for c in columns))


if __name__ == "__main__":
    main()
