"""Stable card ids across nights.

A card keeps its id while its records stay together. When records of several cards come
together (a merge) or a card's records part (a split), the cards involved get new ids and an
event maps the old ids to the new ones, so bookmarks, consents and audit entries that name an
old id stay resolvable. New ids are derived from the night's generation (the how-manieth published
night it is) and the records, so rerunning a night, also after an interrupted or refused one,
gives the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CardChange:
    kind: str  # merge | split | merge_split | retired
    old_ids: tuple[str, ...]
    new_ids: tuple[str, ...]


def new_card_id(night: str, records: Sequence[str]) -> str:
    """A fresh card id: deterministic for the night and the card's first record."""
    digest = hashlib.blake2b(f"{night}\x00{min(records)}".encode(), digest_size=8).hexdigest()
    return f"pk-{digest}"


def assign_card_ids(
    clusters: Sequence[Sequence[str]], previous: Mapping[str, str], night: str
) -> tuple[list[str], list[CardChange]]:
    """The card id of each cluster, given last night's record → card id links, and the events."""
    get = previous.get
    prev_of_cluster: list[set[str]] = []
    first_part: dict[str, int] = {}  # old card → the first cluster holding one of its records
    parts_of_card: dict[str, set[int]] = {}  # only old cards whose records went to two or more
    for n, records in enumerate(clusters):
        olds = {old for r in records if (old := get(r)) is not None}
        prev_of_cluster.append(olds)
        for old in olds:
            first = first_part.setdefault(old, n)
            if first != n:
                parts_of_card.setdefault(old, {first}).add(n)

    def parts(old: str) -> set[int]:
        return parts_of_card.get(old) or {first_part[old]}

    ids: list[str] = []
    for n, records in enumerate(clusters):
        olds = prev_of_cluster[n]
        if len(olds) == 1 and (old := next(iter(olds))) not in parts_of_card:
            ids.append(old)  # the same card, perhaps with records added or gone
        else:
            ids.append(new_card_id(night, records))

    # One event per connected group of old cards and new clusters that is not one-to-one.
    changes: list[CardChange] = []
    seen_clusters: set[int] = set()
    for n in range(len(clusters)):
        if n in seen_clusters or not prev_of_cluster[n] or ids[n] in prev_of_cluster[n]:
            continue
        group_clusters, group_olds, todo = set(), set(), [n]
        while todo:
            c = todo.pop()
            if c in group_clusters:
                continue
            group_clusters.add(c)
            for old in prev_of_cluster[c]:
                if old not in group_olds:
                    group_olds.add(old)
                    todo.extend(parts(old))
        seen_clusters |= group_clusters
        merged = any(len(prev_of_cluster[c]) > 1 for c in group_clusters)
        split = any(len(parts(o)) > 1 for o in group_olds)
        kind = "merge_split" if merged and split else "merge" if merged else "split"
        changes.append(
            CardChange(
                kind, tuple(sorted(group_olds)), tuple(sorted(ids[c] for c in group_clusters))
            )
        )
    for old in sorted(set(previous.values()) - first_part.keys()):
        changes.append(CardChange("retired", (old,), ()))
    return ids, changes
