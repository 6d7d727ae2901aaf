"""The feed's pure rules: the day's events folded order-independently, and kinship."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from personkort.feed.day import fold
from personkort.feed.kinship import Kinship, Relation, code_of
from personkort.feed.records import Change, EventKind, FeedEvent, Gradering, Role
from personkort.records import Protection

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
A = "05884712345"


def event(n: int, change: Change = Change.OPPRETTET, **kw: object) -> FeedEvent:
    values: dict[str, object] = {
        "event_id": f"e{n}",
        "created": T0 + dt.timedelta(minutes=n),
        "idents": (A,),
        "kind": EventKind.ADRESSEBESKYTTELSE,
        "change": change,
        "replaces": None,
        "location": f"test:{n}",
        "gradering": Gradering.STRENGT_FORTROLIG,
    }
    values.update(kw)
    return FeedEvent(**values)  # type: ignore[arg-type]


def test_a_raise_counts_and_a_cancelled_raise_does_not() -> None:
    raise_ = event(1)
    assert fold([raise_]).protection is Protection.STRENGT_FORTROLIG
    cancel = event(2, Change.ANNULLERT, replaces="e1", gradering=None)
    assert fold([raise_, cancel]).protection is None
    assert fold([cancel, raise_]).protection is None  # the cancellation came first


def test_a_correction_replaces_its_event_and_lifting_waits_for_the_night() -> None:
    raise_ = event(1)
    corrected = event(2, Change.KORRIGERT, replaces="e1", gradering=Gradering.FORTROLIG)
    assert fold([corrected, raise_]).protection is Protection.FORTROLIG
    lifted = event(3, Change.OPPHOERT, gradering=None)
    assert fold([raise_, lifted]).protection is Protection.STRENGT_FORTROLIG
    abroad = event(4, gradering=Gradering.STRENGT_FORTROLIG_UTLAND)
    assert fold([abroad]).protection is Protection.STRENGT_FORTROLIG


def test_events_the_snapshot_includes_are_not_the_days() -> None:
    assert fold([event(1)], after=T0 + dt.timedelta(minutes=1)).protection is None
    assert fold([event(2)], after=T0 + dt.timedelta(minutes=1)).protection is not None


def test_deaths_and_their_cancellation() -> None:
    death = event(1, kind=EventKind.DOEDSFALL, gradering=None, death_date=dt.date(2026, 11, 20))
    assert fold([death]).death_date == dt.date(2026, 11, 20)
    cancel = event(2, Change.ANNULLERT, replaces="e1", kind=EventKind.DOEDSFALL, gradering=None)
    assert fold([cancel, death]).death_date is None


DAY = [
    event(1),
    event(2, Change.ANNULLERT, replaces="e1", gradering=None),
    event(3, gradering=Gradering.FORTROLIG),
    event(4, Change.KORRIGERT, replaces="e3", gradering=Gradering.STRENGT_FORTROLIG),
    event(5, kind=EventKind.DOEDSFALL, gradering=None, death_date=dt.date(2026, 11, 20)),
    event(
        6,
        Change.KORRIGERT,
        replaces="e5",
        kind=EventKind.DOEDSFALL,
        gradering=None,
        death_date=dt.date(2026, 11, 19),
    ),
]


@settings(max_examples=200, deadline=None)
@given(st.permutations(DAY + DAY[:3]))
def test_any_order_and_duplicates_give_the_same_state(events: list[FeedEvent]) -> None:
    state = fold(events)
    assert state == fold(DAY)
    assert state.protection is Protection.STRENGT_FORTROLIG
    assert state.death_date == dt.date(2026, 11, 19)


def test_every_permutation_of_a_small_day() -> None:
    small = DAY[:4]
    states = {fold(p) for p in itertools.permutations(small)}
    assert len(states) == 1


MOTHER, FATHER, CHILD, SISTER, WIFE, OLD_DNR = (f"{n:011d}" for n in range(1, 7))


def test_kinship_from_either_end_and_through_replaced_numbers() -> None:
    rows = [
        Relation(CHILD, MOTHER, Role.MOR),  # the child's record names its mother
        Relation(FATHER, CHILD, Role.BARN),  # the father's record names the child
        Relation(SISTER, OLD_DNR, Role.MOR),  # the sister's record: the mother's old D-nummer
        Relation(FATHER, WIFE, Role.GIFT),
    ]
    kin = Kinship(rows, {OLD_DNR: MOTHER})
    child = kin.relatives(CHILD)
    assert child[MOTHER] == "parent" and child[FATHER] == "parent"
    assert child[SISTER] == "sibling"
    assert kin.relatives(MOTHER)[CHILD] == "child"
    assert kin.relatives(MOTHER)[FATHER] == "coparent"  # they share a child
    assert kin.relatives(WIFE) == {FATHER: "partner"}
    assert code_of("coparent") == "egen_partner" and code_of("sibling") == "egen_familie"
    assert code_of(None) is None
