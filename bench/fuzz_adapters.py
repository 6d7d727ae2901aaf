"""The long fuzz run: N hypothesis examples per adapter, the same strategies and checks as the
suite's short run (``tests/test_adapters_fuzz.py``), every exception counted, none raised.

    .venv/bin/python bench/fuzz_adapters.py --examples 2000
    .venv/bin/python bench/fuzz_adapters.py --examples 500 --adapter arena

Each adapter's examples are split evenly between arbitrary bytes and mutated sample files. A
refused whole source (``RefusedSource``, the documented answer) is counted as a refusal, not
an exception. Prints, per adapter: examples tried, read, refused, exceptions found, seconds.
The exit status is 1 if any exception was found, with the first few shown.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PERSONKORT_DEV_MODE", "1")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.test_adapters_fuzz import STRATEGIES  # noqa: E402


def run(
    strategy: st.SearchStrategy[Any],
    check: Callable[[Any], object],
    examples: int,
    tally: Counter[str],
    failures: list[str],
) -> None:
    """Run ``check`` over ``examples`` drawn examples, counting instead of raising."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def once(value: Any) -> None:
        tally["tried"] += 1
        try:
            result = check(value)
        except Exception as exc:  # counted and shown: that is the point
            tally["exceptions"] += 1
            if len(failures) < 5:
                failures.append(
                    f"{type(exc).__name__}: {exc}\n  input: {value!r:.300}\n"
                    + "".join(traceback.format_exception(exc)[-3:])
                )
            return
        tally["refused" if result is False else "read"] += 1

    once()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="examples per adapter")
    parser.add_argument("--adapter", choices=sorted(STRATEGIES), action="append")
    args = parser.parse_args()
    total_exceptions = 0
    print(f"{'adapter':<10} {'tried':>8} {'read':>8} {'refused':>8} {'exceptions':>10} {'s':>8}")
    for name in args.adapter or list(STRATEGIES):
        tally: Counter[str] = Counter()
        failures: list[str] = []
        start = time.perf_counter()
        kinds = STRATEGIES[name]
        for n, (strategy, check) in enumerate(kinds):
            share = args.examples // len(kinds) + (n < args.examples % len(kinds))
            run(strategy, check, share, tally, failures)
        seconds = time.perf_counter() - start
        total_exceptions += tally["exceptions"]
        print(
            f"{name:<10} {tally['tried']:>8} {tally['read']:>8} {tally['refused']:>8} "
            f"{tally['exceptions']:>10} {seconds:>8.1f}",
            flush=True,
        )
        for failure in failures:
            print("   ", failure.replace("\n", "\n    "))
    return 1 if total_exceptions else 0


if __name__ == "__main__":
    raise SystemExit(main())
