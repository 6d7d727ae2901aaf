"""A whole night, full then incremental: wall time per phase and peak memory.

.venv/bin/python bench/bench_night.py --persons 1000000 [--sim FOLDER] [--store URL] [--no-feed]
    [--keep DIR | --from DIR [--repeat N]]

Simulates two nights (or reuses ``--sim`` if it already holds night1/ and night2/), then runs
`personkort night` on each, in its own process, into a fresh embedded SQLite store: the first
night is a full build, the second the incremental one (the simulator changes about 1 % of the
records between nights; "reconciled" is how many records the engine ran on). With
``--no-feed`` the simulation leaves the Folkeregister feed out (the registers' files are the
same for the same seed), so the feed's cost is the difference between two runs.

The incremental night is short beside the machine's own drift, so it can be compared on one
night-1 store: ``--keep DIR`` saves the full night's store (and its development keys) in DIR,
and ``--from DIR --repeat N`` runs only the second night, N times, each on a fresh copy of it.
Run from two clones in turn, that compares two commits' incremental nights on the same store.
"""

from __future__ import annotations

import argparse
import ast
import os
import sqlite3
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


def run_night(drop: Path, store: str) -> tuple[dict[str, str], dict[str, object]]:
    """One night through the CLI: its counts, wall seconds and the process's peak RSS, and
    the feed's counts (empty when the drop has no feed)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [PERSONKORT, "night", str(drop), "--store", store],
            stdout=out,
            stderr=err,
            text=True,
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
    feed: dict[str, object] = {}
    lines = iter(printed.splitlines())
    for line in lines:
        key, sep, value = line.strip().partition(": ")
        if sep and key in SHOWN:
            counts[key] = value
        elif sep and key == "feed":
            while value.count("{") > value.count("}"):  # the CLI wraps it at 120 columns
                value += " " + next(lines).strip()
            feed = ast.literal_eval(value)
    counts["wall"] = f"{wall:.1f}"
    counts["peak_rss_mib"] = f"{usage.ru_maxrss / 1024:,.0f}"
    return counts, feed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--sim", type=Path, help="reuse (or write) the simulated drops here")
    parser.add_argument(
        "--store",
        help="an empty store URL (e.g. a PostgreSQL schema); default: a fresh SQLite file",
    )
    parser.add_argument(
        "--no-feed",
        action="store_true",
        help="simulate without the Folkeregister feed (a --sim folder is used as it is)",
    )
    saved = parser.add_mutually_exclusive_group()
    saved.add_argument("--keep", type=Path, help="save the full night's SQLite store here")
    saved.add_argument("--from", dest="start", type=Path, help="a --keep folder: night 2 only")
    parser.add_argument("--repeat", type=int, default=1, help="with --from: night 2 N times")
    args = parser.parse_args()
    if (args.keep or args.start) and args.store:
        parser.error("--keep and --from save and copy an embedded SQLite store, not --store")
    with tempfile.TemporaryDirectory() as tmp:
        sim = args.sim or Path(tmp) / "sim"
        if not (sim / "night2").is_dir():
            simulate(args.persons, 1, 2, sim, feed=not args.no_feed)
        store_file = Path(tmp) / "night.sqlite"
        store = args.store or f"sqlite:///{store_file}"
        keys = (args.keep or args.start or Path(tmp)) / "data"  # the store's keys go with it
        os.environ.setdefault("PERSONKORT_DATA_DIR", str(keys))
        os.environ.setdefault("PERSONKORT_DEV_MODE", "1")  # keys made once in that data dir
        results = {}
        if args.start is None:
            results["night1"] = run_night(sim / "night1", store)
            if args.keep is not None:
                _copy(store_file, args.keep / "night1.sqlite")
            results["night2"] = run_night(sim / "night2", store)
        for n in range(1, args.repeat + 1 if args.start else 0):
            _copy(args.start / "night1.sqlite", store_file)
            results[f"night2#{n}"] = run_night(sim / "night2", store)
    where = "PostgreSQL store" if store.startswith("postgresql") else "embedded SQLite store"
    has_feed = any(feed.get("status") == "read" for _, feed in results.values())
    print(f"{args.persons:,} persons, {where}, {'with' if has_feed else 'without'} the feed")
    columns = ("wall", *SHOWN[:3], "peak_rss_mib", *SHOWN[3:])
    print(f"{'night':<9}" + "".join(f"{c.removeprefix('seconds_'):>20}" for c in columns))
    for name, (counts, _) in results.items():
        print(f"{name:<9}" + "".join(f"{counts.get(c, '-'):>20}" for c in columns))
    for name, (_, feed) in results.items():
        if feed:
            print(f"{name} feed: " + ", ".join(f"{k} {v}" for k, v in feed.items()))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _copy(source: Path, target: Path) -> None:
    """A SQLite store copied whole and consistent (its write-ahead log included), over
    ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (target, target.with_name(target.name + "-wal")):
        leftover.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    dst.close()
    src.close()


if __name__ == "__main__":
    main()
