"""Pairwise precision and recall of a clustering against an answer key.

A pair of records is a true link when the answer key puts both on the same person. Precision is
the share of pairs we put together that belong together (a miss here shows one person's data to
another's caseworker); recall the share of true pairs we found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PairwiseScore:
    true_positive: int
    predicted_pairs: int
    true_pairs: int

    @property
    def precision(self) -> float:
        return self.true_positive / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.true_positive / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise_score(clusters: Iterable[Iterable[str]], truth: Mapping[str, str]) -> PairwiseScore:
    """Score clusters of record keys against ``truth`` (record key → person key). Records the
    answer key does not know are ignored."""
    predicted = true_positive = 0
    for cluster in clusters:
        members = [k for k in cluster if k in truth]
        predicted += _pairs(len(members))
        true_positive += sum(_pairs(n) for n in Counter(truth[k] for k in members).values())
    true_pairs = sum(_pairs(n) for n in Counter(truth.values()).values())
    return PairwiseScore(true_positive, predicted, true_pairs)
