"""Match keys: every value reconciliation brings two records together by.

Two records can only influence each other's outcome if they share one of these: an identity
number (stage 1 joins holders of a number), a surname with the birth date a number encodes
(stage 1 joins a D-nummer to its fødselsnummer), or a blocking key (stage 2 compares records in
a block when one of them has no trusted number). An incremental night follows these keys from
the records that changed to every record whose card could change with them.

Keys are stored as 64-bit hashes. The lowest bit tells the kinds apart: even for "always an
edge" (numbers), odd for blocks (an edge only when one side has no trusted number). A hash
collision can only make two records look related when they are not, which makes a night
recompute more, never less.
"""

from __future__ import annotations

import hashlib

from personkort.reconcile.profile import Profile

BlockKey = tuple[object, ...]


def block_keys(prof: Profile) -> set[BlockKey]:
    """The blocks a record is in: surname with birth date or with given name and postcode, given
    name with birth date or with address."""
    birth = prof.birth or prof.ident_birth or prof.typed_birth
    first = prof.given[0] if prof.given else None
    keys: set[BlockKey] = set()
    for s in prof.surname:
        if birth:
            keys.add(("sb", s, birth))
        if first:
            keys.add(("sgp", s, first, prof.postnr))
    if first and birth:
        keys.add(("gb", first, birth))
    if first and prof.address:
        keys.add(("ga", first, prof.address))
    return keys


def number_keys(prof: Profile) -> set[BlockKey]:
    """What stage 1 joins by: the valid numbers a record states or keeps a history of, and for
    a numbered record each surname with the birth date the number encodes."""
    keys: set[BlockKey] = {("n", number) for number in (prof.ident, *prof.history) if number}
    if prof.ident:
        keys.update(("d", s, prof.ident_birth) for s in prof.surname)
    return keys


def match_keys(prof: Profile) -> tuple[int, ...]:
    """A fresh profile's keys, hashed (numbers even, blocks odd), sorted."""
    hashed = {_hash(k) & ~1 for k in number_keys(prof)}
    hashed.update(_hash(k) | 1 for k in block_keys(prof))
    return tuple(sorted(hashed))


def is_block(key: int) -> bool:
    return bool(key & 1)


def _hash(key: BlockKey) -> int:
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
