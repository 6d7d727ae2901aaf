"""Who a person's relatives are, from the feed's relations: the relatives gate's evidence.

A relation is a row ``(holder, related number, role)``: ``holder`` is the key (number in use)
of the snapshot person whose record lists it, ``role`` what the related number is to them.
Both ends count, so a relation is found whoever's record holds it: a caseworker the snapshot
does not know is still the father their child's record names, and a parent the snapshot does
not know still makes two children siblings.

Numbers are first mapped to their person (``canonical``): a D-nummer and the fødselsnummer that
replaced it are one person, so a relation written with either counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from personkort.feed.records import PARENT_ROLES, PARTNER_ROLES, Role

FAMILY = "egen_familie"  # parents, children, siblings
PARTNER = "egen_partner"  # spouses, registered partners, co-parents of a child
CODES = {
    "parent": FAMILY,
    "child": FAMILY,
    "sibling": FAMILY,
    "partner": PARTNER,
    "coparent": PARTNER,
}


@dataclass(frozen=True, slots=True)
class Relation:
    holder: str  # the key of the person whose record lists the relation
    related: str  # a number, perhaps one the snapshot does not hold
    role: Role  # what ``related`` is to ``holder``


class Kinship:
    """The relations among some people: enough rows to see two steps from a person (their
    parents' children are siblings, their children's parents co-parents)."""

    def __init__(self, rows: Iterable[Relation], canonical: Mapping[str, str]) -> None:
        self._canonical = canonical
        self.parents: dict[str, set[str]] = {}
        self.children: dict[str, set[str]] = {}
        self.partners: dict[str, set[str]] = {}
        for row in rows:
            holder, related = self.key(row.holder), self.key(row.related)
            if holder == related:
                continue
            if row.role in PARENT_ROLES:
                self._add(self.parents, holder, related)
                self._add(self.children, related, holder)
            elif row.role is Role.BARN:
                self._add(self.children, holder, related)
                self._add(self.parents, related, holder)
            elif row.role in PARTNER_ROLES:
                self._add(self.partners, holder, related)
                self._add(self.partners, related, holder)

    def key(self, number: str) -> str:
        return self._canonical.get(number, number)

    @staticmethod
    def _add(table: dict[str, set[str]], a: str, b: str) -> None:
        table.setdefault(a, set()).add(b)

    def relatives(self, person: str) -> dict[str, str]:
        """Each relative's key and what they are to ``person``. Closer ties win: a parent who
        is also a co-parent's partner stays a parent."""
        me = self.key(person)
        found: dict[str, str] = {}

        def add(keys: Iterable[str], relation: str) -> None:
            for k in keys:
                if k != me:
                    found.setdefault(k, relation)

        parents, children = self.parents.get(me, set()), self.children.get(me, set())
        add(parents, "parent")
        add(children, "child")
        add(self.partners.get(me, set()), "partner")
        add((s for p in parents for s in self.children.get(p, ())), "sibling")
        add((c for k in children for c in self.parents.get(k, ())), "coparent")
        return found


# What each relation is seen from the other end, and which tie counts first when a person is
# related twice (as ``Kinship.relatives`` decides it).
MUTUAL = {
    "parent": "child",
    "child": "parent",
    "partner": "partner",
    "sibling": "sibling",
    "coparent": "coparent",
}
CLOSEST_FIRST = ("parent", "child", "partner", "sibling", "coparent")


def mutual(relation: str) -> str:
    """``relation`` seen from the other person: if B is A's parent, A is B's child."""
    return MUTUAL[relation]


def closest(relations: Iterable[str]) -> str | None:
    """The closest of some ties to one person (None: no tie)."""
    found = set(relations)
    return next((r for r in CLOSEST_FIRST if r in found), None)


def code_of(relation: str | None) -> str | None:
    """The gate's reason code for a relation (None: not a relative)."""
    return CODES.get(relation or "")
