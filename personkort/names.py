"""Norwegian names and addresses, folded so that the registers' spellings compare equal.

Registers write the same name differently: NS 4551 upper case (decoded before it gets here),
``æøå`` typed as ``ae``/``o``/``aa`` in municipal systems, several given names or the middle name
inside the given-name field, hyphenated or double surnames. Folding maps all of these onto one
ASCII spelling; comparison then works on tokens.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPLIT = re.compile(r"[\s\-]+")
_NON_ALNUM = re.compile(r"[^a-z0-9 ]+")


@lru_cache(maxsize=200_000)
def fold(text: str) -> str:
    """Case- and spelling-fold one name or word: ``Bjørg`` ``BJOERG`` ``Bjorg`` → ``bjorg``."""
    text = text.casefold().replace("æ", "ae").replace("ø", "o").replace("å", "a")
    text = text.replace("aa", "a").replace("oe", "o")
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def tokens(name: str | None) -> tuple[str, ...]:
    """Folded name tokens, split at spaces and hyphens."""
    if not name:
        return ()
    return tuple(fold(t) for t in _SPLIT.split(name.strip()) if t)


def fold_address(address: str | None) -> str | None:
    """An address folded for comparison: ``Øvre Slottsgate 68`` → ``ovre slottsgate 68``."""
    if not address:
        return None
    folded = _NON_ALNUM.sub(" ", fold(address))
    folded = " ".join(folded.split())
    return folded or None


def within_one_edit(a: str, b: str) -> bool:
    """True when a and b differ by at most one insertion, deletion, substitution or adjacent
    transposition (a typed name: ``Bjøørg``/``Bjørg``, ``Sijle``/``Silje``)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


def ident_distance_small(a: str, b: str) -> bool:
    """Two 11-digit numbers one typo apart: one digit differs, or two adjacent are swapped."""
    return len(a) == len(b) == 11 and within_one_edit(a, b)
