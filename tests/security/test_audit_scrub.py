"""Issue 10, item 3: identity numbers typed into a purpose or a reason with dots, dashes, grouped
digits or non-ASCII digits went into the hash-chained log in clear (and out in CEF). The
scrubber finds every shape; misses are not acceptable, false positives are."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from personkort.audit import AuditLog, audit_keys, verify
from personkort.audit.export import to_cef
from personkort.audit.models import AuditEventRow
from personkort.audit.scrub import ascii_digits, canonical_ident, find_idents, scrub, scrub_text
from personkort.store import open_engine

IDENT = "15928011418"


def tag(number: str) -> str:
    return f"<{number}>"


SHAPES = [
    "15928011418",
    "159280 11418",
    "159280-11418",
    "15.92.80.114.18",
    "15 92 80 11 418",
    "1592 8011 418",
    "159280 - 11418",
    "159280 ... 11418",
    "159280\u00a011418",  # NBSP
    "159280\u2009\u201311418",  # thin space, en dash
    "159280\u200b11418",  # zero-width space
    "1592-80.11 418",
    "١٥٩٢٨٠١١٤١٨",  # Arabic-Indic
    "۱۵۹۲۸۰۱۱۴۱۸",  # Extended Arabic-Indic (Persian)
    "１５９２８０１１４１８",  # fullwidth
    "१५९२८० ११४१८",  # Devanagari
    "159280／11418",  # fullwidth solidus
]


def test_every_shape_of_one_number_is_found_as_that_number() -> None:
    for shape in SHAPES:
        assert find_idents(f"sak om {shape}, ring meg") == [IDENT], shape
        assert scrub_text(f"sak om {shape}.", tag) == f"sak om ident:<{IDENT}>.", shape
        assert canonical_ident(shape) == IDENT, shape


def test_what_is_not_an_identity_number_is_left_alone() -> None:
    for text in (
        "Z123456",
        "ring 22 33 44 55",
        "1234567890",  # ten digits
        "123456789012",  # twelve, glued
        "pk-0123456789abcdef",
        "dato 01.02.2023",
        "oppfølging av aktivitetsplikt 2024",
    ):
        assert scrub_text(text, tag) == text, text


def test_a_number_beside_other_numbers_is_still_found() -> None:
    assert find_idents(f"tlf 22334455 {IDENT} ok") == [IDENT]
    assert find_idents(f"nr 7 {IDENT[:6]} {IDENT[6:]}") == [IDENT]
    text = f"12345 {IDENT[:6]} {IDENT[6:]}"  # two readings overlap: both are replaced
    out = scrub_text(text, tag)
    assert out == f"ident:<12345{IDENT[:6]}> ident:<{IDENT}>"


def test_scrubbing_is_idempotent_and_leaves_hashes_alone() -> None:
    keys_like = lambda n: "1" * 32 + "2" * 32  # noqa: E731 - a hash of digits only
    once = scrub_text(f"a {IDENT} b", keys_like)
    assert scrub_text(once, keys_like) == once


def test_opaque_fields_and_integers() -> None:
    found: set[str] = set()
    data = {
        "card_id": "pk-15928011418abc",
        "trace_id": "15928011418",
        "n": 15928011418,
        "reason": [f"see {IDENT}"],
        IDENT: "key",
        "ok": True,
    }
    out = scrub(data, tag, found)
    assert out["card_id"] == data["card_id"] and out["trace_id"] == data["trace_id"]
    assert out["n"] == f"ident:<{IDENT}>" and out["reason"] == [f"see ident:<{IDENT}>"]
    assert f"ident:<{IDENT}>" in out and out["ok"] is True
    assert found == {f"<{IDENT}>"}


# Separators a person (or a keyboard, or a copy from a PDF) puts between digits.
SEPARATORS = st.sampled_from(
    [
        " ",
        ".",
        "-",
        "/",
        "\u00a0",
        "\u2009",
        "\u202f",
        "\u2013",
        "\u2012",
        "\u2212",
        "\u200b",
        "\u00ad",
        "\t",
        "\u3000",
        "_",
        ",",
        ":",
        "\u00b7",
        "\uff0e",
        "\uff0d",
    ]
)
# Every decimal digit of every script, as the Unicode database knows them.
DIGITS = st.characters(categories=["Nd"])


@st.composite
def typed_number(draw: st.DrawFn) -> tuple[str, str]:
    """An 11-digit number in any script, with 0-3 separator characters between any digits."""
    digits = [draw(DIGITS) for _ in range(11)]
    parts = [digits[0]]
    for d in digits[1:]:
        parts.append("".join(draw(st.lists(SEPARATORS, max_size=3))))
        parts.append(d)
    return "".join(parts), ascii_digits("".join(digits))


CONTEXT = st.text(
    alphabet=st.characters(categories=["L", "P", "Zs", "S"], exclude_characters="0123456789"),
    max_size=12,
).map(lambda s: "".join(c for c in s if unicodedata.digit(c, None) is None))


@settings(max_examples=400, deadline=None)
@given(typed_number(), CONTEXT, CONTEXT)
def test_any_eleven_digits_with_any_separators_are_found(
    number: tuple[str, str], before: str, after: str
) -> None:
    shape, digits = number
    text = f"{before}x {shape} y{after}"
    assert digits in find_idents(text)
    out = scrub_text(text, tag)
    assert f"<{digits}>" in out
    assert ascii_digits(out.replace(f"<{digits}>", "")) == ascii_digits(before + after)


def test_the_log_stores_no_shape_of_a_number(store_url: str, tmp_path: Path) -> None:
    audit = AuditLog(open_engine(store_url), audit_keys(str(tmp_path)))
    for n, shape in enumerate(SHAPES):
        audit.append(
            "lookup",
            {"caseworker": {"sub": f"Z{n}"}, "purpose": f"oppfølging {shape}", "decision": "deny"},
        )
    with audit.engine.connect() as conn:
        bodies = conn.scalars(sa.select(AuditEventRow.body)).all()
    cef = to_cef(audit.events(limit=100))
    for shape in SHAPES:
        assert not any(shape in b for b in bodies) and shape not in cef
    for b in bodies:  # not even as digits in another script, once the hashes are taken out
        assert IDENT not in ascii_digits(re.sub(r"[0-9a-f]{64}", "", b))
    # Every shape is findable as the one number.
    assert len(audit.events(ident=IDENT, limit=100)) == len(SHAPES)
    assert verify(audit.engine, audit.keys).ok
