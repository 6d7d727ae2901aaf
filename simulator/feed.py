"""The Folkeregister feed's people: the population's families as the population register holds
them, with the relatives no register knows, the feed's own markers and deaths, and NAV
caseworkers related to clients.

Everything here is drawn from its own random stream (``{seed}:feed``) and never touches what
the registers are written from, so a night's register files are the same with or without the
feed. Family structure comes from the simulator's households (a couple's children have them as
FAR and MOR, a married couple is GIFT); the feed adds people in no register: parents of adults,
adult children who moved out, a child's mother living elsewhere, spouses living apart.

People only the feed knows (keys ``F00000001`` …, never in ``persons.csv``) are born 1940–1999
and take individual numbers 900–999, a range the population's numbers never use, so no newcomer
of a later night can be given a number the feed already holds.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path

from personkort.ident import make_ident
from simulator import vocab
from simulator.formats import Written
from simulator.people import Person, Population

ENCODER = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps makes one a call
RANK = {"UGRADERT": 0, "FORTROLIG": 1, "STRENGT_FORTROLIG": 2, "STRENGT_FORTROLIG_UTLAND": 2}
SPOUSE_TYPES = ("GIFT", "REGISTRERT_PARTNER", "SEPARERT")  # with the partner's number
RELATIONS = ("parent", "child", "sibling", "partner", "coparent")  # the gate's order
FEED_ONLY_YEARS = (1940, 1999)  # individual numbers 900-999 exist only for these years
DAY = 365


@dataclass(slots=True)
class Kin:
    """A person only the population register knows: in no register, not in ``persons.csv``."""

    key: str
    gender: str
    given: str
    surname: str
    born: dt.date
    fnr: str
    died: dt.date | None = None
    gradering: str = "UGRADERT"
    absent: bool = False  # a number relations point at, but no line in the snapshot


@dataclass(slots=True)
class FeedState:
    """What the feed holds beyond the population: kept from night to night."""

    kin: list[Kin] = field(default_factory=list)
    parents: dict[str, list[str]] = field(default_factory=dict)  # child -> its parents' keys
    spouse: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (other, type)
    civil: dict[str, str] = field(default_factory=dict)  # sivilstand without a partner
    marker: dict[str, str] = field(default_factory=dict)  # population key -> feed gradering
    died: dict[str, dt.date] = field(default_factory=dict)  # deaths the registers lack
    caseworkers: list[str] = field(default_factory=list)


def grade(value: str | None) -> int:
    return RANK.get(value or "UGRADERT", 0)


def card_marker(value: str) -> str:
    """The card's marker for a gradering: kode 6 abroad is kode 6."""
    return "STRENGT_FORTROLIG" if value == "STRENGT_FORTROLIG_UTLAND" else value


class Feed:
    """The feed beside a population: builds families as people arrive, writes the snapshot."""

    def __init__(self, pop: Population, rng: random.Random, start: dt.date) -> None:
        self.pop, self.rng, self.start = pop, rng, start
        self.model = pop.model
        self.state = FeedState()
        self.seen = 0  # population people already given their families
        self.kin_marked = 0  # feed-only people whose markers are drawn
        self._children: tuple[int, dict[str, list[str]]] = (-1, {})
        self.last_numbers: dict[str, str] = {}  # population key -> number, last snapshot
        self.used: set[str] = set()

    # -- people ------------------------------------------------------------------------------

    def person(self, key: str) -> Person | Kin:
        if key[0] == "P":
            return self.pop.people[int(key[1:])]
        return self.state.kin[int(key[1:]) - 1]

    def ident(self, key: str) -> str:
        who = self.person(key)
        return who.fnr if isinstance(who, Kin) else who.ident

    def dead(self, key: str) -> dt.date | None:
        who = self.person(key)
        if isinstance(who, Kin):
            return who.died
        return self.state.died.get(key) or who.died

    def gradering(self, key: str) -> str:
        """The feed's marker: its own, or the registers' when that is as strict."""
        who = self.person(key)
        if isinstance(who, Kin):
            return who.gradering
        own = self.state.marker.get(key)
        if own is None:
            return who.protection or "UGRADERT"
        return own if grade(own) >= grade(who.protection) else who.protection or "UGRADERT"

    def _number(self, born: dt.date, gender: str) -> str | None:
        """An unused feed-only number for this birth date, or None when every one is used: a
        date has at most 50 per gender, and at two million persons the popular dates ran out
        (the draw then looped for ever)."""
        first = 900 + (gender == "M")
        drawn = (self.rng.randrange(first, 1000, 2) for _ in range(64))  # drawn as tried
        for individual in chain(drawn, range(first, 1000, 2)):  # then each in turn
            value = make_ident(born, individual, synthetic=True)
            if value and value not in self.used:
                self.used.add(value)
                return value
        return None

    def _kin(self, gender: str, surname: str, born: dt.date) -> Kin | None:
        """A feed-only person, or None when the birth date is outside the feed's years or has
        no number left."""
        if not FEED_ONLY_YEARS[0] <= born.year <= FEED_ONLY_YEARS[1]:
            return None
        table = vocab.male() if gender == "M" else vocab.female()
        given = table.draw(self.rng)
        fnr = self._number(born, gender)
        if fnr is None:  # that date's numbers are used up: no such relative
            return None
        kin = Kin(
            key=f"F{len(self.state.kin) + 1:08d}",
            gender=gender,
            given=given,
            surname=surname,
            born=born,
            fnr=fnr,
        )
        self.state.kin.append(kin)
        return kin

    def _marry(self, a: str, b: str, kind: str) -> None:
        self.state.spouse[a] = (b, kind)
        self.state.spouse[b] = (a, kind)

    # -- families ----------------------------------------------------------------------------

    def extend(self) -> None:
        """Give the people who arrived since the last call their families (households are
        contiguous in the population's list)."""
        people = self.pop.people
        start = self.seen
        while start < len(people):
            end = start + 1
            while end < len(people) and people[end].household == people[start].household:
                end += 1
            self._household(people[start:end])
            start = end
        self.seen = len(people)

    def _household(self, members: list[Person]) -> None:
        """The feed's view of one household: the couple, their children, their own parents."""
        rng, m, today = self.rng, self.model, self.start
        head, rest = members[0], members[1:]
        partner = None
        if rest and rest[0].gender == "K" and abs((rest[0].born - head.born).days) <= 1500:
            partner = rest.pop(0)
        if partner is not None:
            if partner.maiden is not None:
                self._marry(head.key, partner.key, "GIFT")
        elif not rest:
            self._single(head)
        parents = [head.key] + ([partner.key] if partner else [])
        if rest and partner is None:
            mother = self._kin("K", vocab.surnames().draw(rng), _near(rng, head.born))
            if mother is not None:
                parents.append(mother.key)
                self.state.civil[mother.key] = rng.choice(["UGIFT", "SKILT"])
                if rng.random() < 0.5:
                    self.state.civil[head.key] = "SKILT"
        for child in rest:
            self.state.parents[child.key] = parents
        for adult in [head] + ([partner] if partner else []):
            if adult.born.year >= 1962 and rng.random() < m.feed_parents:
                self._parents_of(adult.key, adult.maiden or adult.surname, adult.born, today)

    def _parents_of(self, key: str, surname: str, born: dt.date, today: dt.date) -> list[Kin]:
        rng, m = self.rng, self.model
        found = []
        for gender in ("K", "M"):
            if gender == "M" and rng.random() > 0.8:
                continue
            parent_born = born - dt.timedelta(days=rng.randint(20 * DAY, 40 * DAY))
            parent = self._kin(gender, surname, parent_born)
            if parent is None:
                continue
            if (today - parent.born).days > 75 * DAY and rng.random() < 0.3:
                parent.died = today - dt.timedelta(days=rng.randint(30, 3000))
            parent.absent = rng.random() < m.feed_dangling
            found.append(parent)
        if len(found) == 2:
            if rng.random() < 0.6:
                self._marry(found[0].key, found[1].key, "GIFT")
            else:
                for p in found:
                    self.state.civil[p.key] = "SKILT"
        if found:
            self.state.parents[key] = [p.key for p in found]
        return found

    def _single(self, head: Person) -> None:
        """A person living alone: a spouse or partner elsewhere, or a past marriage; grown
        children who moved out."""
        rng, m, today = self.rng, self.model, self.start
        age = head.age(today)
        roll = rng.random()
        if roll < 0.09:
            kind = "REGISTRERT_PARTNER" if roll < 0.03 else "GIFT" if roll < 0.06 else "SEPARERT"
            gender = head.gender if kind == "REGISTRERT_PARTNER" else "MK"[head.gender == "M"]
            other = self._kin(gender, head.surname, _near(rng, head.born))
            if other is not None:
                self._marry(head.key, other.key, kind)
        elif roll < 0.25:
            self.state.civil[head.key] = "SKILT"
        elif age > 70 and roll < 0.45:
            self.state.civil[head.key] = "ENKE_ELLER_ENKEMANN"
        if age >= 55 and rng.random() < m.feed_adult_children:
            for _ in range(rng.randint(1, 2)):
                born = head.born + dt.timedelta(days=rng.randint(20 * DAY, 40 * DAY))
                if (today - born).days < 18 * DAY:
                    continue
                child = self._kin(rng.choice("MK"), head.surname, born)
                if child is not None:
                    self.state.parents[child.key] = [head.key]

    # -- markers -----------------------------------------------------------------------------

    def draw_markers(self, people: list[Person]) -> None:
        """The feed's own markers: stricter than the registers', or where they have none
        (above all people only a municipal system knows, whose records carry no marker)."""
        rng, m = self.rng, self.model
        for p in people:
            roll = rng.random()
            if p.protection == "FORTROLIG":
                if roll < m.feed_stricter:
                    self.state.marker[p.key] = "STRENGT_FORTROLIG"
            elif p.protection is None:
                municipal_only = bool(p.client_id) and not p.arena_ids and not p.benefits
                if municipal_only and roll < m.feed_municipal_kode6:
                    self.state.marker[p.key] = "STRENGT_FORTROLIG"
                elif roll < m.feed_only_marker:
                    self.state.marker[p.key] = rng.choice(
                        ["STRENGT_FORTROLIG", "FORTROLIG", "FORTROLIG", "STRENGT_FORTROLIG_UTLAND"]
                    )
        for kin in self.state.kin[self.kin_marked :]:
            if rng.random() < m.feed_only_marker:
                kin.gradering = rng.choice(["STRENGT_FORTROLIG", "FORTROLIG"])
        self.kin_marked = len(self.state.kin)

    # -- caseworkers -------------------------------------------------------------------------

    def pick_caseworkers(self, count: int) -> None:
        """NAV caseworkers with a ``pid``, each related to a client in one of the five ways
        (what the caseworker is to the client: parent, child, sibling, partner, coparent)."""
        rng, today = self.rng, self.start
        pools: dict[str, list[str]] = {r: [] for r in RELATIONS}
        for child, parents in self.state.parents.items():
            if child[0] == "P":
                pools["parent"].extend(parents)
            for q in parents:  # a child's other parent, who is no spouse of theirs
                spouse = self.state.spouse.get(q, ("", ""))[0]
                if any(o != q and o[0] == "P" and o != spouse for o in parents):
                    pools["coparent"].append(q)
            if all(q[0] == "P" for q in parents):
                pools["child"].append(child)
            if child[0] == "P" and any(q[0] == "F" for q in parents):
                pools["sibling"].append(child)
        pools["partner"] = [k for k, (o, _) in self.state.spouse.items() if o[0] == "P"]
        for pool in pools.values():
            pool.sort()
            rng.shuffle(pool)
        chosen: set[str] = set()
        for n in range(count):
            relation = RELATIONS[n % len(RELATIONS)]
            pool = pools[relation]
            while pool:
                key = pool.pop()
                if relation == "sibling":
                    key = self._sibling_of(key, today)
                if key and key not in chosen and self._can_work(key, today):
                    chosen.add(key)
                    self.state.caseworkers.append(key)
                    break

    def _sibling_of(self, key: str, today: dt.date) -> str:
        """A new child of ``key``'s parents: a caseworker who is the client's sibling."""
        parents = self.state.parents[key]
        mother = self.person(parents[0])
        born = self.person(key).born + dt.timedelta(days=self.rng.randint(-8 * DAY, 8 * DAY))
        if (today - born).days < 25 * DAY:
            return ""
        sibling = self._kin(self.rng.choice("MK"), mother.surname, born)
        if sibling is None:
            return ""
        self.state.parents[sibling.key] = list(parents)
        return sibling.key

    def _can_work(self, key: str, today: dt.date) -> bool:
        who = self.person(key)
        if isinstance(who, Kin):
            working = who.absent is False and who.died is None
        else:
            working = who.fnr is not None and who.died is None and key not in self.state.died
        return working and 20 <= (today - who.born).days // DAY <= 67

    def children(self) -> dict[str, list[str]]:
        """Parent -> children, kept until a relation is added (relations are never changed
        or removed, so the count of children with parents says whether it is current)."""
        if self._children[0] != len(self.state.parents):
            out: dict[str, list[str]] = {}
            for child, parents in self.state.parents.items():
                for q in parents:
                    if q in out:
                        out[q].append(child)
                    else:
                        out[q] = [child]
            self._children = (len(self.state.parents), out)
        return self._children[1]

    def relatives(self) -> list[tuple[str, str, str]]:
        """``(caseworker_pid, person_key, relation)``: every population person each caseworker
        is related to, the relation being what the caseworker is to the person (the sample's
        reading: a caseworker listed with ``parent`` is that person's parent)."""
        children = self.children()
        rows = []
        for cw in self.state.caseworkers:
            pid = self.ident(cw)
            rows.extend((pid, k, r) for k, r in sorted(self._related(cw, children).items()))
        return rows

    def _related(self, cw: str, children: dict[str, list[str]]) -> dict[str, str]:
        """Population people related to ``cw``: the first relation that holds, in the gate's
        order."""
        parents, spouse = self.state.parents, self.state.spouse
        candidates = [(k, "parent") for k in children.get(cw, [])]
        candidates += [(k, "child") for k in parents.get(cw, [])]
        candidates += [(k, "sibling") for q in parents.get(cw, []) for k in children.get(q, [])]
        candidates += [(spouse[cw][0], "partner")] if cw in spouse else []
        candidates += [(k, "coparent") for c in children.get(cw, []) for k in parents.get(c, [])]
        found: dict[str, str] = {}
        for key, relation in candidates:
            if key != cw and key[0] == "P":
                found.setdefault(key, relation)
        return found

    def protection_rows(self) -> list[tuple[str, str]]:
        """``(person_key, gradering)`` for every population person the feed or a register
        protects (the card's marker: the strictest of all sources)."""
        rows = []
        for p in self.pop.people:
            value = self.gradering(p.key)
            if grade(value):
                rows.append((p.key, card_marker(value)))
        return rows

    # -- the snapshot ------------------------------------------------------------------------

    def record(
        self,
        who: Person | Kin,
        children: list[str],
        stamp: str,
        numbers: dict[str, str],
        roles: dict[str, str],
    ) -> dict[str, object]:
        """One snapshot line; ``numbers`` is every key's number in use tonight, ``roles``
        every parent's (``MOR``/``FAR``)."""
        key = who.key
        if type(who) is Kin:
            idents = [_ident(who.fnr, "FNR", "I_BRUK")]
            middle = None
            died = who.died
            gradering = who.gradering
        else:
            middle = who.middle
            if who.fnr and who.dnr:
                idents = [_ident(who.dnr, "DNR", "OPPHOERT"), _ident(who.fnr, "FNR", "I_BRUK")]
            elif who.dnr:
                idents = [_ident(who.dnr, "DNR", "I_BRUK")]
            else:
                idents = [_ident(who.fnr or "", "FNR", "I_BRUK")]
            died = self.state.died.get(key) or who.died
            gradering = self.gradering(key)
        relations = [
            {"relatertPersonsIdent": numbers[q], "relatertPersonsRolle": roles[q]}
            for q in self.state.parents.get(key, ())
        ]
        relations += [
            {"relatertPersonsIdent": numbers[c], "relatertPersonsRolle": "BARN"} for c in children
        ]
        if key in self.state.spouse:
            other, kind = self.state.spouse[key]
            civil = {"type": kind, "relatertVedSivilstand": numbers[other]}
            if not died and self.dead(other):
                civil = {"type": "ENKE_ELLER_ENKEMANN", "relatertVedSivilstand": None}
        else:
            civil = {"type": self.state.civil.get(key, "UGIFT"), "relatertVedSivilstand": None}
        return {
            "folkeregisteridentifikator": idents,
            "navn": {"fornavn": who.given, "mellomnavn": middle, "etternavn": who.surname},
            "foedselsdato": who.born.isoformat(),
            "adressebeskyttelse": gradering,
            "doedsdato": died.isoformat() if died else None,
            "forelderBarnRelasjon": relations,
            "sivilstand": [civil],
            "sistEndret": stamp,
        }

    def write_snapshot(self, folder: Path, day: dt.date, written: Written) -> int:
        """``folder/folkeregister/folkeregister_YYYYMMDD.jsonl``, one person a line in the
        order of their numbers; a few lines cut short (in ``bad.csv``: the drop's reader
        quarantines them), never one the answer keys depend on."""
        rng, m = self.rng, self.model
        children = self.children()
        stamp = f"{day.isoformat()}T01:10:00+01:00"
        numbers = {p.key: p.ident for p in self.pop.people}
        self.last_numbers = dict(numbers)  # the day's events are about people of this night
        numbers.update((k.key, k.fnr) for k in self.state.kin)
        roles = {q: "FAR" if self.person(q).gender == "M" else "MOR" for q in children}
        entries: list[tuple[str, Person | Kin]] = [(p.ident, p) for p in self.pop.people]
        entries += [(k.fnr, k) for k in self.state.kin if not k.absent]
        entries.sort(key=itemgetter(0))
        keep = self._answered(children)
        path = folder / "folkeregister" / f"folkeregister_{day.strftime('%Y%m%d')}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        encode, no_children = ENCODER.encode, []
        with path.open("w", encoding="utf-8") as f:
            for n, (_, who) in enumerate(entries, start=1):
                record = self.record(who, children.get(who.key, no_children), stamp, numbers, roles)
                line = encode(record)
                if rng.random() < m.feed_truncated and who.key not in keep:
                    line = line[: rng.randint(20, len(line) - 10)]
                    bad = ("folkeregister", f"folkeregister:line:{n}", "truncated json")
                    written.bad.append(bad)
                f.write(line + "\n")
        written.records["folkeregister"] = len(entries)
        return len(entries)

    def _answered(self, children: dict[str, list[str]]) -> set[str]:
        """People an answer key depends on: caseworkers, their relatives and the parents
        through whom they are siblings, and everyone with a marker or a death of the feed's."""
        keep = set(self.state.caseworkers) | set(self.state.marker) | set(self.state.died)
        for cw in self.state.caseworkers:
            keep.update(children.get(cw, []))
            for q in self.state.parents.get(cw, []):
                keep.add(q)
                keep.update(children.get(q, []))
            if cw in self.state.spouse:
                keep.add(self.state.spouse[cw][0])
            for c in children.get(cw, []):
                keep.update(self.state.parents.get(c, []))
        keep.update(p.key for p in self.pop.people if p.protection)
        return keep


def _ident(number: str, kind: str, status: str) -> dict[str, str]:
    return {"identifikasjonsnummer": number, "type": kind, "status": status}


def _near(rng: random.Random, born: dt.date) -> dt.date:
    return born + dt.timedelta(days=rng.randint(-1500, 1500))
