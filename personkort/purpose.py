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
        if unicodedata.category(ch) not in _INVISIBLE or ch in "\t\n\r"
    )
    kept = " ".join(kept.split())
    if len(kept) > MAX_LENGTH:
        raise PurposeError("formal_for_langt", f"a purpose is at most {MAX_LENGTH} characters")
    return kept if meaningful(kept) else None


def meaningful(text: str | None) -> bool:
    """Does the text hold at least MIN_VISIBLE letters or digits?"""
    if not text:
        return False
    visible = sum(1 for ch in text if unicodedata.category(ch)[0] in "LN")
    return visible >= MIN_VISIBLE
