"""The adapter boundary: quarantine, pandera validation and count conservation for one source.

Each source (an Arena table, an Infotrygd file, a municipal file) passes its rows through one
``Boundary``. Rows that cannot be parsed are rejected at once; rows that parse are validated
together by a pandera schema (lazily, so one run reports every failing row), and the failures are
quarantined with a reason that names the column, the value and the rule. ``close()`` proves that
every row read was either accepted or quarantined.

Nothing a source holds may escape as an exception: a value of the wrong type, out of range or too
large for the store (``adapters.limits``) is a ``BadValue`` and so a quarantined row, and the
reasons, locations and raw lines the store keeps are themselves storable text.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from adapters import limits as store_limits
from personkort import ident as idents
from personkort import kommuner
from personkort.records import Extract, Finding, Quarantined, Register, SourceCount


class RefusedSource(Exception):
    """A whole source is refused (e.g. a cut-short Infotrygd file): nothing of it may be loaded."""

    def __init__(self, register: Register, source: str, reason: str) -> None:
        reason = safe_reason(reason)  # a refusal's reason becomes the night's error text
        super().__init__(f"{register} {source} refused: {reason}")
        self.register = register
        self.source = source
        self.reason = reason


class CountMismatch(AssertionError):
    """Records in != accepted + quarantined: an adapter lost or invented a record. A bug, loudly."""


class BadValue(ValueError):
    """A value that does not parse as its type; the message is the quarantine reason."""


class Boundary:
    """Collects one source's rows, quarantine and findings, and keeps its counts honest."""

    def __init__(self, register: Register, source: str) -> None:
        self.register = register
        self.count = SourceCount(register, source)
        self.quarantine: list[Quarantined] = []
        self.findings: list[Finding] = []
        self._rows: list[dict[str, Any]] = []
        self._locations: list[str] = []
        self._raws: list[str] = []

    def reject(self, location: str, reason: str, raw: str) -> None:
        """Quarantine a row that could not be parsed at all."""
        self.count.read += 1
        self.reject_counted(location, reason, raw)

    def candidate(self, row: dict[str, Any], location: str, raw: str) -> None:
        """A parsed row, waiting for schema validation."""
        self.count.read += 1
        self._rows.append(row)
        self._locations.append(location)
        self._raws.append(raw)

    def validated(
        self, schema: type[pa.DataFrameModel], *, extra_failures: dict[int, str] | None = None
    ) -> Iterator[tuple[dict[str, Any], str]]:
        """Validate every candidate at once; yield (row, location) for the rows that pass and
        quarantine the rest. ``extra_failures`` adds reasons (by candidate index) found elsewhere,
        e.g. in a second schema over a nested part of the same record."""
        failures = schema_failures(schema, self._rows)
        for i, reason in (extra_failures or {}).items():
            failures[i] = f"{failures[i]}; {reason}" if i in failures else reason
        rows, locations, raws = self._rows, self._locations, self._raws
        self._rows, self._locations, self._raws = [], [], []
        for i, row in enumerate(rows):
            if i in failures:
                self.reject_counted(locations[i], failures[i], raws[i])
            else:
                self.count.accepted += 1
                yield row, locations[i]

    def reject_counted(self, location: str, reason: str, raw: str) -> None:
        """Quarantine a row already counted as read."""
        self.count.quarantined += 1
        self.quarantine.append(
            Quarantined(self.register, _location(location), safe_reason(reason), storable(raw))
        )

    def pending(self) -> list[dict[str, Any]]:
        """The candidates not yet validated (for a second schema over nested parts)."""
        return self._rows

    def find(self, location: str, kind: str, detail: str) -> None:
        """A finding; its detail is shown in clear like a reason, so it is scrubbed alike."""
        self.findings.append(Finding(self.register, _location(location), kind, safe_reason(detail)))

    def check_ident(self, location: str, value: str | None, what: str = "identity number") -> None:
        """Report an identity number that fails validation; the record is still read."""
        result = idents.try_parse(value)
        if isinstance(result, idents.IdentError):
            self.find(location, "invalid_ident", f"{what}: {result.problem.value}: {result}")

    def check_kommune(self, location: str, number: str | None, what: str = "kommunenr") -> None:
        """Report a pre-reform or unknown municipality number; the record is still read."""
        if not number:
            return
        now = kommuner.current(number)
        if now is None:
            self.find(location, "unknown_kommunenr", f"{what} {number} is not a known municipality")
        elif now != number:
            self.find(location, "pre_reform_kommunenr", f"{what} {number} is now {now}")

    def finish(self, out: Extract) -> Extract:
        """Close the source (proving conservation) and hand its counts, quarantine and findings
        to the extract."""
        out.counts.append(self.close())
        out.quarantine += self.quarantine
        out.findings += self.findings
        return out

    def close(self) -> SourceCount:
        """Prove conservation: every row read was accepted or quarantined."""
        if self._rows:
            raise CountMismatch(f"{self.count.source}: {len(self._rows)} rows never validated")
        if not self.count.conserved:
            c = self.count
            raise CountMismatch(
                f"{c.source}: read {c.read} != accepted {c.accepted} + quarantined {c.quarantined}"
            )
        self.count.findings = len(self.findings)
        return self.count


# Nine or more digits, whether or not spaces, dots or dashes split them: an identity number (or
# most of one). Dates (eight digits) and amounts stay, for the steward.
_NUMBER_LIKE = re.compile(r"(?<!\d)\d(?:[\s.\-\u00a0\u2010-\u2015]?\d){8,}(?!\d)")
NUMBER_WITHHELD = "[number withheld]"


def safe_reason(reason: str) -> str:
    """A quarantine reason with identity-number-like digits withheld. Reasons stay in clear in
    the store (stewards filter by them) and go to CSV exports, so whatever an adapter quoted
    from the record must not carry a person's number; the raw line (sealed) still has it."""
    return storable(_NUMBER_LIKE.sub(NUMBER_WITHHELD, reason))


def storable(text: str) -> str:
    """Text either database can hold: NUL and lone surrogates escaped (``\\x00``,
    ``\\udc80``), everything else as it was. Raw lines and reasons are kept, never refused."""
    if store_limits.text_problem(text) is None:
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _location(location: str) -> str:
    """A location that fits its column. Adapters make them short (keys that do not parse are
    located by row number); this only guards against a location that still would not fit."""
    limit = store_limits.LOCATION.length or len(location)
    return storable(location if len(location) <= limit else location[: limit - 1] + "…")


_QUOTED = re.compile(r"""("[^"]*"|'[^']*')""")


def short_error(exc: BaseException) -> str:
    """An exception as a short text safe to show a steward: its type and the first line of its
    message (a driver error's own, not the statement and parameters SQLAlchemy adds), with
    quoted parts and number-like digits withheld and at most 160 characters."""
    orig = getattr(exc, "orig", None)
    inner = orig if isinstance(orig, BaseException) else exc
    lines = str(inner).strip().splitlines()
    message = _QUOTED.sub("[withheld]", lines[0] if lines else "")
    text = safe_reason(f"{type(inner).__name__}: {message}" if message else type(inner).__name__)
    return text if len(text) <= 160 else text[:159] + "…"


def check_fits(row: dict[str, Any], limits: dict[str, store_limits.Limit]) -> None:
    """Raise BadValue if a value of ``row`` would not fit its store column (``adapters.limits``)."""
    problem = store_limits.problems(row, limits)
    if problem is not None:
        raise BadValue(problem)


def schema_failures(schema: type[pa.DataFrameModel], rows: list[dict[str, Any]]) -> dict[int, str]:
    """Run a pandera schema lazily over rows; return a reason per failing row index."""
    if not rows:
        return {}
    frame = to_frame(schema, rows)
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return _reasons(exc.failure_cases)
    return {}


def to_frame(schema: type[pa.DataFrameModel], rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Build a polars frame of exactly the schema's columns (Decimals checked as floats)."""
    dtypes = {name: col.dtype.type for name, col in schema.to_schema().columns.items()}
    data = {}
    for name, dtype in dtypes.items():
        values = [row[name] for row in rows]
        if dtype == pl.Float64:
            values = [None if v is None else float(v) for v in values]
        elif dtype == pl.Datetime:
            values = [_naive_utc(v) for v in values]
        data[name] = pl.Series(name, values, dtype=dtype, strict=False)
    return pl.DataFrame(data)


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _reasons(cases: pl.DataFrame) -> dict[int, str]:
    reasons: dict[int, list[str]] = {}
    for case in cases.iter_rows(named=True):
        index = case["index"]
        if index is None:  # a schema-wide failure (e.g. a missing column): a bug, not bad data
            raise RuntimeError(f"schema failure with no row (an adapter bug): {case}")
        rule = case["check"]
        value = case["failure_case"]
        text = (
            f"{case['column']}: {_shown(value, rule)} fails {rule}" if value is not None else rule
        )
        reasons.setdefault(int(index), []).append(text)
    return {i: "; ".join(r) for i, r in reasons.items()}


_QUOTABLE = (
    "isin",
    "greater_than",
    "less_than",
    "in_range",
    "equal_to",
    "not_equal_to",
    "field_uniqueness",
)


def _shown(value: object, rule: str) -> str:
    """A failing value as a reason quotes it. Codes (``isin``), numbers out of range and
    duplicate keys as they are (``safe_reason`` still withholds number-like digits); text that
    failed a shape rule (an identity number, a name, a postnr) only by its length, since the
    value may be a person's number or name."""
    shown = str(value)
    if str(rule).startswith(_QUOTABLE) and len(shown) <= _QUOTE_AT_MOST:
        return repr(value)
    return f"a value of {len(shown)} characters"


_QUOTE_AT_MOST = 24  # a code, an amount or a key; anything longer may be a person's text


# ---- value parsers shared by the adapters: each raises BadValue with a quarantine reason ----


def parse_date(value: object, field: str, *, fmt: str = "iso") -> dt.date | None:
    """A date from a register: ISO text, ``YYYYMMDD``, ``DD.MM.YYYY``, or a driver's date."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        if fmt == "iso":
            return _iso_date(text[:10]) if len(text) >= 10 else _fail(text)
        if fmt == "yyyymmdd":
            return None if text == "00000000" else _yyyymmdd_date(text)
        if fmt == "dmy":
            day, month, year = text.split(".")
            if len(year) != 4:
                _fail(text)
            return dt.date(int(year), int(month), int(day))
    except (ValueError, TypeError, OverflowError):
        pass
    raise BadValue(f"invalid {field} date: {_quote(text)}")


def _quote(text: str) -> str:
    """A bad value as a reason quotes it: short ones as they are, long ones by their length."""
    return repr(text) if len(text) <= _QUOTE_AT_MOST else f"a value of {len(text)} characters"


def _fail(text: str) -> dt.date:
    raise ValueError(text)


# A register holds a few tens of thousands of distinct dates in a million rows: parse each once.
@lru_cache(maxsize=1 << 17)
def _iso_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@lru_cache(maxsize=1 << 17)
def _yyyymmdd_date(text: str) -> dt.date:
    if len(text) != 8 or not text.isdigit():
        _fail(text)
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))


def parse_timestamp(value: object, field: str) -> dt.datetime | None:
    """A timestamp, ISO text or a driver's; one that has no UTC time (year 1 at +01:00) is bad."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        stamp = value
    else:
        try:
            stamp = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise BadValue(f"invalid {field} timestamp: {_quote(str(value))}") from None
    if stamp.tzinfo is not None:
        try:
            stamp.astimezone(dt.UTC)
        except OverflowError:
            raise BadValue(f"{field} timestamp is out of range in UTC") from None
    return stamp


def parse_decimal(value: object, field: str) -> Decimal | None:
    """A money amount; Norwegian text (``7 414,26``) or a driver's number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise BadValue(f"bad amount in {field}: {type(value).__name__}, not a number")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int | float):
        amount = Decimal(str(value))
    else:
        text = value.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
        if not text:
            return None
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise BadValue(f"bad amount in {field}: {_quote(value)}") from None
    if not amount.is_finite():
        raise BadValue(f"bad amount in {field}: {_quote(str(value))}")
    return amount


def parse_int(value: object, field: str) -> int:
    """A key from a register (``PERSON_ID``): an integer, or text or a number that is exactly
    one, within 64 bits. SQLite holds whatever a column is given, so anything else is bad."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float | Decimal):
        finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
        if finite and value == int(value):
            number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if 0 < len(text) <= 20 and text.lstrip("+-").isdigit() and text.isascii():
            number = int(text)
    if number is None:
        raise BadValue(f"{field} is not an integer ({_kind(value)})")
    if abs(number) > store_limits.MAX_KEY:
        raise BadValue(f"{field} is out of range for a 64-bit key")
    return number


def as_text(value: object, field: str) -> str | None:
    """Text from a database column, stripped; a number stored in a text column (SQLite keeps
    what it is given) as its digits. A BLOB or any other type is bad, and the reason says only
    what type it was."""
    if value is None:
        return None
    if isinstance(value, str):
        problem = store_limits.text_problem(value)  # any text column, a code as much as a name
        if problem is not None:
            raise BadValue(f"{field}: {problem}")
        return value.strip()
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    raise BadValue(f"{field} is {_kind(value)}, not text")


def _kind(value: object) -> str:
    """What a bad value is, without quoting it (it may be a name or a number)."""
    if value is None:
        return "missing"
    if isinstance(value, bytes | bytearray | memoryview):
        return "a BLOB"
    if isinstance(value, str):
        return f"text of {len(value)} characters"
    return f"a {type(value).__name__}"


def blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None
