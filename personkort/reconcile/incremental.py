"""An incremental night: reconcile again only the records a change can reach, exactly.

Reconciliation is local. A record's card depends only on the records it is joined to or
compared with (``personkort.reconcile.keys``): those sharing an identity number or a D-nummer's
birth date and surname, those sharing a block with it when one of the two has no trusted number,
and those a steward ruled on. Call the connected groups these relations make *parts*. Running
the engine on a union of whole parts gives exactly the clusters, reviews and markers the full
run gives for those records.

So a night starts from the records that changed, appeared or disappeared since the served night
(and every record a steward ruled on), and grows that set until it is closed under the relations
as they stood last night *and* as they stand tonight: last night's through the keys the store
kept (``PriorNight``), tonight's through the changed records' new keys. Everything outside the set
is unchanged in content and in relations, so its clusters are last night's, read back from the
store. The engine then runs on the closed set only, and the two halves are put together in the
order a full run returns them.

It gives up (the caller runs a full reconciliation instead) when a block it touches is larger
than the engine compares (its size would depend on records outside the set) or when the set grows
past ``max_share`` of the population, where a full run is as cheap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple, Protocol

from personkort.reconcile.engine import (
    MAX_BLOCK,
    Decision,
    MatchConfig,
    Reconciliation,
    ReviewItem,
    floating_after_stage_1,
    reconcile,
)
from personkort.reconcile.keys import is_block, match_keys
from personkort.reconcile.profile import Profile, build_profile, record_key
from personkort.records import IdentHistory, PersonRecord, Protection

State = tuple[tuple[int, ...], bool]  # a record's match keys, and whether it floated


class CardState(NamedTuple):
    """A served card as reconciliation left it (protection as its text)."""

    protection: str | None
    skjermet: bool
    pending_review: bool
    records: int


class PriorNight(Protocol):
    """The served night's reconciliation, as the store keeps it."""

    def state(self, records: Collection[str]) -> dict[str, State]:
        """Last night's match keys and floating flag of these records (absent: not there)."""
        ...

    def members(self, keys: Collection[int]) -> dict[int, list[tuple[str, bool]]]:
        """Last night's records holding each key, with their floating flags."""
        ...

    def links(self) -> dict[str, str]:
        """Record → card id, for every record on a served card."""
        ...

    def cards(self) -> dict[str, CardState]:
        """Every served card by id."""
        ...

    def reviews(self) -> list[ReviewItem]:
        """The served night's review queue, in its order."""
        ...


@dataclass(slots=True)
class Incremental:
    """Tonight's whole reconciliation, and what was recomputed to get it."""

    result: Reconciliation  # as a full run over every record would return it
    recomputed: set[str]  # records present tonight that the engine ran on
    previous: dict[str, State]  # last night's state of the recomputed and the removed records
    links: dict[str, str]  # last night's record → card id (the write compares with them)
    cards: dict[str, CardState]  # last night's cards


def reconcile_changes(
    persons: Sequence[PersonRecord],
    history: Iterable[IdentHistory],
    decisions: Sequence[Decision],
    config: MatchConfig | None,
    *,
    changed: Collection[str],
    removed: Collection[str],
    prior: PriorNight,
    max_share: float = 0.3,
) -> Incremental | None:
    """Reconcile tonight's records given which changed since the served night, or None when a
    full run is needed (see the module's docstring)."""
    config = config or MatchConfig()
    by_key = {record_key(p.register, p.source_key): p for p in persons}
    history_of: dict[str, list[IdentHistory]] = defaultdict(list)
    for h in history:
        history_of[record_key(h.register, h.source_key)].append(h)
    closure = _Closure(by_key, history_of, decisions, config, prior, set(changed))
    seeds = {*changed, *removed, *(r for d in decisions for r in (d.a, d.b))}
    if not closure.close(seeds, limit=max(int(max_share * len(by_key)), 1)):
        return None
    recomputed = {r for r in closure.members if r in by_key}
    part = reconcile(
        [by_key[r] for r in recomputed],
        [h for r in recomputed for h in history_of.get(r, ())],
        decisions,
        config,
        with_keys=True,
    )
    links, cards = prior.links(), prior.cards()
    result = _merge(part, recomputed, by_key.keys(), links, cards, prior.reviews())
    return Incremental(result, recomputed, closure.previous, links, cards)


class _Closure:
    """A set of records grown from the seeds until it is closed under last night's and
    tonight's relations."""

    def __init__(
        self,
        persons: Mapping[str, PersonRecord],
        history: Mapping[str, list[IdentHistory]],
        decisions: Sequence[Decision],
        config: MatchConfig,
        prior: PriorNight,
        changed: set[str],
    ) -> None:
        self.persons, self.history, self.prior = persons, history, prior
        self.decisions, self.config = decisions, config
        self.members: set[str] = set()
        self.previous: dict[str, State] = {}
        # tonight's keys of the changed records; an unchanged record's keys are last night's
        self.new_keys = {r: match_keys(self._profile(r)) for r in changed if r in persons}
        self.new_holders: dict[int, list[str]] = defaultdict(list)
        for r, keys in self.new_keys.items():
            for k in keys:
                self.new_holders[k].append(r)
        self.holders: dict[int, list[tuple[str, bool]]] = {}

    def _profile(self, r: str) -> Profile:
        """A fresh profile each time: stage 1 edits the ones it is given."""
        return build_profile(self.persons[r], self.history.get(r))

    def _keys(self, r: str) -> set[int]:
        old = self.previous.get(r)
        return {*(old[0] if old else ()), *self.new_keys.get(r, ())}

    def _holders(self, keys: Iterable[int]) -> None:
        wanted = [k for k in keys if k not in self.holders]
        found = self.prior.members(wanted)
        for k in wanted:
            self.holders[k] = found.get(k, [])

    def _add(self, records: set[str]) -> None:
        fresh = records - self.members
        self.members |= fresh
        self.previous.update(self.prior.state(fresh))

    def close(self, seeds: set[str], limit: int) -> bool:
        todo = set(seeds)
        assessed: set[str] = set()  # members whose floating tonight is known
        floating_now: set[str] = set()
        unblocked: list[str] = []  # members whose blocks are not followed yet
        while todo:
            # Numbers and D-nummer keys join records whatever else they say. After this loop
            # every member's number relations are inside the set, so what stage 1 makes of a
            # member (floating or not) no longer changes as the set grows.
            while todo:
                fresh = todo - self.members
                self._add(fresh)
                unblocked.extend(fresh)
                if len(self.members) > limit:
                    return False
                keys = {k for r in fresh for k in self._keys(r) if not is_block(k)}
                self._holders(keys)
                todo = set()
                for k in keys:
                    todo.update(r for r, _ in self.holders[k] if r not in self.members)
                    todo.update(r for r in self.new_holders.get(k, ()) if r not in self.members)
            new = [r for r in self.members if r not in assessed]
            floating_now |= self._floating_tonight(new)
            assessed.update(new)
            # Blocks relate two records when one of them floats, last night or tonight.
            keys_of = {r: [k for k in self._keys(r) if is_block(k)] for r in unblocked}
            self._holders({k for keys in keys_of.values() for k in keys})
            for r, keys in keys_of.items():
                old = self.previous.get(r)
                floats = (old is not None and old[1]) or r in floating_now
                for k in keys:
                    last_night = self.holders[k]
                    tonight = self.new_holders.get(k, ())
                    if len(last_night) + len(tonight) > MAX_BLOCK and (
                        len({h for h, _ in last_night} | set(tonight)) > MAX_BLOCK
                    ):
                        return False  # the engine skips such a block; its size is global
                    todo.update(h for h, f in last_night if h not in self.members and (floats or f))
            unblocked = []
        return True

    def _floating_tonight(self, records: Iterable[str]) -> set[str]:
        """Stage 1 over whole number-related groups of records: who is left floating."""
        present = sorted(r for r in records if r in self.persons)
        profiles = [self._profile(r) for r in present]
        return floating_after_stage_1(profiles, self.decisions, self.config)


def _merge(
    part: Reconciliation,
    recomputed: set[str],
    present: Iterable[str],
    links: Mapping[str, str],
    cards: Mapping[str, CardState],
    reviews: Sequence[ReviewItem],
) -> Reconciliation:
    """Tonight's recomputed clusters beside last night's for every other record, in the order
    (and with the markers and reviews) a full run gives."""
    kept: dict[str, list[str]] = defaultdict(list)
    for r in present:
        if r not in recomputed:
            kept[links[r]].append(r)
    clusters: list[tuple[list[str], Protection | None, bool]] = []
    for card, records in kept.items():
        state = cards[card]
        if state.records != len(records):
            raise AssertionError(f"card {card} is split by the recomputed set: a missed relation")
        protection = Protection(state.protection) if state.protection else None
        clusters.append((sorted(records), protection, state.skjermet))
    for n, records in enumerate(part.clusters):
        clusters.append((records, part.protection.get(n), n in part.skjermet))
    clusters.sort(key=lambda c: c[0][0])
    result = Reconciliation(
        clusters=[records for records, _, _ in clusters],
        demoted_idents=part.demoted_idents,
        floating=part.floating,
        keys=part.keys,
    )
    for n, (_, protection, skjermet) in enumerate(clusters):
        if protection:
            result.protection[n] = protection
        if skjermet:
            result.skjermet.add(n)
    # Last night's pairs of the records kept as they were; a record gone tonight has none.
    kept_records = {r for records in kept.values() for r in records}
    queue = [r for r in reviews if r.record in kept_records] + part.reviews
    result.reviews = sorted(queue, key=attrgetter("record"))  # stable: candidates keep order
    return result
