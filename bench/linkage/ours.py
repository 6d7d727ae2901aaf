"""Run our reconciliation on one drop folder and print accuracy, wall time and peak memory.

.venv/bin/python -m bench.linkage.ours DROP_DIR
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from bench.linkage.inputs import load, mixed_birth_cards
from personkort.reconcile import pairwise_score, reconcile


def main() -> None:
    drop = Path(sys.argv[1])
    data = load(drop)
    start = time.perf_counter()
    result = reconcile(data.extract.persons, data.extract.ident_history)
    seconds = time.perf_counter() - start
    score = pairwise_score(result.clusters, data.truth)
    print(
        json.dumps(
            {
                "linker": "personkort",
                "records": len(data.rows),
                "precision": round(score.precision, 5),
                "recall": round(score.recall, 5),
                "f1": round(score.f1, 5),
                "seconds": round(seconds, 2),
                "mixed_birth_cards": mixed_birth_cards(result.clusters, data),
                "review_queue": len(result.reviews),
                "review_share": round(len(result.reviews) / max(len(data.rows), 1), 5),
                "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
