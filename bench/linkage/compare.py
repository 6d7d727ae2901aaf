"""Our reconciliation beside Splink 5 on the same simulated records.

    .venv/bin/python -m bench.linkage.compare --persons 200000
    .venv/bin/python -m bench.linkage.compare --persons 1000000 --ours-only

Simulates one night (or takes ``--drop``), runs each linker in its own process so that its peak
memory is its own, and prints precision, recall, F1, wall time (linking only, reading excluded)
and peak memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run(module: str, drop: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", module, str(drop)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drop", type=Path)
    parser.add_argument("--ours-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        drop = args.drop
        if drop is None:
            from simulator import simulate

            simulate(args.persons, args.seed, 1, Path(tmp))
            drop = Path(tmp) / "night1"
        results = [run("bench.linkage.ours", drop)]
        if not args.ours_only:
            results.append(run("bench.linkage.splink_baseline", drop))
    heads = [("records", 9), ("precision", 11), ("recall", 9), ("F1", 9), ("seconds", 9)]
    print(f"{'linker':<11}" + "".join(f"{h:>{w}}" for h, w in heads) + f"{'peak MiB':>10}")
    for r in results:
        print(
            f"{r['linker']:<11}{r['records']:>9}{r['precision']:>11.5f}{r['recall']:>9.5f}"
            f"{r['f1']:>9.5f}{r['seconds']:>9.2f}{r['peak_mib']:>10}"
        )
        if "at_0.99" in r:  # the same predictions clustered at 0.99 instead of 0.95
            s = r["at_0.99"]
            print(
                f"{'  @0.99':<11}{'':>9}{s['precision']:>11.5f}{s['recall']:>9.5f}{s['f1']:>9.5f}"
            )
    if len(results) == 2:
        ratio = float(results[0]["seconds"]) / float(results[1]["seconds"])  # type: ignore[arg-type]
        print(f"our wall time is {ratio:.2f} x Splink's (Splink/ours = {1 / ratio:.1f})")
    if "review_share" in results[0]:
        print(f"our review queue: {results[0]['review_queue']} ({results[0]['review_share']:.3%})")


if __name__ == "__main__":
    main()
