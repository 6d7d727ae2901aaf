"""Simulator speed: persons per second and records written per register.

.venv/bin/python bench/bench_simulator.py --persons 1000000
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from simulator import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nights", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = simulate(args.persons, args.seed, args.nights, Path(tmp))
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    print(f"persons {args.persons:,}  nights {args.nights}  seconds {seconds:.1f}")
    print(f"persons/s {args.persons * args.nights / seconds:,.0f}  written {size / 2**20:,.0f} MiB")
    for n, night in enumerate(summary.nights, start=1):
        print(f"night{n}: " + ", ".join(f"{k} {v:,}" for k, v in night.items()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
