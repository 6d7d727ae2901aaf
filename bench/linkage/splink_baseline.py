"""Splink 5 (DuckDB) on the same records and preprocessed fields as our reconciliation.

    .venv/bin/python -m bench.linkage.splink_baseline DROP_DIR

Follows Splink's documented training recipe for deduplication: the prior from deterministic
rules (`estimate_probability_two_random_records_match`), u from random sampling, m by
expectation maximisation over two blocking rules, then `predict` and
`cluster_pairwise_predictions_at_threshold` at 0.95. Comparisons use the same folded fields
`bench/linkage/inputs.py` gives our linker: identity number (exact / Damerau-Levenshtein 1),
birth date (exact / date distance), surname and given names (Splink's NameComparison,
Jaro-Winkler with term frequencies), first given name (exact with term frequencies /
Jaro-Winkler 0.92), address (exact / Jaro-Winkler), postnr (exact). `ident_valid` and
`earlier_idents` are left out: Splink's comparison library has nothing for a checksum flag or an
identity-number history, and this baseline keeps to the library, so Splink sees the current
number only (our linker uses both).
Blocking for prediction mirrors ours: identity number, (surname, birth date),
(first given name, birth date), (surname, first given name, postnr), (first given name, address).

`seconds` is the wall time of loading the rows into DuckDB, training, `predict` and clustering
at 0.95 (reading the drop excluded, as in `ours.py`). The same predictions are clustered again at
0.99 after the clock and `peak_mib` are read, and reported under `at_0.99`.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on
from splink.backends.duckdb import DuckDBAPI

from bench.linkage.inputs import load, mixed_birth_cards
from personkort.reconcile import pairwise_score

if TYPE_CHECKING:  # not exported from the top level in Splink 5
    from splink.internals.splink_dataframe import SplinkDataFrame

THRESHOLD = 0.95
STRICT_THRESHOLD = 0.99


def settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.DamerauLevenshteinAtThresholds("ident", [1]),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.NameComparison("given_names").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("first_given", [0.92]).configure(
                term_frequency_adjustments=True
            ),
            cl.JaroWinklerAtThresholds("address", [0.95, 0.88]),
            cl.ExactMatch("postnr"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("ident"),
            block_on("surname", "birth_date"),
            block_on("first_given", "birth_date"),
            block_on("surname", "first_given", "postnr"),
            block_on("first_given", "address"),
        ],
        retain_intermediate_calculation_columns=False,
    )


def _grouped(clusters: SplinkDataFrame) -> list[list[str]]:
    grouped: dict[str, list[str]] = {}
    for row in clusters.as_record_list():
        grouped.setdefault(str(row["cluster_id"]), []).append(str(row["unique_id"]))
    return list(grouped.values())


def link(rows: list[dict[str, object]]) -> tuple[Linker, SplinkDataFrame, list[list[str]]]:
    """Train, predict and cluster at THRESHOLD; returns the predictions for re-clustering."""
    columns = [c for c in rows[0] if c != "ident_valid"]
    table = pa.Table.from_pylist([{c: r[c] for c in columns} for r in rows])
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(table), settings())
    training = linker.training
    training.estimate_probability_two_random_records_match(
        [block_on("ident"), block_on("surname", "given_names", "birth_date", "address")],
        recall=0.8,
    )
    training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    training.estimate_parameters_using_expectation_maximisation(block_on("surname", "birth_date"))
    training.estimate_parameters_using_expectation_maximisation(block_on("first_given", "postnr"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD
    )
    return linker, predictions, _grouped(clusters)


def main() -> None:
    logging.getLogger("splink").setLevel(logging.WARNING)
    data = load(Path(sys.argv[1]))
    start = time.perf_counter()
    linker, predictions, clusters = link(data.rows)
    seconds = time.perf_counter() - start
    peak_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    score = pairwise_score(clusters, data.truth)
    strict_clusters = _grouped(
        linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=STRICT_THRESHOLD
        )
    )
    strict = pairwise_score(strict_clusters, data.truth)
    print(
        json.dumps(
            {
                "linker": "splink",
                "records": len(data.rows),
                "precision": round(score.precision, 5),
                "recall": round(score.recall, 5),
                "f1": round(score.f1, 5),
                "seconds": round(seconds, 2),
                "peak_mib": peak_mib,
                "mixed_birth_cards": mixed_birth_cards(clusters, data),
                "at_0.99": {
                    "precision": round(strict.precision, 5),
                    "recall": round(strict.recall, 5),
                    "f1": round(strict.f1, 5),
                    "mixed_birth_cards": mixed_birth_cards(strict_clusters, data),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
