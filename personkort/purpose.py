"""A stated purpose of lookup: real text, one length limit, the same on every path.

A purpose opens kode 6 and skjermet cards, so what counts as one is a rule of the domain, not of
a form: whitespace, zero-width and control characters are not a purpose (a zero-width space once
opened a kode 6 card), and invisible characters are removed before a purpose is recorded.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 500  # characters, after cleaning
MIN_VISIBLE = 3  # letters or digits: "x" is not a reason to open a protected person's card
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
# Letters that show as nothing (Unicode's Default_Ignorable code points outside the C
# categories: Hangul fillers, Khmer inherent vowels, the Braille blank, variation selectors, the
# combining grapheme joiner). Three Hangul fillers once counted as a purpose.
_BLANK_LETTERS = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u2800\u3164\uffa0"
) | frozenset(chr(c) for c in (*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)))
MAX_DIGITS = 10  # a purpose needs no identity number: 11 digits or more are refused


class PurposeError(ValueError):
    """A purpose that cannot be accepted; ``code`` is a stable reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def clean_purpose(text: str | None) -> str | None:
    """The purpose as it will be recorded, or None when there is no real text in it.

    Raises PurposeError when it is longer than MAX_LENGTH."""
    if text is None:
        return None
    text = unicodedata.normalize("NFC", text)
    kept = "".join(
        " " if unicodedata.category(ch).startswith("Z") or ch in "\t\n\r" else ch
        for ch in text
        if (unicodedata.category(ch) not in _INVISIBLE and ch not in _BLANK_LETTERS)
        or ch in "\t\n\r"
    )
    kept = " ".join(kept.split())
    if len(kept) > MAX_LENGTH:
        raise PurposeError("formal_for_langt", f"a purpose is at most {MAX_LENGTH} characters")
    if sum(1 for ch in kept if unicodedata.category(ch) == "Nd") > MAX_DIGITS:
        raise PurposeError(
            "formal_med_nummer", "a purpose may not hold an identity number (11 digits or more)"
        )
    return kept if meaningful(kept) else None


def meaningful(text: str | None) -> bool:
    """Does the text hold at least MIN_VISIBLE letters or digits?"""
    if not text:
        return False
    visible = sum(
        1 for ch in text if unicodedata.category(ch)[0] in "LN" and ch not in _BLANK_LETTERS
    )
    return visible >= MIN_VISIBLE
