"""Our reconciliation beside Splink 5 on the same simulated records.

    .venv/bin/python -m bench.linkage.compare --persons 20000 --seeds 1-5
    .venv/bin/python -m bench.linkage.compare --persons 200000
    .venv/bin/python -m bench.linkage.compare --persons 1000000 --ours-only

Simulates one night per seed (or takes ``--drop``), runs each linker in its own process so that
its peak memory is its own, and prints per seed precision, recall, F1, wall time (linking only,
reading excluded), peak memory and the look-alike count: linked cards holding valid identity
numbers of two different birth dates (issue 10: there must be none). With several seeds it
also prints each linker's worst precision and recall, and whether ours met the targets.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# issue 10's targets at 20,000 persons, for every seed
TARGET_PRECISION = 0.9995
TARGET_RECALL = 0.996


def run(module: str, drop: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", module, str(drop)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def seeds(text: str) -> list[int]:
    """``3``, ``1-5`` or ``1,4,9``."""
    found: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        found.extend(range(int(low), int(high or low) + 1))
    return found


HEADS = [("records", 9), ("precision", 11), ("recall", 9), ("F1", 9), ("seconds", 9)]


def _row(seed: object, r: dict[str, object]) -> str:
    return (
        f"{seed!s:>5} {r['linker']!s:<11}{r['records']:>9}{r['precision']:>11.5f}"
        f"{r['recall']:>9.5f}{r['f1']:>9.5f}{r['seconds']:>9.2f}{r['peak_mib']:>10}"
        f"{r['mixed_birth_cards']:>12}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=seeds, help="several seeds: 1-5 or 1,3,7")
    parser.add_argument("--drop", type=Path)
    parser.add_argument("--ours-only", action="store_true")
    args = parser.parse_args()
    runs: list[tuple[int | str, list[dict[str, object]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.drop is not None:
            plan: list[tuple[int | str, Path | None]] = [("drop", args.drop)]
        else:
            plan = [(s, None) for s in (args.seeds or [args.seed])]
        for seed, drop in plan:
            if drop is None:
                from simulator import simulate

                simulate(args.persons, int(seed), 1, Path(tmp) / str(seed))
                drop = Path(tmp) / str(seed) / "night1"
            results = [run("bench.linkage.ours", drop)]
            if not args.ours_only:
                results.append(run("bench.linkage.splink_baseline", drop))
            runs.append((seed, results))
    print(
        f"{'seed':>5} {'linker':<11}"
        + "".join(f"{h:>{w}}" for h, w in HEADS)
        + f"{'peak MiB':>10}{'mixed cards':>12}"
    )
    for seed, results in runs:
        for r in results:
            print(_row(seed, r))
            if "at_0.99" in r:  # the same predictions clustered at 0.99 instead of 0.95
                s = r["at_0.99"]
                assert isinstance(s, dict)
                print(
                    f"{'':>5} {'  @0.99':<11}{'':>9}{s['precision']:>11.5f}{s['recall']:>9.5f}"
                    f"{s['f1']:>9.5f}{'':>9}{'':>10}{s['mixed_birth_cards']:>12}"
                )
        ours = results[0]
        if len(results) == 2:
            ratio = float(ours["seconds"]) / float(results[1]["seconds"])  # type: ignore[arg-type]
            print(
                f"{'':>5} our wall time is {ratio:.2f} x Splink's (Splink/ours = {1 / ratio:.1f})"
            )
        if "review_share" in ours:
            print(f"{'':>5} our review queue: {ours['review_queue']} ({ours['review_share']:.3%})")
    if len(runs) > 1:
        linkers = {str(r["linker"]) for _, results in runs for r in results}
        for name in sorted(linkers, key=lambda n: n != "personkort"):
            mine = [r for _, results in runs for r in results if r["linker"] == name]
            low_p = min(float(r["precision"]) for r in mine)  # type: ignore[arg-type]
            low_r = min(float(r["recall"]) for r in mine)  # type: ignore[arg-type]
            mixed = sum(int(r["mixed_birth_cards"]) for r in mine)  # type: ignore[call-overload]
            print(
                f"{name}: over {len(mine)} seeds worst precision {low_p:.5f}, worst recall "
                f"{low_r:.5f}, mixed-birth cards {mixed}"
            )
        ours_runs = [results[0] for _, results in runs]
        missed = [
            str(seed)
            for seed, results in runs
            if float(results[0]["precision"]) < TARGET_PRECISION  # type: ignore[arg-type]
            or float(results[0]["recall"]) < TARGET_RECALL  # type: ignore[arg-type]
            or int(results[0]["mixed_birth_cards"])  # type: ignore[call-overload]
        ]
        print(
            f"targets (precision >= {TARGET_PRECISION}, recall >= {TARGET_RECALL}, no mixed "
            f"cards): met on {len(ours_runs) - len(missed)} of {len(ours_runs)} seeds"
            + (f"; missed on seed {', '.join(missed)}" if missed else "")
        )


if __name__ == "__main__":
    main()
