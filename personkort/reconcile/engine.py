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
   Different valid identity numbers never share a card. Uncertain pairs go to review.
3. **Leftovers**: records that matched no anchored person are linked to each other above the
   upper threshold (a person known to no state register, registered twice).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from personkort.reconcile.keys import block_keys, match_keys
from personkort.reconcile.profile import Profile, build_profile, record_key
from personkort.reconcile.scoring import MatchConfig, names_compatible, score
from personkort.records import IdentHistory, PersonRecord, Protection

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
        for i, prof in enumerate(p):
            if prof.authoritative or prof.ident is None:
                continue
            if prof.ident in holders:
                if self._believable(i, self.held_by[prof.ident]):
                    uf.union(holders[prof.ident], i)
                    continue
                self._demote(i)
            else:
                municipal_groups[prof.ident].append(i)
        for group in municipal_groups.values():
            first = group[0]
            for i in group[1:]:
                if self._believable(i, [first]):
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
        joins: list[tuple[int, int]] = []
        for i in floating:
            if idents.get(roots[i]):
                continue  # attached in an earlier round
            best: dict[int, tuple[float, int, dict[str, str]]] = {}
            forbidden = {roots[j] for j in self.not_same[i]}
            for j, s, ev in by_record.get(i, ()):
                root = roots[j]
                if not idents.get(root) or root in forbidden:
                    continue
                if root not in best or s > best[root][0]:
                    best[root] = (s, j, ev)
            if not best:
                continue
            # A rival counts only with corroborating evidence of its own: a namesake elsewhere
            # in the postcode does not make the person at the same address uncertain.
            ranked = sorted(
                best.items(), key=lambda kv: (not corroborated(kv[1][2]), -kv[1][0], kv[0])
            )
            _, (top, top_j, top_ev) = ranked[0]
            rivals = [s for _, (s, _, ev) in ranked[1:] if corroborated(ev)]
            rival = rivals[0] if rivals else None
            clear = rival is None or rival < self.config.lower or top - rival >= self.config.margin
            if top >= self.config.upper and clear and corroborated(top_ev):
                joins.append((i, top_j))
                pending_review.pop(i, None)
            elif top >= self.config.lower:
                pending_review[i] = [
                    (j, s, ev) for _, (s, j, ev) in ranked if s >= self.config.lower
                ]
        for i, j in joins:
            anchored = self.uf.find(j)
            root = self.uf.union(i, j)
            if root != anchored:  # keep the numbers with the cluster's new root
                idents[root] = idents.pop(anchored, frozenset()) | idents.get(root, frozenset())
        return bool(joins)

    def _link_leftovers(
        self,
        floating: list[int],
        scored: dict[tuple[int, int], tuple[float, dict[str, str]]],
        idents: dict[int, frozenset[str]],
        pending_review: dict[int, list[tuple[int, float, dict[str, str]]]],
    ) -> None:
        loose = {i for i in floating if not idents.get(self.uf.find(i))}
        for (a, b), (s, ev) in sorted(scored.items()):
            if (
                a in loose
                and b in loose
                and s >= self.config.upper
                and corroborated(ev)
                and not self._kept_apart(a, b)
            ):
                self.uf.union(a, b)

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
        for i, candidates in sorted(pending_review.items()):
            n = cluster_of[self.uf.find(i)]
            for j, s, ev in candidates:
                result.reviews.append(ReviewItem(self.p[i].key, self.p[j].key, s, ev))
                # Treated as protected until a steward decides: the strictest candidate wins.
                other = cluster_of[self.uf.find(j)]
                marker = _strictest([result.protection.get(n), result.protection.get(other)])
                if marker:
                    result.protection[n] = marker
                if other in result.skjermet:
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
