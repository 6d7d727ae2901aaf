"""Identity reconciliation: one cluster of source records per real person."""

from personkort.reconcile.engine import Decision, Reconciliation, ReviewItem, reconcile
from personkort.reconcile.metrics import PairwiseScore, pairwise_score
from personkort.reconcile.profile import record_key
from personkort.reconcile.scoring import MatchConfig

__all__ = [
    "Decision",
    "MatchConfig",
    "PairwiseScore",
    "Reconciliation",
    "ReviewItem",
    "pairwise_score",
    "reconcile",
    "record_key",
]
