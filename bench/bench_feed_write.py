"""A full night's Folkeregister write, four ways, in one run: the snapshot's rows through
SQLAlchemy's insert or the driver's executemany, in file order or in person-key order.

.venv/bin/python bench/bench_feed_write.py [--persons 200000] [--sim FOLDER] [--rounds 3]

Reads night 1's snapshot of a simulated drop once (``--sim`` reuses a folder that holds
night1/, as bench_night.py writes it), then, each round, writes its persons, numbers and
relations into a fresh embedded SQLite store each way, in a rotated order so the machine's
drift spreads over all four. Only the inserts are timed (what ``write_snapshot`` does for a
full night, without closing rows or the digest map). The ways: "sqlalchemy, file order" is
the write before the ninth session; "driver, file order" is ``write_snapshot``'s now (key
order, tried for the tables' key indexes, was no faster: docs/benchmarks.md, "Ninth session").
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from adapters.folkeregister import read_snapshot
from personkort.feed.records import FeedPerson
from personkort.store import open_engine
from personkort.store.feed import snapshot_rows
from personkort.store.nights import _insert, driver_insert
from simulator import simulate

NIGHT = 1


def write(store: str, persons: Sequence[FeedPerson], how: str) -> float:
    """Seconds to write ``persons``' rows into the fresh store ``store``, ``how`` as named."""
    engine = open_engine(store)
    started = time.perf_counter()
    with engine.connect() as conn:
        for table, columns, rows in snapshot_rows([(p, p.key) for p in persons], {}, NIGHT):
            if how == "driver":
                driver_insert(conn, table, columns, rows)
            else:
                _insert(conn, table, (dict(zip(columns, row, strict=True)) for row in rows))
        conn.commit()
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--sim", type=Path, help="reuse (or write) the simulated drops here")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PERSONKORT_DEV_MODE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("PERSONKORT_DATA_DIR", str(Path(tmp) / "data"))
        sim = args.sim or Path(tmp) / "sim"
        if not (sim / "night1").is_dir():
            simulate(args.persons, 1, 2, sim)
        (snapshot_file,) = (sim / "night1" / "folkeregister").glob("*.jsonl")
        started = time.perf_counter()
        feed = read_snapshot(snapshot_file).feed
        assert feed is not None
        in_file = feed.persons
        in_keys = sorted(in_file, key=lambda p: p.key)
        rows = sum(1 + len(p.idents) + len(p.relations) for p in in_file)
        print(
            f"{len(in_file):,} feed persons, {rows:,} rows (read in "
            f"{time.perf_counter() - started:.1f} s); embedded SQLite store, fresh each write"
        )
        ways = [
            ("sqlalchemy", "file order", in_file),
            ("sqlalchemy", "key order", in_keys),
            ("driver", "file order", in_file),
            ("driver", "key order", in_keys),
        ]
        seconds: dict[tuple[str, str], list[float]] = {(h, o): [] for h, o, _ in ways}
        for n in range(args.rounds):
            for how, order, persons in ways[n % len(ways) :] + ways[: n % len(ways)]:
                store_file = Path(tmp) / "store.sqlite"
                for leftover in Path(tmp).glob("store.sqlite*"):
                    leftover.unlink()
                took = write(f"sqlite:///{store_file}", persons, how)
                seconds[(how, order)].append(took)
                print(f"round {n + 1}: {how}, {order}: {took:.1f} s", flush=True)
    before = statistics.mean(seconds[("sqlalchemy", "file order")])
    print(f"{'way':<26}{'mean s':>10}{'rounds':>30}{'x before':>10}")
    for (how, order), took in seconds.items():
        each = " ".join(f"{s:.1f}" for s in took)
        mean = statistics.mean(took)
        print(f"{how + ', ' + order:<26}{mean:>10.1f}{each:>30}{mean / before:>10.2f}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
