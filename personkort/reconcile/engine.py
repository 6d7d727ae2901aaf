"""Identity reconciliation: which source records describe the same real person.

Three stages, each a pure function of all current records, so a night's result does not depend
on the order records arrive in, and an incremental night equals a full rebuild:

1. **Deterministic evidence.** Records that share a valid identity number held by a state
   register are one person, as are the numbers Arena keeps in ``PERSON_IDENT_HIST``. A
   municipal record's hand-typed number is believed only when the given name agrees with the
   person it belongs to; otherwise it is a family member's or a stranger's number and is demoted
   to a typed number. A D-nummer and a fødselsnummer with the same birth date and a compatible
   name are one person (registers update at different speeds). Steward decisions "same person"
   are applied here too.
2. **Probabilistic linking** of the records left without an identity number (or with a
   mistyped one): candidate clusters are found by blocking, scored pairwise
   (``scoring.score``), and a record is attached to the best candidate only if it reaches the
   upper threshold and no rival candidate, which it cannot share a card with, comes close.
   Different valid identity numbers never share a card, and look-alikes are never linked on
   scores alone (``_fits``, ``_clear``: a relative's or a stranger's number, another birth
   date, two look-alike cards, a second client of one municipal system; docs/reconciliation.md).
   One link is made below the upper threshold: a numberless record under a surname from before
   a marriage, when everything else on it is the card's and no other record fits
   (``_married_name``).
   Uncertain pairs go to review, and every card of a pair carries both sides' markers.
3. **Leftovers**: records that matched no anchored person are linked to each other above the
   upper threshold (a person known to no state register, registered twice).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from personkort import ident as idents_mod
from personkort.names import ident_distance_small
from personkort.reconcile.keys import block_keys, match_keys
from personkort.reconcile.profile import Profile, build_profile, record_key
from personkort.reconcile.scoring import MatchConfig, names_compatible, score
from personkort.records import IdentHistory, PersonRecord, Protection

# The one evidence below the upper threshold that links on its own (``_married_name``).
_MAIDEN_NAME = {
    "ident": "missing",
    "birth": "missing",
    "surname": "differ",
    "given": "equal",
    "address": "equal",
}
MAX_BLOCK = 500  # a blocking key shared by more records than this is too common to compare


@dataclass(frozen=True, slots=True)
class Decision:
    """A data steward's ruling on two source records; it binds every later night."""

    a: str  # record key
    b: str
    same: bool


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A pair a steward must settle: a record and its uncertain candidate."""

    record: str
    candidate: str  # the best-matching record of the candidate person
    score: float
    evidence: dict[str, str]


@dataclass(slots=True)
class Reconciliation:
    """The night's answer: clusters of record keys (one per real person) and open questions."""

    clusters: list[list[str]]
    reviews: list[ReviewItem] = field(default_factory=list)
    protection: dict[int, Protection] = field(default_factory=dict)  # cluster index → marker
    skjermet: set[int] = field(default_factory=set)
    demoted_idents: list[str] = field(default_factory=list)  # record keys (incremental: redone)
    floating: set[str] = field(default_factory=set)  # records no trusted number anchored
    keys: dict[str, tuple[int, ...]] = field(default_factory=dict)  # when asked: match keys


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        return ra


def reconcile(
    persons: Sequence[PersonRecord],
    history: Iterable[IdentHistory] = (),
    decisions: Iterable[Decision] = (),
    config: MatchConfig | None = None,
    *,
    with_keys: bool = False,
) -> Reconciliation:
    """Group source records into people. ``with_keys`` also returns each record's match keys
    (what an incremental night needs to find the records a change can reach)."""
    config = config or MatchConfig()
    by_record: dict[str, list[IdentHistory]] = defaultdict(list)
    for h in history:
        by_record[record_key(h.register, h.source_key)].append(h)
    profiles = sorted(
        (build_profile(p, by_record.get(record_key(p.register, p.source_key))) for p in persons),
        key=attrgetter("key"),
    )
    keys = {p.key: match_keys(p) for p in profiles} if with_keys else {}
    result = _Reconciler(profiles, list(decisions), config).run()
    result.keys = keys
    return result


class _Reconciler:
    """One night's reconciliation over profiles sorted by record key (the order every result
    list is in, whatever order the records arrived in)."""

    def __init__(self, profiles: list[Profile], decisions: list[Decision], config: MatchConfig):
        self.p = profiles
        self.config = config
        self.index = {p.key: i for i, p in enumerate(profiles)}
        self.uf = _UnionFind(len(profiles))
        self.same: list[tuple[int, int]] = []
        self.not_same: dict[int, set[int]] = defaultdict(set)
        for d in sorted(decisions, key=lambda d: (d.a, d.b)):
            if d.a in self.index and d.b in self.index:
                a, b = self.index[d.a], self.index[d.b]
                if d.same:
                    self.same.append((a, b))
                else:
                    self.not_same[a].add(b)
                    self.not_same[b].add(a)
        self.demoted: list[int] = []
        self.reviews: list[ReviewItem] = []

    # -- stage 1 ---------------------------------------------------------------------------
    def deterministic(self) -> None:
        p, uf = self.p, self.uf
        holders: dict[str, int] = {}  # identity number → the first state record holding it
        self.held_by: dict[str, list[int]] = defaultdict(list)
        for i, prof in enumerate(p):
            if not prof.authoritative:
                continue
            for number in (prof.ident, *prof.history):
                if number is None:
                    continue
                self.held_by[number].append(i)
                if number in holders:
                    uf.union(holders[number], i)
                else:
                    holders[number] = i
        municipal_groups: dict[str, list[int]] = defaultdict(list)
        # Two clients of one municipal system typed with one held number: at most one of them
        # holds it. When the names say which (a wife's record with her husband's number), that
        # one is believed; when they cannot (father and son of one name), neither is.
        clients: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, prof in enumerate(p):
            if not prof.authoritative and prof.ident in holders:
                clients[(prof.ident, _system(prof) or "")].append(i)
        shared: set[int] = set()
        for (number, _), group in clients.items():
            if len(group) > 1:
                named = [i for i in group if self._believable(i, self.held_by[number])]
                shared.update(i for i in group if len(named) != 1 or i != named[0])
        for i, prof in enumerate(p):
            if prof.authoritative or prof.ident is None:
                continue
            if i in shared:
                self._demote(i)
            elif prof.ident in holders:
                if self._believable(i, self.held_by[prof.ident]):
                    uf.union(holders[prof.ident], i)
                    continue
                self._demote(i)
            else:
                municipal_groups[prof.ident].append(i)
        for group in municipal_groups.values():
            first = group[0]
            for i in group[1:]:
                if _system(p[i]) != _system(p[first]) and self._believable(i, [first]):
                    uf.union(first, i)
            # No state register holds this number: it is unverified evidence, not a key, so it
            # must not keep the record from the person it names (a typo that happens to be
            # valid, a family member known only to the municipality, an old D-nummer).
            for i in group:
                self._unverify(i)
        self._dnr_to_fnr()
        for a, b in self.same:
            uf.union(a, b)

    def _believable(self, i: int, members: list[int]) -> bool:
        prof = self.p[i]
        if any(j in self.not_same[i] for j in members):
            return False
        if prof.birth and prof.ident_birth and prof.birth != prof.ident_birth:
            return False  # Flyt states a birth date the number contradicts
        return any(names_compatible(prof, self.p[j]) for j in members)

    def _demote(self, i: int) -> None:
        prof = self.p[i]
        prof.typed_ident, prof.typed_birth = prof.ident, prof.ident_birth
        prof.ident, prof.ident_birth = None, None
        prof.typed_kind = "demoted"
        self.demoted.append(i)

    def _unverify(self, i: int) -> None:
        prof = self.p[i]
        prof.typed_ident, prof.typed_birth = prof.ident, prof.ident_birth
        prof.ident, prof.ident_birth = None, None
        prof.typed_kind = "unverified"

    def _dnr_to_fnr(self) -> None:
        """Join a D-nummer person to a fødselsnummer person born the same day with the same name,
        when no register has recorded the change yet."""
        fnr_by_birth: dict[object, list[int]] = defaultdict(list)
        for i, prof in enumerate(self.p):
            if prof.ident and not prof.ident_is_dnr and prof.authoritative:
                fnr_by_birth[prof.ident_birth].append(i)
        for i, prof in enumerate(self.p):
            if not (prof.ident and prof.ident_is_dnr):
                continue
            matches = {
                self.uf.find(j)
                for j in fnr_by_birth.get(prof.ident_birth, ())
                if prof.surname
                and set(prof.surname) & set(self.p[j].surname)
                and names_compatible(prof, self.p[j])
                and _given_agree(prof, self.p[j])
                and _same_place(prof, self.p[j])
            }
            if len(matches) == 1:  # two candidates: leave it to the probabilistic stage
                self.uf.union(i, matches.pop())

    # -- stage 2 and 3 -------------------------------------------------------------------------
    def _stage_1(self) -> tuple[dict[int, frozenset[str]], list[int]]:
        """Stage 1, then each cluster's numbers and the records it leaves floating."""
        self.deterministic()
        idents, find = self._idents_by_root(), self.uf.find
        return idents, [i for i in range(len(self.p)) if find(i) not in idents]

    def run(self) -> Reconciliation:
        idents, floating = self._stage_1()
        blocks = self._blocks(floating)
        candidates = self._candidate_pairs(floating, blocks)
        scored: dict[tuple[int, int], tuple[float, dict[str, str]]] = {}
        for a, b in candidates:
            scored[(a, b)] = score(self.p[a], self.p[b], self.config)

        pending_review: dict[int, list[tuple[int, float, dict[str, str]]]] = {}
        for _ in range(3):  # attach, then attach again through records attached in this round
            if not self._attach_round(floating, scored, idents, pending_review):
                break
        self._link_leftovers(floating, scored, idents, pending_review)
        result = self._result(pending_review)
        result.floating = {self.p[i].key for i in floating}
        return result

    def _idents_by_root(self) -> dict[int, frozenset[str]]:
        found: dict[int, set[str]] = defaultdict(set)
        find = self.uf.find
        for i, prof in enumerate(self.p):
            if prof.ident:
                numbers = found[find(i)]
                numbers.add(prof.ident)
                if prof.history:
                    numbers.update(prof.history)
        return {root: frozenset(numbers) for root, numbers in found.items()}

    def _blocks(self, floating: list[int]) -> dict[tuple[object, ...], list[int]]:
        """Blocking keys shared with a floating record (one without a trusted number), with every
        record that has them: only those pairs are ever compared. A block no floating record is
        in yields no pair, so it is not kept (at a million persons that is 1.6 M of them)."""
        live: set[tuple[object, ...]] = set()
        for i in floating:
            live.update(block_keys(self.p[i]))
        blocks: dict[tuple[object, ...], list[int]] = defaultdict(list)
        for i, prof in enumerate(self.p):
            for key in block_keys(prof):
                if key in live:
                    blocks[key].append(i)
        return blocks

    def _candidate_pairs(
        self, floating: list[int], blocks: dict[tuple[object, ...], list[int]]
    ) -> set[tuple[int, int]]:
        is_floating = set(floating)
        pairs: set[tuple[int, int]] = set()
        for members in blocks.values():
            if len(members) < 2 or len(members) > MAX_BLOCK:
                continue
            probes = [m for m in members if m in is_floating]
            for a in probes:
                for b in members:
                    if a != b and not (b in is_floating and b < a):
                        pairs.add((a, b) if a < b else (b, a))
        return pairs

    def _attach_round(
        self,
        floating: list[int],
        scored: dict[tuple[int, int], tuple[float, dict[str, str]]],
        idents: dict[int, frozenset[str]],
        pending_review: dict[int, list[tuple[int, float, dict[str, str]]]],
    ) -> bool:
        """Decide every still-unattached floating record against the anchored people as they
        stand at the start of the round (synchronous, so the order of records does not matter)."""
        by_record: dict[int, list[tuple[int, float, dict[str, str]]]] = defaultdict(list)
        for (a, b), (s, ev) in scored.items():
            by_record[a].append((b, s, ev))
            by_record[b].append((a, s, ev))
        roots = [self.uf.find(i) for i in range(len(self.p))]
        systems: dict[int, set[str]] = defaultdict(set)  # anchored card → its municipal systems
        for k, root in enumerate(roots):
            if idents.get(root) and (system := _system(self.p[k])):
                systems[root].add(system)
        proposed: dict[int, tuple[int, int, list[tuple[int, float, dict[str, str]]]]] = {}
        for i in floating:
            if idents.get(roots[i]):
                continue  # attached in an earlier round
            best: dict[int, tuple[float, int, dict[str, str]]] = {}
            forbidden = {roots[j] for j in self.not_same[i]}
            for j, s, ev in by_record.get(i, ()):
                root = roots[j]
                if not idents.get(root) or root in forbidden:
                    continue
                # Ties go to the smaller record key: the order pairs were scored in depends on
                # which records the run holds, and an incremental run holds fewer.
                if root not in best or (s, -j) > (best[root][0], -best[root][1]):
                    best[root] = (s, j, ev)
            if not best:
                continue
            # A rival counts only with corroborating evidence of its own: a namesake elsewhere
            # in the postcode does not make the person at the same address uncertain.
            ranked = sorted(
                best.items(), key=lambda kv: (not corroborated(kv[1][2]), -kv[1][0], kv[0])
            )
            top_root, (top, top_j, top_ev) = ranked[0]
            rivals = [(s, j, ev) for _, (s, j, ev) in ranked[1:] if corroborated(ev)]
            clear = self._clear(top, top_j, top_ev, rivals)
            # One municipal system registers a person once: a second client of the same system
            # beside a card that has one is someone else (a son named after his father).
            fits = self._fits(i, idents[top_root]) and _system(self.p[i]) not in systems[top_root]
            candidates = [(j, s, ev) for _, (s, j, ev) in ranked if s >= self.config.lower]
            linked = (top >= self.config.upper and clear and corroborated(top_ev)) or (
                self._married_name(i, top_root, top_j, top_ev, by_record.get(i, ()), roots)
            )
            if fits and linked:
                proposed[i] = (top_root, top_j, candidates)
            elif top >= self.config.lower:
                pending_review[i] = candidates
        # Two clients of one system that would join one card in the same round: neither does.
        arriving: dict[tuple[int, str], int] = defaultdict(int)
        for i, (root, _, _) in proposed.items():
            if system := _system(self.p[i]):
                arriving[(root, system)] += 1
        joins: list[tuple[int, int]] = []
        for i, (root, j, candidates) in proposed.items():
            system = _system(self.p[i])
            if system and arriving[(root, system)] > 1:
                pending_review[i] = candidates
            else:
                joins.append((i, j))
                pending_review.pop(i, None)
        for i, j in joins:
            anchored = self.uf.find(j)
            root = self.uf.union(i, j)
            if root != anchored:  # keep the numbers with the cluster's new root
                idents[root] = idents.pop(anchored, frozenset()) | idents.get(root, frozenset())
        return bool(joins)

    def _married_name(
        self,
        i: int,
        top_root: int,
        top_j: int,
        top_ev: dict[str, str],
        pairs: Iterable[tuple[int, float, dict[str, str]]],
        roots: list[int],
    ) -> bool:
        """A municipal record under a surname from before a marriage: no number of any kind,
        no stated birth date, the same given names and the same address (and postnr) as the
        card, only the surname different, and no other record it could be: every record it
        shares a block with is on that card. Scores alone send it to review (given names and
        address against a different surname), yet nothing on it can be anyone else's, and it
        brings no number or birth date onto the card. Sosio states no birth date, so a married
        woman's Sosio record under her maiden name had no other way onto her card."""
        prof, card = self.p[i], self.p[top_j]
        if prof.authoritative or prof.ident or prof.typed_ident or prof.birth:
            return False
        if top_ev != _MAIDEN_NAME or not prof.postnr or prof.postnr != card.postnr:
            return False  # one street address in two towns is two homes
        return all(roots[j] == top_root for j, _, _ in pairs)

    def _clear(
        self,
        top: float,
        top_j: int,
        top_ev: dict[str, str],
        rivals: list[tuple[float, int, dict[str, str]]],
    ) -> bool:
        """No rival person comes close, and no rival is a look-alike of the winner that the
        record cannot tell apart from it (class c: father and son of one name at one address,
        twins): scores alone would let a shortened or mistyped given name decide."""
        if not rivals:
            return True
        rival = rivals[0][0]
        if rival >= self.config.lower and top - rival < self.config.margin:
            return False
        for s, j, ev in rivals:
            if s < self.config.lower:
                break  # ranked: every later rival scores lower still
            if _look_alike(self.p[top_j], self.p[j]) and not _tells_apart(top_ev, ev):
                return False
        return True

    def _fits(self, i: int, numbers: frozenset[str]) -> bool:
        """Whether record i's own identity evidence allows it onto a card holding these verified
        numbers at all, whatever the names and address say (classes a and b of issue 10):

        - a valid number it carries (someone else's, or one no state register holds) is one of
          the card's: a relative's or a stranger's number on a card would open that person's
          consents and put two birth dates on one card. The one exception is the person's
          other kind of number: a fødselsnummer on a card that holds only D-numbers of the same
          birth date, or the reverse (the registers learn of the change at different speeds);
        - a mistyped number is one typo from one of the card's numbers: further off, it is most
          likely a typo of someone else's number (a son's record beside his father's card);
        - a stated birth date is the birth date of one of the card's numbers.
        Such a record goes to review or stays on a card of its own."""
        prof = self.p[i]
        typed = prof.typed_ident
        if typed and prof.typed_kind in ("demoted", "unverified"):
            if typed not in numbers and not (
                prof.typed_kind == "unverified" and _other_kind_same_birth(typed, numbers)
            ):
                return False
        elif (
            typed
            and _eleven_digits(typed)
            and not any(ident_distance_small(typed, n) for n in numbers)
        ):
            return False
        return not (prof.birth and prof.birth not in {_birth_of(n) for n in numbers})

    def _link_leftovers(
        self,
        floating: list[int],
        scored: dict[tuple[int, int], tuple[float, dict[str, str]]],
        idents: dict[int, frozenset[str]],
        pending_review: dict[int, list[tuple[int, float, dict[str, str]]]],
    ) -> None:
        loose = {i for i in floating if not idents.get(self.uf.find(i))}
        evidence = {i: _Carried.of(self.p[i]) for i in loose}
        for (a, b), (s, ev) in sorted(scored.items()):
            if (
                a in loose
                and b in loose
                and s >= self.config.upper
                and corroborated(ev)
                and not self._kept_apart(a, b)
            ):
                ra, rb = self.uf.find(a), self.uf.find(b)
                if ra == rb:
                    continue
                joined = evidence[ra].join(evidence[rb])
                if joined is None:
                    continue  # two numbers or two birth dates: not one card without a steward
                evidence[self.uf.union(a, b)] = joined

    def _kept_apart(self, a: int, b: int) -> bool:
        """A steward ruled that some record on a's card is not the person of some on b's."""
        ra, rb = self.uf.find(a), self.uf.find(b)
        return any(
            self.uf.find(x) == ra and self.uf.find(y) == rb
            for x, others in self.not_same.items()
            for y in others
        )

    def _result(
        self, pending_review: dict[int, list[tuple[int, float, dict[str, str]]]]
    ) -> Reconciliation:
        groups: dict[int, list[int]] = defaultdict(list)
        find, p = self.uf.find, self.p
        for i in range(len(p)):
            groups[find(i)].append(i)
        # Profiles are in key order, so a group's first member is its smallest key, and groups
        # first seen in index order are already in that order.
        ordered_roots = list(groups)
        cluster_of = {root: n for n, root in enumerate(ordered_roots)}
        result = Reconciliation(
            clusters=[[p[i].key for i in groups[root]] for root in ordered_roots],
            demoted_idents=[p[i].key for i in self.demoted],
        )
        for i, prof in enumerate(p):
            if not (prof.protection or prof.skjermet):
                continue
            n = cluster_of[find(i)]
            if prof.protection:
                result.protection[n] = _strictest([result.protection.get(n), prof.protection])
            if prof.skjermet:
                result.skjermet.add(n)
        pending = _UnionFind(len(ordered_roots))
        for i, candidates in sorted(pending_review.items()):
            n = cluster_of[self.uf.find(i)]
            for j, s, ev in candidates:
                result.reviews.append(ReviewItem(self.p[i].key, self.p[j].key, s, ev))
                pending.union(n, cluster_of[self.uf.find(j)])
        # Until a steward decides, every card of a pending pair is treated as the strictest of
        # both sides (spec/policy.md, "Uncertain matches"): the record's card may hold the
        # protected person's address, and so may the candidate's. Cards chained by pairs share
        # the marker too (if a may be b and a may be c, b may be c), so the result does not
        # depend on the order pairs are looked at.
        members: dict[int, list[int]] = defaultdict(list)
        for n in {cluster_of[self.uf.find(i)] for i in pending_review} | {
            cluster_of[self.uf.find(j)] for c in pending_review.values() for j, _, _ in c
        }:
            members[pending.find(n)].append(n)
        for group in members.values():
            marker = _strictest(result.protection.get(n) for n in group)
            skjermet = any(n in result.skjermet for n in group)
            for n in group:
                if marker:
                    result.protection[n] = marker
                if skjermet:
                    result.skjermet.add(n)
        return result


def floating_after_stage_1(
    profiles: list[Profile], decisions: Sequence[Decision], config: MatchConfig
) -> set[str]:
    """The records stage 1 leaves without a trusted number (the ones stage 2 compares), for
    fresh profiles sorted by key (stage 1 edits them)."""
    reconciler = _Reconciler(profiles, list(decisions), config)
    return {profiles[i].key for i in reconciler._stage_1()[1]}


def corroborated(evidence: dict[str, str]) -> bool:
    """Names alone never put two records together: a birth date, an address or a number one
    typo away must agree too (two Marit Pettersens in one postcode are two people)."""
    return (
        evidence.get("birth") in ("equal", "equal_typed")
        or evidence.get("address") == "equal"
        or evidence.get("ident") in ("one_typo", "d_and_f")
    )


def _same_place(a: Profile, b: Profile) -> bool:
    """Namesakes born the same day are common in a large population; where they live is not."""
    return bool((a.address and a.address == b.address) or (a.postnr and a.postnr == b.postnr))


def _given_agree(a: Profile, b: Profile) -> bool:
    return bool(a.given and b.given and (a.given[0] == b.given[0]))


def _strictest(markers: Iterable[Protection | None]) -> Protection | None:
    found = {m for m in markers if m}
    if Protection.STRENGT_FORTROLIG in found:
        return Protection.STRENGT_FORTROLIG
    if Protection.FORTROLIG in found:
        return Protection.FORTROLIG
    return None


def _look_alike(a: Profile, b: Profile) -> bool:
    """Two people a record with no number of its own cannot tell apart by name and place: a
    shared surname, given names that could be one person's, and the same address or the same
    birth date (father and son of one name at one address; twins)."""
    return bool(
        set(a.surname) & set(b.surname)
        and names_compatible(a, b)
        and ((a.address and a.address == b.address) or (a.any_birth and a.any_birth == b.any_birth))
    )


def _tells_apart(top: dict[str, str], rival: dict[str, str]) -> bool:
    """Firm evidence that separates the winner from a look-alike rival: a stated birth date
    that is the winner's and not the rival's, or a number one typo from the winner's only."""
    return (top.get("birth") == "equal" and rival.get("birth") == "differ") or (
        top.get("ident") == "one_typo" and rival.get("ident") != "one_typo"
    )


def _other_kind_same_birth(number: str, numbers: frozenset[str]) -> bool:
    """A D-nummer beside only fødselsnumre of its birth date, or a fødselsnummer beside only
    D-numbers of its birth date: one person's two numbers, as far as numbers can tell."""
    birth, dnr = _birth_of(number), _is_dnr(number)
    return bool(numbers) and all(_is_dnr(n) != dnr and _birth_of(n) == birth for n in numbers)


def _is_dnr(number: str) -> bool:
    return number[:1] in "4567"


def _system(prof: Profile) -> str | None:
    """The municipal system a record comes from (``kommune:sosio:0301``): one system keeps one
    client record per person, so two of its clients are two people."""
    if prof.authoritative:
        return None
    return prof.key.rpartition(":")[0]


def _eleven_digits(value: str) -> bool:
    return len(value) == 11 and value.isdigit()


def _birth_of(number: str) -> dt.date | None:
    parsed = idents_mod.try_parse(number)
    return parsed.birth_date if isinstance(parsed, idents_mod.Ident) else None


@dataclass(frozen=True, slots=True)
class _Carried:
    """What the records of a card with no verified number state about identity: the valid
    numbers they carry, the mistyped ones, the firm birth dates, and whether one carries a
    number found to be someone else's."""

    valid: frozenset[str]
    typed: frozenset[str]
    births: frozenset[dt.date]
    someone_elses: bool
    systems: frozenset[str]  # the municipal systems its records come from

    @classmethod
    def of(cls, prof: Profile) -> _Carried:
        valid: set[str] = set()
        typed: set[str] = set()
        births: set[dt.date | None] = set()
        if prof.typed_ident and prof.typed_kind == "unverified":
            valid.add(prof.typed_ident)
            births.add(prof.typed_birth)
        elif prof.typed_ident and _eleven_digits(prof.typed_ident):
            typed.add(prof.typed_ident)
        if prof.birth:
            births.add(prof.birth)
        firm = frozenset(b for b in births if b)
        system = _system(prof)
        return cls(
            frozenset(valid),
            frozenset(typed),
            firm,
            prof.typed_kind == "demoted",
            frozenset({system} if system else ()),
        )

    def join(self, other: _Carried) -> _Carried | None:
        """The two cards' evidence together, or None when it cannot be one person's: a number
        found to be someone else's, two valid numbers of one kind, two birth dates, a mistyped
        number more than one typo from another number on the card, or two clients of one
        municipal system."""
        if self.someone_elses or other.someone_elses or self.systems & other.systems:
            return None
        valid, typed = self.valid | other.valid, self.typed | other.typed
        births = self.births | other.births
        if len(births) > 1 or len({_is_dnr(n) for n in valid}) < len(valid):
            return None  # two birth dates, or two numbers of one kind
        for x in typed:
            if any(y != x and not ident_distance_small(x, y) for y in valid | typed):
                return None
        return _Carried(valid, typed, births, False, self.systems | other.systems)
