"""An incremental reconciliation equals a full one over the same records, whatever changed.

Last night is held in memory here the way the store keeps it (match keys and floating flags,
links, cards, the review queue), so many random nights can be compared quickly; the store's own
incremental night is tested in test_store_nights.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path

import pytest

from adapters import read_drop
from personkort.fingerprint import fingerprints
from personkort.ident import make_ident
from personkort.reconcile import Decision, Reconciliation, ReviewItem, reconcile, record_key
from personkort.reconcile.incremental import CardState, State, reconcile_changes
from personkort.records import Extract, PersonRecord, Protection, Register
from personkort.store.prior import MATCH_STATE_VERSION
from simulator import CorruptionModel, simulate


class Remembered:
    """A PriorNight: what the store keeps of a reconciliation, in memory."""

    def __init__(self, result: Reconciliation) -> None:
        self.result = result
        self._state = {r: (keys, r in result.floating) for r, keys in result.keys.items()}
        self._members: dict[int, list[tuple[str, bool]]] = defaultdict(list)
        for r, (keys, floats) in self._state.items():
            for k in keys:
                self._members[k].append((r, floats))

    def state(self, records: Collection[str]) -> dict[str, State]:
        return {r: self._state[r] for r in records if r in self._state and self._state[r][0]}

    def members(self, keys: Collection[int]) -> dict[int, list[tuple[str, bool]]]:
        return {k: self._members[k] for k in keys if k in self._members}

    def links(self) -> dict[str, str]:
        return {r: f"card-{n}" for n, records in enumerate(self.result.clusters) for r in records}

    def cards(self) -> dict[str, CardState]:
        res = self.result
        return {
            f"card-{n}": CardState(
                res.protection[n].value if n in res.protection else None,
                n in res.skjermet,
                False,
                len(records),
            )
            for n, records in enumerate(res.clusters)
        }

    def reviews(self) -> list[ReviewItem]:
        return list(self.result.reviews)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Extract, Extract]:
    out = tmp_path_factory.mktemp("sim")
    simulate(6_000, 11, 2, out)
    return read_drop(out / "night1"), read_drop(out / "night2")


def _fingerprints(extract: Extract) -> dict[str, str]:
    """What reconciliation reads of each record (its person record and number history)."""
    return fingerprints(Extract(persons=extract.persons, ident_history=extract.ident_history))


def _assert_incremental_equals_full(
    before: Extract, after: Extract, decisions: list[Decision] | None = None
) -> set[str]:
    decisions = decisions or []
    last_night = reconcile(before.persons, before.ident_history, decisions, with_keys=True)
    old, new = _fingerprints(before), _fingerprints(after)
    incremental = reconcile_changes(
        after.persons,
        after.ident_history,
        decisions,
        None,
        changed={k for k, h in new.items() if old.get(k) != h},
        removed={k for k in old if k not in new},
        prior=Remembered(last_night),
        max_share=1.0,
    )
    full = reconcile(after.persons, after.ident_history, decisions, with_keys=True)
    assert incremental is not None
    got = incremental.result
    assert got.clusters == full.clusters
    assert got.reviews == full.reviews
    assert got.protection == full.protection
    assert got.skjermet == full.skjermet
    for r in incremental.recomputed:  # what the next night will build on
        assert got.keys[r] == full.keys[r]
        assert (r in got.floating) == (r in full.floating)
    return incremental.recomputed


def test_the_simulated_second_night(nights: tuple[Extract, Extract]) -> None:
    before, after = nights
    recomputed = _assert_incremental_equals_full(before, after)
    assert 0 < len(recomputed) < len(after.persons) / 4  # it did not just redo everything


def test_with_steward_decisions(nights: tuple[Extract, Extract]) -> None:
    before, after = nights
    clusters = reconcile(before.persons, before.ident_history).clusters
    together = [records for records in clusters if len(records) > 1]
    alone = [records[0] for records in clusters if len(records) == 1]
    rng = random.Random(5)
    decisions = [Decision(a, b, same=False) for a, b, *_ in rng.sample(together, 3)]
    decisions += [Decision(*rng.sample(alone, 2), same=True) for _ in range(3)]
    _assert_incremental_equals_full(before, after, decisions)


def _mutated(extract: Extract, seed: int) -> Extract:
    """Tonight's extract with random people moved, renamed, renumbered and gone."""
    rng = random.Random(seed)
    persons = list(extract.persons)
    numbers = [p.ident for p in persons if p.ident]
    changed: list[PersonRecord] = []
    for p in persons:
        roll = rng.random()
        if roll < 0.01:
            continue
        if roll < 0.02:
            p = dataclasses.replace(p, address=f"Nyveien {rng.randint(1, 99)}", postnr="0150")
        elif roll < 0.03:
            p = dataclasses.replace(p, ident=rng.choice(numbers))  # a family member's number
        elif roll < 0.04 and p.ident:
            typo = p.ident[:-2] + p.ident[-1] + p.ident[-2]
            p = dataclasses.replace(p, ident=typo)
        elif roll < 0.05:
            p = dataclasses.replace(p, surname=rng.choice(persons).surname)
        elif roll < 0.055:
            p = dataclasses.replace(p, protection=Protection.STRENGT_FORTROLIG)
        changed.append(p)
    kept = {record_key(p.register, p.source_key) for p in changed}
    history = [h for h in extract.ident_history if record_key(h.register, h.source_key) in kept]
    return Extract(persons=changed, ident_history=history)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_changes(nights: tuple[Extract, Extract], seed: int) -> None:
    before, after = nights
    _assert_incremental_equals_full(before, _mutated(after, seed))


# Look-alikes turned up: many pending pairs, each of whose cards carries both sides' markers.
LOOKALIKES = CorruptionModel(
    junior=0.5, twins=0.3, ident_family=0.1, ident_typo=0.1, ident_empty=0.2, municipal_clients=0.3
)


@pytest.fixture(scope="module")
def lookalike_nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Extract, Extract]:
    out = tmp_path_factory.mktemp("lookalikes")
    simulate(3_000, 7, 2, out, model=LOOKALIKES)
    return read_drop(out / "night1"), read_drop(out / "night2")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_changes_among_lookalikes(
    lookalike_nights: tuple[Extract, Extract], seed: int
) -> None:
    before, after = lookalike_nights
    assert len(reconcile(after.persons, after.ident_history).reviews) > 30
    _assert_incremental_equals_full(before, _mutated(after, seed))


def test_a_marker_on_one_side_of_a_pending_pair_reaches_every_card_of_it() -> None:
    """Only the kode 6 father's record changes tonight; his look-alike son's card and the
    uncertain record's card must change with it, as in a full run."""
    father, son = dt.date(1950, 3, 3), dt.date(1980, 3, 3)
    home = {"address": "Storgata 1", "postnr": "0150"}

    def night(protection: Protection | None) -> Extract:
        return Extract(
            persons=[
                PersonRecord(
                    Register.ARENA,
                    "1",
                    "1:loc",
                    make_ident(father, 100, synthetic=True),
                    "Hansen",
                    "Per",
                    birth_date=father,
                    protection=protection,
                    **home,
                ),
                PersonRecord(
                    Register.ARENA,
                    "2",
                    "2:loc",
                    make_ident(son, 101, synthetic=True),
                    "Hansen",
                    "Per",
                    birth_date=son,
                    **home,
                ),
                # a bystander, so that the three are not the whole population
                PersonRecord(Register.ARENA, "3", "3:loc", None, "Berg", "Lise", birth_date=son),
                PersonRecord(
                    Register.KOMMUNE, "sosio:0301:5", "5:loc", None, "Hansen", "Per", **home
                ),
            ]
        )

    before, after = night(None), night(Protection.STRENGT_FORTROLIG)
    assert all(make_ident(d, n, synthetic=True) for d, n in ((father, 100), (son, 101)))
    assert _assert_incremental_equals_full(before, after) == {
        "arena:1",
        "arena:2",
        "kommune:sosio:0301:5",
    }
    full = reconcile(after.persons)
    assert set(full.protection.values()) == {Protection.STRENGT_FORTROLIG}
    assert len(full.protection) == 3
    # the uncertain record is gone the next night: so are its pairs and the markers they gave
    gone = Extract(persons=after.persons[:3])
    _assert_incremental_equals_full(after, gone)
    assert not reconcile(gone.persons).reviews


def test_too_much_change_asks_for_a_full_run(nights: tuple[Extract, Extract]) -> None:
    before, after = nights
    last_night = reconcile(before.persons, before.ident_history, with_keys=True)
    old, new = _fingerprints(before), _fingerprints(after)
    changed = {k for k, h in new.items() if old.get(k) != h}
    assert changed
    answer = reconcile_changes(
        after.persons,
        after.ident_history,
        [],
        None,
        changed=changed,
        removed=set(),
        prior=Remembered(last_night),
        max_share=len(changed) / len(after.persons) / 2,
    )
    assert answer is None


def test_a_change_to_what_keys_mean_comes_with_a_new_match_state_version(sample: Path) -> None:
    """An incremental night builds on the keys the served night stored, so they must mean the
    same. If this digest changes, the keys or stage 1's floating records changed: bump
    MATCH_STATE_VERSION in personkort/store/prior.py (the next night is then a full one) and
    record the new digest here."""
    extract = read_drop(sample / "night1")
    result = reconcile(extract.persons, extract.ident_history, with_keys=True)
    made = repr((sorted(result.keys.items()), sorted(result.floating)))
    digest = hashlib.blake2b(made.encode(), digest_size=8).hexdigest()
    assert (MATCH_STATE_VERSION, digest) == (3, "b953873a55bb9b03")


def test_a_maiden_name_link_follows_a_namesake_moving_in_and_out() -> None:
    """A numberless Sosio record under a surname from before a marriage links only while no one
    else it could be shares a block with it: when another Oddny moves to the address (only her
    record changes), the link must go in the incremental night too, and come back when she
    leaves."""
    home = {"address": "Storgata 1", "postnr": "0150"}
    wife, other = dt.date(1982, 8, 8), dt.date(1950, 3, 3)
    oddny, lodger = make_ident(wife, 200, synthetic=True), make_ident(other, 300, synthetic=True)
    assert oddny and lodger

    def night(lodger_home: dict[str, str]) -> Extract:
        return Extract(
            persons=[
                PersonRecord(Register.INFOTRYGD, oddny, "1:loc", oddny, "LIEN", "ODDNY", **home),
                PersonRecord(
                    Register.KOMMUNE, "sosio:0301:1", "2:loc", None, "Brekke", "Oddny", **home
                ),
                PersonRecord(
                    Register.ARENA,
                    "3",
                    "3:loc",
                    lodger,
                    "Hauge",
                    "Oddny",
                    birth_date=other,
                    **lodger_home,
                ),
                PersonRecord(Register.ARENA, "4", "4:loc", None, "Berg", "Lise", birth_date=other),
            ]
        )

    away, moved_in = night({"address": "Fjellveien 9", "postnr": "5003"}), night(home)
    linked = [f"infotrygd:{oddny}", "kommune:sosio:0301:1"]
    assert linked in reconcile(away.persons).clusters
    assert linked not in reconcile(moved_in.persons).clusters
    _assert_incremental_equals_full(away, moved_in)
    _assert_incremental_equals_full(moved_in, away)
