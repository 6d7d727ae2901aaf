"""What reconciliation compares: one record's identity evidence, folded and typed.

A profile is built once per source record. Identity numbers are split by how far they can be
trusted: the state registers key people by them (``authoritative``), municipal caseworkers type
them by hand, so a municipal number is only believed when the name agrees with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from personkort import ident as idents
from personkort.names import fold_address, tokens
from personkort.records import IdentHistory, PersonRecord, Protection, Register


def record_key(register: Register | str, source_key: str) -> str:
    """The key of a source record across registers: ``arena:1001``, ``kommune:sosio:0301:17``.

    Concatenated, not formatted: an f-string calls the enum's ``__format__``, which cost five
    seconds a night at a million persons; ``+`` uses the string the enum already is."""
    return register + ":" + source_key


@dataclass(slots=True)
class Profile:
    key: str
    register: Register
    ident: str | None  # a valid identity number as the record states it
    ident_birth: dt.date | None  # the birth date that number encodes
    ident_is_dnr: bool
    typed_ident: str | None  # an invalid number as typed (a typo to compare, not to trust)
    typed_birth: dt.date | None  # the date part of a typed number, where it is a date
    typed_kind: str | None  # invalid | unverified (valid, no state register holds it) | demoted
    history: tuple[str, ...]  # earlier valid numbers the register keeps for this record
    birth: dt.date | None  # stated birth date
    surname: tuple[str, ...]
    given: tuple[str, ...]  # given names and middle name, folded
    address: str | None
    postnr: str | None
    protection: Protection | None
    skjermet: bool

    @property
    def authoritative(self) -> bool:
        """State registers key their people by identity number; municipal ones type it."""
        return self.register is not Register.KOMMUNE

    @property
    def any_birth(self) -> dt.date | None:
        return self.birth or self.ident_birth

    @property
    def first_given(self) -> str | None:
        return self.given[0] if self.given else None


def build_profile(record: PersonRecord, history: list[IdentHistory] | None = None) -> Profile:
    """Fold one source record into a profile."""
    valid = idents.try_parse(record.ident)
    ident = ident_birth = typed = typed_birth = None
    is_dnr = False
    if isinstance(valid, idents.Ident):
        ident, ident_birth, is_dnr = (
            valid.value,
            valid.birth_date,
            valid.kind is idents.IdentKind.DNR,
        )
    elif record.ident:
        typed = record.ident
        typed_birth = _date_part(typed)
    earlier = []
    for h in history or ():
        parsed = idents.try_parse(h.ident)
        if isinstance(parsed, idents.Ident) and parsed.value != ident:
            earlier.append(parsed.value)
    given = tokens(record.given_names) + tokens(record.middle_name)
    return Profile(
        key=record_key(record.register, record.source_key),
        register=record.register,
        ident=ident,
        ident_birth=ident_birth,
        ident_is_dnr=is_dnr,
        typed_ident=typed,
        typed_birth=typed_birth,
        typed_kind="invalid" if typed else None,
        history=tuple(sorted(set(earlier))),
        birth=record.birth_date,
        surname=tokens(record.surname),
        given=given,
        address=fold_address(record.address),
        postnr=record.postnr,
        protection=record.protection,
        skjermet=bool(record.skjermet),
    )


def _date_part(value: str) -> dt.date | None:
    """The birth date a mistyped number would encode, if its first six digits are one."""
    if len(value) < 6 or not value[:6].isdigit():
        return None
    day, month, yy = int(value[:2]), int(value[2:4]), int(value[4:6])
    day -= 40 if day > 40 else 0
    month -= 80 if month > 80 else 0
    if len(value) >= 9 and value[6:9].isdigit():
        base = idents.century(int(value[6:9]), yy) or 1900
    else:
        base = 1900
    try:
        return dt.date(base + yy, month, day)
    except ValueError:
        return None
