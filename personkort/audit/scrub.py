"""Finding identity numbers in free text, in any shape a person may type them, and replacing
each with ``ident:<HMAC>``: findable by auditors with the key, never readable in the log.

What counts as an identity number here: **11 digits, not glued to a further digit, with at most
a short run of separators between any two of them**. A digit is any character with a Unicode
digit value (``unicodedata.digit``: ASCII, Arabic-Indic, Devanagari, fullwidth, superscript,
mathematical digits ...). A separator run between two digits is any amount of invisible
characters (spaces of every kind incl. NBSP, thin and ideographic space, tabs, line breaks,
zero-width and bidi controls, soft hyphens, combining marks) with at most three punctuation
marks among them (``. , / \\ _ : ; ' ·`` and every dash, in any width). So ``12345678901``,
``123456 78901``, ``123456-78901``, ``12.34.56.789.01``, ``12 34 56 78 901``, ``1234 5678 901``,
``123456 - 78901`` and ``١٢٣٤٥٦٧٨٩٠١`` are all found. Digits joined this way form a *chain*;
every run of whole digit groups in a chain that holds exactly 11 digits is an identity number
(so a number next to a phone number is still found), and overlapping candidates are all
replaced. False positives (an account number, two short numbers side by side) are accepted;
misses are not. A number glued to more digits (``123456789012``) is not one.

Pure functions: the caller passes the keyed hash (``AuditKeys.ident_hmac``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Any

Hasher = Callable[[str], str]

# Values under these keys are opaque ids, hashes or file names, never free text.
OPAQUE = frozenset(
    {"card_id", "trace_id", "policy_version", "ident_hmac", "ident_hmacs", "ident_sealed", "files"}
)
IDENT_LENGTH = 11
TOKEN = re.compile(r"ident:[0-9a-f]{64}")  # already scrubbed: left alone (scrubbing is idempotent)
_PUNCT = ".,/\\_:;'`´·•∙⋅‧‚’‘\u2044\u2215\u2212+．，／＼＿：；＇｀﹒﹐﹑﹔﹕､。｡、"
_PLANES = (range(0, 0x20000), range(0xE0000, 0xE1000))  # where digits and separators live


def _class(chars: list[str]) -> str:
    """A regex class body from sorted characters, as ranges (a class of single characters
    thousands long is slow to match)."""
    parts: list[str] = []
    points = [ord(c) for c in chars]
    i = 0
    while i < len(points):
        j = i
        while j + 1 < len(points) and points[j + 1] == points[j] + 1:
            j += 1
        lo, hi = re.escape(chr(points[i])), re.escape(chr(points[j]))
        parts.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return "".join(parts)


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The chain and group patterns, built once from the Unicode database (about 50 ms)."""
    digits: list[str] = []
    invisible: list[str] = []
    punct: list[str] = []
    extra = set(_PUNCT)
    for plane in _PLANES:
        for point in plane:
            c = chr(point)
            if unicodedata.digit(c, None) is not None:
                digits.append(c)
                continue
            cat = unicodedata.category(c)
            if cat in ("Zs", "Zl", "Zp", "Cf", "Mn", "Me") or c.isspace() or cat == "Cc":
                invisible.append(c)
            elif cat == "Pd" or c in extra:
                punct.append(c)
    d, w, p = _class(digits), _class(invisible), _class(punct)
    run = f"[{w}]*+(?:[{p}][{w}]*+){{0,3}}+"
    chain = re.compile(f"[{d}](?:{run}[{d}])*")
    group = re.compile(f"[{d}]+")
    return chain, group


def ascii_digits(text: str) -> str:
    """The digits of ``text`` as ASCII, every separator dropped (``١٢٣ ٤`` -> ``1234``)."""
    return "".join(
        str(unicodedata.digit(c)) for c in text if unicodedata.digit(c, None) is not None
    )


def canonical_ident(ident: str) -> str:
    """An identity number as the index hashes it: its 11 ASCII digits when it has the shape of
    one (``123456 78901``), else the text unchanged, so every shape of one number finds it."""
    if len(ident) == IDENT_LENGTH and ident.isascii() and ident.isdigit():
        return ident  # the common case: already normalised
    digits = ascii_digits(ident)
    if len(digits) == IDENT_LENGTH and find_idents(ident):
        return digits
    return ident


def _spans(text: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, identity numbers) for every stretch of ``text`` to replace."""
    chain_re, group_re = _patterns()
    spans: list[tuple[int, int, list[str]]] = []
    for chain in chain_re.finditer(text):
        groups = list(group_re.finditer(chain.group()))
        counts = [len(g.group()) for g in groups]
        if sum(counts) < IDENT_LENGTH:
            continue
        windows: list[tuple[int, int]] = []
        for i in range(len(groups)):
            total = 0
            for j in range(i, len(groups)):
                total += counts[j]
                if total >= IDENT_LENGTH:
                    if total == IDENT_LENGTH:
                        windows.append((i, j))
                    break
        # Overlapping windows merge into one replaced stretch naming every candidate.
        merged: list[tuple[int, int, list[str]]] = []
        for i, j in windows:
            digits = ascii_digits("".join(g.group() for g in groups[i : j + 1]))
            start = chain.start() + groups[i].start()
            end = chain.start() + groups[j].end()
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], end, [*merged[-1][2], digits])
            else:
                merged.append((start, end, [digits]))
        spans.extend(merged)
    return spans


def find_idents(text: str) -> list[str]:
    """Every identity number in ``text`` (ASCII digits), in order."""
    found: list[str] = []
    for part in TOKEN.split(text):
        for _, _, numbers in _spans(part):
            found.extend(numbers)
    return found


def scrub_text(text: str, hasher: Hasher, found: set[str] | None = None) -> str:
    """``text`` with every identity number replaced by ``ident:<hasher(number)>``; the hashes
    are added to ``found`` when given (so the event's ident index can list them)."""
    if len(text) < IDENT_LENGTH or sum(map(str.isdigit, text)) < IDENT_LENGTH:
        return text  # the common case, cheaply: fewer than 11 digits of any script
    out: list[str] = []
    last = 0
    pieces = [(m.start(), m.end()) for m in TOKEN.finditer(text)]
    bounds = [0] + [p for span in pieces for p in span] + [len(text)]
    for k in range(0, len(bounds), 2):
        lo, hi = bounds[k], bounds[k + 1]
        part = text[lo:hi]
        for start, end, numbers in _spans(part):
            hashes = [hasher(n) for n in numbers]
            if found is not None:
                found.update(hashes)
            out.append(text[last : lo + start])
            out.append(" ".join(f"ident:{h}" for h in hashes))
            last = lo + end
    out.append(text[last:])
    return "".join(out)


def scrub(value: Any, hasher: Hasher, found: set[str] | None = None, key: str = "") -> Any:
    """A copy of an event's data with every identity number in every string (and dict key, and
    11-digit integer) replaced; values under ``OPAQUE`` keys are left as they are."""
    if isinstance(value, str):
        if key in OPAQUE or len(value) < IDENT_LENGTH:
            return value
        return scrub_text(value, hasher, found)
    if isinstance(value, dict):
        return {
            (
                scrub_text(k, hasher, found) if isinstance(k, str) and len(k) >= IDENT_LENGTH else k
            ): scrub(v, hasher, found, k)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v, hasher, found, key) for v in value]
    if key in OPAQUE:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) == 11:
        digest = hasher(str(abs(value)))
        if found is not None:
            found.add(digest)
        return f"ident:{digest}"
    return value
