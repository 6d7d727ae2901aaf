"""Adapter throughput: records read per second, per register, on simulated registers.

    .venv/bin/python bench/bench_adapters.py --persons 1000000

Simulates one night (or reads ``--drop`` if given), then reads each register's extract through
its adapter and prints records in, accepted, quarantined, seconds and records/s per register.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from adapters.drop import read_source, sources
from personkort.records import Extract, Register


def bench(drop: Path) -> None:
    totals: dict[Register, list[float]] = {}
    found = sources(drop)
    infotrygd_files = sum(1 for r, _, _ in found if r is Register.INFOTRYGD)
    for register in Register:
        extract = Extract()
        start = time.perf_counter()
        for reg, name, path in found:
            if reg is register:
                extract.extend(read_source(reg, name, path, None, infotrygd_files))
        seconds = time.perf_counter() - start
        read = sum(c.read for c in extract.counts)
        accepted = sum(c.accepted for c in extract.counts)
        quarantined = sum(c.quarantined for c in extract.counts)
        assert read == accepted + quarantined
        totals[register] = [read, accepted, quarantined, seconds]
    heads = ("read", "accepted", "quarant.", "seconds", "rec/s")
    print(f"{'register':<10} " + " ".join(f"{h:>10}" for h in heads))
    for register, (read, accepted, quarantined, seconds) in totals.items():
        print(
            f"{register.value:<10} {read:>10.0f} {accepted:>10.0f} {quarantined:>10.0f} "
            f"{seconds:>10.2f} {read / seconds:>10,.0f}"
        )
    all_read = sum(t[0] for t in totals.values())
    all_seconds = sum(t[3] for t in totals.values())
    rate = all_read / all_seconds
    print(f"{'all':<10} {all_read:>10.0f} {'':>21} {all_seconds:>10.2f} {rate:>10,.0f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS of this process): {peak:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drop", type=Path, help="read this drop folder instead of simulating")
    args = parser.parse_args()
    if args.drop:
        bench(args.drop)
        return
    from simulator import simulate

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        simulate(args.persons, args.seed, 1, Path(tmp))
        print(f"simulated {args.persons:,} persons in {time.perf_counter() - start:.1f} s")
        bench(Path(tmp) / "night1")


if __name__ == "__main__":
    main()
