"""The served night's reconciliation read back from the store, for an incremental night.

Implements ``personkort.reconcile.incremental.PriorNight``. It reads the current rows
(``valid_to IS NULL``): before a night writes anything those are exactly the served night's,
because a night starts by rolling back whatever an unpublished one left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from personkort.reconcile import MatchConfig, ReviewItem
from personkort.reconcile.incremental import CardState, State
from personkort.store import models as m
from personkort.store.nights import _chunks, current_cards, current_links, published_night

# Bump when what a match key means changes, or what the served cards' markers mean (an
# incremental night keeps the cards it does not recompute): a store written under another
# version is reconciled in full once, which writes every record's keys and card again.
# 2: both cards of a pending review pair carry the strictest marker of both (issue 10).
# 3: a numberless record under a maiden name links below the upper threshold
#    (engine._married_name): cards an incremental night would keep may have changed.
MATCH_STATE_VERSION = 3
IN_CHUNK = 5_000


def match_state_tag(config: MatchConfig) -> str:
    """What the stored match keys were made with; a night may only build on equal ones."""
    return f"v{MATCH_STATE_VERSION}:{config!r}"


class StoredNight:
    """Last night's match keys, cards and review queue, as reconciliation left them."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def state(self, records: Collection[str]) -> dict[str, State]:
        keys: dict[str, list[int]] = defaultdict(list)
        floating: dict[str, bool] = {}
        for chunk in _chunks(sorted(records), IN_CHUNK):
            for record, key, floats in self.conn.execute(
                sa.select(m.MatchKey.record_key, m.MatchKey.key, m.MatchKey.floating).where(
                    m.MatchKey.record_key.in_(chunk), m.MatchKey.valid_to.is_(None)
                )
            ):
                keys[record].append(key)
                floating[record] = floats
        return {r: (tuple(sorted(k)), floating[r]) for r, k in keys.items()}

    def members(self, keys: Collection[int]) -> dict[int, list[tuple[str, bool]]]:
        found: dict[int, list[tuple[str, bool]]] = defaultdict(list)
        for chunk in _chunks(sorted(keys), IN_CHUNK):
            for key, record, floats in self.conn.execute(
                sa.select(m.MatchKey.key, m.MatchKey.record_key, m.MatchKey.floating).where(
                    m.MatchKey.key.in_(chunk), m.MatchKey.valid_to.is_(None)
                )
            ):
                found[key].append((record, floats))
        return found

    def links(self) -> dict[str, str]:
        return current_links(self.conn)

    def cards(self) -> dict[str, CardState]:
        return current_cards(self.conn)

    def reviews(self) -> list[ReviewItem]:
        served = published_night(self.conn)
        rows = self.conn.execute(
            sa.select(
                m.ReviewRow.record_key,
                m.ReviewRow.candidate_key,
                m.ReviewRow.score,
                m.ReviewRow.evidence,
            )
            .where(m.ReviewRow.night_id == served)
            .order_by(m.ReviewRow.id)
        )
        return [
            ReviewItem(record, candidate, score, evidence)
            for record, candidate, score, evidence in rows
        ]


def usable(served_counts: dict[str, Any] | None, config: MatchConfig) -> bool:
    """Whether the served night (its counts) left match keys an incremental night can build on."""
    return bool(served_counts) and served_counts.get("match_state") == match_state_tag(config)
