"""Pairwise evidence between two source records, Fellegi–Sunter style.

Each comparison falls into one level, and each level carries a weight: the log2 of how much more
often that level occurs between records of the same person than between different people who
share a blocking key. Weights add; the total decides link, review or nothing against the two
thresholds in ``MatchConfig``. The weights are set from the registers' known error modes and
tuned on simulated data (``bench/linkage``); every comparison is returned as evidence so that a
steward sees why two records were or were not put together.
"""

from __future__ import annotations

from dataclasses import dataclass

from personkort.names import ident_distance_small, within_one_edit
from personkort.reconcile.profile import Profile


@dataclass(frozen=True, slots=True)
class MatchConfig:
    upper: float = 12.0  # at or above: the same person
    lower: float = 5.0  # between lower and upper: a data steward decides
    margin: float = 4.0  # a winner must beat a rival candidate by this much

    # weights, log2 Bayes factors
    ident_close: float = 10.0  # a mistyped number one typo from the other's valid one
    ident_d_and_f: float = 3.0  # a D-nummer and a fødselsnummer of the same birth date
    ident_differ_unverified: float = -12.0  # a valid municipal number that is not the other's
    birth_equal: float = 7.0
    birth_differ: float = -8.0
    birth_differ_typed: float = -1.0  # the date part of a mistyped or rejected number
    surname_equal: float = 6.0
    surname_overlap: float = 3.0  # one part of a double surname, e.g. Berg-Hansen / Hansen
    surname_typo: float = 2.0
    surname_differ: float = -4.0  # not lower: surnames from before a marriage occur
    given_equal: float = 6.0
    given_first: float = 4.0  # shortened given names: Tor Ahmad / Tor
    given_typo: float = 2.0
    given_differ: float = -10.0  # twins share everything else
    address_equal: float = 4.0
    postnr_equal: float = 1.0
    address_differ: float = -1.0  # people move; registers lag


def score(a: Profile, b: Profile, config: MatchConfig) -> tuple[float, dict[str, str]]:
    """The total weight of evidence that a and b describe the same person, and its parts."""
    evidence: dict[str, str] = {}
    total = 0.0

    level, weight = _ident_level(a, b, config)
    evidence["ident"], total = level, total + weight

    level, weight = _birth_level(a, b, config)
    evidence["birth"], total = level, total + weight

    level, weight = _surname_level(a, b, config)
    evidence["surname"], total = level, total + weight

    level, weight = _given_level(a, b, config)
    evidence["given"], total = level, total + weight

    level, weight = _address_level(a, b, config)
    evidence["address"], total = level, total + weight
    return total, evidence


def _ident_level(a: Profile, b: Profile, c: MatchConfig) -> tuple[str, float]:
    if a.ident and b.ident:
        return ("equal", 20.0) if a.ident == b.ident else ("conflict", -20.0)
    for x, y in ((a, b), (b, a)):
        if (
            x.typed_kind == "unverified"
            and y.ident
            and _is_dnr(x.typed_ident or "") == _is_dnr(y.ident)
            and x.typed_ident != y.ident
        ):
            # Two different valid numbers of one kind: most likely two people, even though
            # no state register has confirmed the municipal one.
            return "differ_unverified", c.ident_differ_unverified
    for x, y in ((a, b), (b, a)):
        if x.typed_ident and (y.ident or y.typed_ident):
            other = y.ident or y.typed_ident
            if other == x.typed_ident:
                # Only a number demoted as someone else's can equal a valid one: no evidence.
                return "someone_elses", 0.0
            if other and ident_distance_small(x.typed_ident, other):
                return "one_typo", c.ident_close
    x, y = a.ident or a.typed_ident, b.ident or b.typed_ident
    if (
        x
        and y
        and _is_dnr(x) != _is_dnr(y)
        and (a.ident_birth or a.typed_birth) == (b.ident_birth or b.typed_birth)
    ):
        return "d_and_f", c.ident_d_and_f  # a D-nummer and a later fødselsnummer, same birth
    return "missing", 0.0


def _is_dnr(value: str) -> bool:
    return value[:1] in "4567"


def _birth(p: Profile) -> tuple[object, bool]:
    """A record's birth date and whether it is firm. A valid number no state register holds is
    most likely the person's own: its date is firm. A mistyped number's date part may be wrong;
    a number found to be someone else's says nothing about this person."""
    if p.any_birth:
        return p.any_birth, True
    if p.typed_kind == "unverified":
        return p.typed_birth, True
    if p.typed_kind == "invalid":
        return p.typed_birth, False
    return None, False


def _birth_level(a: Profile, b: Profile, c: MatchConfig) -> tuple[str, float]:
    (x, firm_x), (y, firm_y) = _birth(a), _birth(b)
    if not x or not y:
        return "missing", 0.0
    if firm_x and firm_y:
        return ("equal", c.birth_equal) if x == y else ("differ", c.birth_differ)
    return ("equal_typed", c.birth_equal / 2) if x == y else ("differ", c.birth_differ_typed)


def _surname_level(a: Profile, b: Profile, c: MatchConfig) -> tuple[str, float]:
    if not a.surname or not b.surname:
        return "missing", 0.0
    if a.surname == b.surname:
        return "equal", c.surname_equal
    if set(a.surname) & set(b.surname):
        return "overlap", c.surname_overlap
    if any(within_one_edit(x, y) for x in a.surname for y in b.surname):
        return "typo", c.surname_typo
    return "differ", c.surname_differ


def _given_level(a: Profile, b: Profile, c: MatchConfig) -> tuple[str, float]:
    if not a.given or not b.given:
        return "missing", 0.0
    if a.given == b.given:
        return "equal", c.given_equal
    small, large = (a.given, b.given) if len(a.given) <= len(b.given) else (b.given, a.given)
    if small[0] == large[0] or set(small) <= set(large):
        return "first", c.given_first
    if within_one_edit(a.given[0], b.given[0]):
        return "typo", c.given_typo
    # Infotrygd writes a two-word surname into what looks like the given names.
    if a.given[0] in b.given + b.surname or b.given[0] in a.given + a.surname:
        return "first", c.given_first
    return "differ", c.given_differ


def _address_level(a: Profile, b: Profile, c: MatchConfig) -> tuple[str, float]:
    if a.address and b.address and a.address == b.address:
        return "equal", c.address_equal
    if a.postnr and b.postnr:
        return ("postnr", c.postnr_equal) if a.postnr == b.postnr else ("differ", c.address_differ)
    return "missing", 0.0


def names_compatible(a: Profile, b: Profile) -> bool:
    """Could these two records name the same person? Used before trusting a hand-typed number:
    a number typed for someone whose given name is different belongs to someone else."""
    if not a.given or not b.given:
        return True
    x, y = a.given[0], b.given[0]
    return within_one_edit(x, y) or x in b.given + b.surname or y in a.given + a.surname
