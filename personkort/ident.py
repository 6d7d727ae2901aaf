"""Norwegian identity numbers: fødselsnummer and D-nummer.

An identity number is ``DDMMYYIIIKK``: birth date, individual number ``III`` and two mod-11
control digits. A D-nummer adds 40 to the day; Skatteetaten's synthetic test numbers add 80 to the
month; both can occur at once. Every rule lives here so that adapters, reconciliation and the
simulator agree on what a valid number is and *why* an invalid one is not.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

__all__ = [
    "Gender",
    "Ident",
    "IdentError",
    "IdentKind",
    "Problem",
    "control_digits",
    "make_ident",
    "normalise",
    "parse",
    "try_parse",
]

# Control digit weights: 3 7 6 1 8 9 4 5 2 (first), 5 4 3 2 7 6 5 4 3 2 (second).
_SEPARATORS = re.compile(r"[\s.\-\u00a0]+")


class IdentKind(StrEnum):
    FNR = "FNR"
    DNR = "DNR"


class Gender(StrEnum):
    MALE = "M"
    FEMALE = "K"


class Problem(StrEnum):
    """Stable reason codes for an invalid identity number."""

    EMPTY = "empty"
    NOT_DIGITS = "not_digits"
    WRONG_LENGTH = "wrong_length"
    CONTROL_DIGIT_1 = "control_digit_1"
    CONTROL_DIGIT_2 = "control_digit_2"
    NO_CENTURY = "no_century"
    INVALID_DATE = "invalid_date"


class IdentError(ValueError):
    """An invalid identity number: ``problem`` is a stable code, ``str()`` explains it."""

    def __init__(self, problem: Problem, message: str, value: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.value = value


@dataclass(frozen=True, slots=True)
class Ident:
    """A valid identity number and what it says about its holder."""

    value: str
    kind: IdentKind
    synthetic: bool
    birth_date: dt.date
    gender: Gender

    def __str__(self) -> str:
        return self.value

    @property
    def masked(self) -> str:
        """Birth date part only, for logs and screens where the full number must not appear."""
        return self.value[:6] + "*****"


def normalise(raw: str) -> str:
    """Strip what people type between digits: spaces, dots, dashes (``278869 23363``)."""
    return _SEPARATORS.sub("", raw.strip())


def control_digits(first9: str) -> tuple[int, int] | None:
    """The two control digits for nine leading digits, or None when no valid pair exists."""
    # This runs for every record of every night: keep it lean. Bytes index as their codes, so
    # each sum is taken over the codes and the codes' share (48 × the weights' sum) taken off.
    d = first9.encode()
    k1 = (
        11
        - (
            3 * d[0]
            + 7 * d[1]
            + 6 * d[2]
            + d[3]
            + 8 * d[4]
            + 9 * d[5]
            + 4 * d[6]
            + 5 * d[7]
            + 2 * d[8]
            - 48 * 45
        )
        % 11
    )
    if k1 == 11:
        k1 = 0
    if k1 == 10:
        return None
    k2 = (
        11
        - (
            5 * d[0]
            + 4 * d[1]
            + 3 * d[2]
            + 2 * d[3]
            + 7 * d[4]
            + 6 * d[5]
            + 5 * d[6]
            + 4 * d[7]
            + 3 * d[8]
            - 48 * 39
            + 2 * k1
        )
        % 11
    )
    if k2 == 11:
        k2 = 0
    if k2 == 10:
        return None
    return k1, k2


def century(individual: int, yy: int) -> int | None:
    """The century a birth year ``yy`` belongs to, from the individual number, or None."""
    if individual <= 499:
        return 1900
    if individual <= 749 and yy >= 54:
        return 1800
    if individual >= 500 and yy <= 39:
        return 2000
    if individual >= 900 and yy >= 40:
        return 1900
    return None


def parse(raw: str) -> Ident:
    """Parse and validate a (possibly hand-typed) identity number; IdentError says why not."""
    value = raw if len(raw) == 11 and raw.isdigit() and raw.isascii() else normalise(raw)
    if not value:
        raise IdentError(Problem.EMPTY, "identity number is empty", raw)
    if not value.isdigit() or not value.isascii():
        raise IdentError(Problem.NOT_DIGITS, "identity number has non-digits", raw)
    if len(value) != 11:
        raise IdentError(
            Problem.WRONG_LENGTH, f"identity number has {len(value)} digits, not 11", raw
        )
    expected = control_digits(value[:9])
    if expected is None or int(value[9]) != expected[0]:
        raise IdentError(Problem.CONTROL_DIGIT_1, "first control digit (10th digit) fails", raw)
    if int(value[10]) != expected[1]:
        raise IdentError(Problem.CONTROL_DIGIT_2, "second control digit (11th digit) fails", raw)
    day, month, yy, individual = (
        int(value[0:2]),
        int(value[2:4]),
        int(value[4:6]),
        int(value[6:9]),
    )
    kind = IdentKind.FNR
    if day > 40:
        kind, day = IdentKind.DNR, day - 40
    synthetic = month > 80
    if synthetic:
        month -= 80
    base = century(individual, yy)
    if base is None:
        raise IdentError(
            Problem.NO_CENTURY,
            f"individual number {individual:03d} gives no century for year {yy:02d}",
            raw,
        )
    try:
        born = dt.date(base + yy, month, day)
    except ValueError:
        raise IdentError(
            Problem.INVALID_DATE,
            "the date part is not a date",
            raw,
        ) from None
    gender = Gender.MALE if individual % 2 else Gender.FEMALE
    return Ident(value, kind, synthetic, born, gender)


def try_parse(raw: str | None) -> Ident | IdentError | None:
    """Like parse, but returns the error instead of raising; None for a missing value."""
    if raw is None or not raw.strip():
        return None
    return _parsed(raw)


@lru_cache(maxsize=1 << 20)
def _parsed(raw: str) -> Ident | IdentError:
    """Every register holds the same people's numbers: parse each once per process."""
    try:
        return parse(raw)
    except IdentError as exc:
        return exc


def make_ident(
    born: dt.date, individual: int, *, dnr: bool = False, synthetic: bool = False
) -> str | None:
    """Build the identity number for a birth date and individual number, or None if the
    combination has no valid control digits or no century rule yields that birth year."""
    yy = born.year % 100
    if century(individual, yy) != born.year - yy:
        return None
    day = born.day + (40 if dnr else 0)
    month = born.month + (80 if synthetic else 0)
    first9 = f"{day:02d}{month:02d}{yy:02d}{individual:03d}"
    digits = control_digits(first9)
    if digits is None:
        return None
    return f"{first9}{digits[0]}{digits[1]}"
