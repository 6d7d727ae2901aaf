"""What the store can hold, checked at the adapter boundary so that a value that does not fit is
quarantined with its reason instead of failing the whole night when it is written.

The limits are read from the store's models (``personkort.store.models``): one source of truth,
so a column made wider or narrower there moves the boundary with it. Each adapter names, per
source field, the column the field ends up in; ``check`` raises ``BadValue`` naming the field
and the limit, never the value (a surname, an identity number). Text must also be storable at
all: PostgreSQL text holds no NUL character, and neither database takes a lone surrogate (which
a JSON ``\\ud800`` escape or undecodable SQLite text yields).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.orm import InstrumentedAttribute

from personkort.store import models as m


@dataclass(frozen=True, slots=True)
class Limit:
    """One store column as the boundary checks it: text of at most ``length`` characters (None:
    unbounded text), or a number of ``precision`` digits, ``scale`` of them after the point."""

    column: str  # table.column, for the reason
    length: int | None = None
    precision: int = 0  # 0: not a number column
    scale: int = 0

    def problem(self, value: object) -> str | None:
        """Why ``value`` does not fit this column (without quoting it), or None."""
        if value is None:
            return None
        if isinstance(value, str):
            if self.length is not None and len(value) > self.length:
                return f"{len(value)} characters, {self.column} holds at most {self.length}"
            return text_problem(value)
        if isinstance(value, Decimal | float | int) and self.precision:
            return self._number_problem(Decimal(value) if not isinstance(value, Decimal) else value)
        return None

    def _number_problem(self, value: Decimal) -> str | None:
        if not value.is_finite():
            return f"not a finite number ({self.column})"
        digits = self.precision - self.scale
        # what rounds to 10 ** digits at the column's scale no longer fits
        if abs(value) >= Decimal(10) ** digits - Decimal(1).scaleb(-self.scale) / 2:
            return f"more than {digits} digits before the point, {self.column} holds {digits}"
        return None


def text_problem(value: str) -> str | None:
    """Why text cannot be stored at all (a NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character, which the store cannot hold"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not Unicode text)"
    return None


def column(attribute: InstrumentedAttribute[Any]) -> Limit:
    """The limit of one model column, read from its type."""
    col = attribute.property.columns[0]
    name = f"{col.table.name}.{col.name}"
    kind = col.type
    if isinstance(kind, String) and kind.length is not None:  # Text is a String of no length
        return Limit(name, length=kind.length)
    if isinstance(kind, Numeric) and kind.precision is not None:
        return Limit(name, precision=kind.precision, scale=kind.scale or 0)
    return Limit(name)


def key_room(prefix: str) -> Limit:
    """The limit of a register's own key after ``prefix`` (``kommune:sosio:0301:``): it must fit
    both ``source_record.source_key`` (which holds it after the register) and
    ``record_key`` (which holds the register too), and every table keyed by it."""
    in_source = prefix.partition(":")[2]
    source = column(m.SourceRecord.source_key).length or 0
    whole = min(
        column(table.record_key).length or 0
        for table in (
            m.SourceRecord,
            m.IdentHistoryRow,
            m.StateBenefitRow,
            m.MeasureRow,
            m.MunicipalServiceRow,
            m.CardLink,
            m.MatchKey,
        )
    )
    room = min(source - len(in_source), whole - len(prefix))
    return Limit(f"source_record.source_key after {prefix}", length=room)


LOCATION = column(m.QuarantineRow.location)
# The largest key a 64-bit integer column (and a location) holds; Arena keys are such integers.
MAX_KEY = 2**63 - 1


def problems(row: Mapping[str, Any], limits: Mapping[str, Limit]) -> str | None:
    """Every field of ``row`` that does not fit its column, as one reason; None if all fit."""
    found = None
    for field, limit in limits.items():
        problem = limit.problem(row.get(field))
        if problem is not None:
            found = found or []
            found.append(f"{field}: {problem}")
    return "does not fit the store: " + "; ".join(found) if found else None


# ---- per source: which field lands in which column ------------------------------------------

_S = m.SourceRecord
PERSON_TEXT = {  # PersonRecord field -> its column
    "ident": column(_S.ident),
    "surname": column(_S.surname),
    "given_names": column(_S.given_names),
    "middle_name": column(_S.middle_name),
    "address": column(_S.address),
    "postnr": column(_S.postnr),
    "poststed": column(_S.poststed),
    "kommunenr": column(_S.kommunenr),
    "phone": column(_S.phone),
    "ident_type": column(_S.ident_type),
    "nav_office": column(_S.nav_office),
    "veileder": column(_S.veileder),
    "formidlingsgruppe": column(_S.formidlingsgruppe),
    "kvalifiseringsgruppe": column(_S.kvalifiseringsgruppe),
}


def _person(fields: Mapping[str, str]) -> dict[str, Limit]:
    """Source field -> the limit of the person column it fills."""
    return {source: PERSON_TEXT[target] for source, target in fields.items()}


ARENA_PERSON = _person(
    {
        "FODSELSNR": "ident",
        "ETTERNAVN": "surname",
        "FORNAVN": "given_names",
        "MELLOMNAVN": "middle_name",
        "ADRESSELINJE": "address",
        "POSTNR": "postnr",
        "POSTSTED": "poststed",
        "KOMMUNENR": "kommunenr",
        "TELEFON": "phone",
        "NAV_KONTOR": "nav_office",
        "VEILEDER_IDENT": "veileder",
        "FORMIDLINGSGRUPPEKODE": "formidlingsgruppe",
        "KVALIFISERINGSGRUPPEKODE": "kvalifiseringsgruppe",
    }
)
ARENA_IDENT_HIST = {"FODSELSNR": column(m.IdentHistoryRow.ident)}
ARENA_VEDTAK = {
    "SAKSKODE": column(m.StateBenefitRow.code),
    "VEDTAKSTATUS": column(m.StateBenefitRow.status),
    "DAGSATS": column(m.StateBenefitRow.daily_rate),
    "BEGRUNNELSE": column(m.StateBenefitRow.justification),
}
ARENA_TILTAK = {
    "TILTAKSKODE": column(m.MeasureRow.code),
    "DELTAKERSTATUS": column(m.MeasureRow.status),
    "ARRANGOR": column(m.MeasureRow.organiser),
}
# NAVN splits into surname and given names, either of which may be the whole field
_NAME = min(PERSON_TEXT["surname"], PERSON_TEXT["given_names"], key=lambda c: c.length or 0)
INFOTRYGD_PERSON = {
    **_person({"FNR": "ident", "ADRESSE": "address", "POSTNR": "postnr"}),
    "NAVN": _NAME,
}
INFOTRYGD_BENEFIT = {
    "STONADSKODE": column(m.StateBenefitRow.code),
    "DIAGNOSE": column(m.StateBenefitRow.diagnosis),
}
_SERVICE = {
    "caseworker": column(m.MunicipalServiceRow.caseworker),
    "free_text": column(m.MunicipalServiceRow.free_text),
    "monthly_amount": column(m.MunicipalServiceRow.monthly_amount),
}
SOSIO = {
    **_person(
        {
            "fodselsnummer": "ident",
            "etternavn": "surname",
            "fornavn": "given_names",
            "adresse": "address",
            "postnr": "postnr",
            "poststed": "poststed",
        }
    ),
    "klientnr": key_room("kommune:sosio:KKKK:"),
    "saksbehandler": _SERVICE["caseworker"],
    "merknad": _SERVICE["free_text"],
    "belop_mnd": _SERVICE["monthly_amount"],
}
FLYT_CLIENT = {
    **_person(
        {
            "ident": "ident",
            "identType": "ident_type",
            "fornavn": "given_names",
            "mellomnavn": "middle_name",
            "etternavn": "surname",
            "gate": "address",
            "postnr": "postnr",
            "poststed": "poststed",
            "telefon": "phone",
        }
    ),
    "klientId": key_room("kommune:flyt:KKKK:"),
}
FLYT_SERVICE = {
    "kode": column(m.MunicipalServiceRow.service),
    "saksbehandler": _SERVICE["caseworker"],
    "begrunnelse": _SERVICE["free_text"],
    "belopMnd": _SERVICE["monthly_amount"],
}

# The Folkeregister feed (adapters.folkeregister): the snapshot's names and the events' texts.
_F = m.FeedPersonRow
FEED_PERSON = {
    "fornavn": column(_F.given_names),
    "mellomnavn": column(_F.middle_name),
    "etternavn": column(_F.surname),
}
# Codes (a kind, a number's ``type``, a role) are kept as text or in JSON lists: bounded here so
# that a line cannot make them any size.
FEED_CODE = Limit("a feed code (feed_event.kind, an ident type, a role)", length=40)
FEED_EVENT_ID = column(m.FeedEventRow.event_id)
# One snapshot line or one event: far above any real person (a few hundred bytes), far below
# what would let one line hold the reader up.
FEED_LINE_BYTES = 64 * 1024
FEED_NUMBERS = 50  # numbers one person or event may carry
FEED_RELATIONS = 500  # relations one snapshot line may carry
