"""Issue 10, item 3: U+2028, NEL, VT and ESC passed into CEF lines unescaped, so one event
could become several SIEM lines (or forge one). Now every event is exactly one line, and the
line parses back into the fields it was made from."""

from __future__ import annotations

import unicodedata
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from personkort.audit.export import REPLACEMENT, cef_line, to_cef

NASTY = "\n\r\x0b\x0c\x1b\x00\x7f\x85\u2028\u2029\x1c\x1d\x1e\u202e\u200b|=\\ \t"


def parse(line: str) -> tuple[list[str], dict[str, str]]:
    """A strict CEF reader: seven header fields split on unescaped ``|``, then ``key=value``
    pairs where a value runs to the next unescaped ``=`` preceded by `` key``."""
    assert line.startswith("CEF:0|")
    fields: list[str] = []
    current: list[str] = []
    i = len("CEF:0|")
    while len(fields) < 6:
        c = line[i]
        if c == "\\":
            assert line[i + 1] in "\\|", line[i : i + 2]
            current.append(line[i + 1])
            i += 2
        elif c == "|":
            fields.append("".join(current))
            current = []
            i += 1
        else:
            current.append(c)
            i += 1
    extension = line[i:]
    pairs: dict[str, str] = {}
    key, j = None, 0
    tokens: list[tuple[str, str]] = []  # (kind, text): an escaped char or a plain one
    while j < len(extension):
        c = extension[j]
        if c == "\\":
            nxt = extension[j + 1]
            assert nxt in "\\=nr", nxt
            tokens.append(("esc", {"n": "\n", "r": "\r"}.get(nxt, nxt)))
            j += 2
        else:
            tokens.append(("raw", c))
            j += 1
    # Split on raw '=': the key is the word before it.
    buffer: list[tuple[str, str]] = []
    for kind, c in tokens:
        if kind == "raw" and c == "=":
            text = "".join(t for _, t in buffer)
            if key is None:
                key = text
            else:
                value_text, _, next_key = text.rpartition(" ")
                pairs[key] = value_text
                key = next_key
            buffer = []
        else:
            buffer.append((kind, c))
    if key is not None:
        pairs[key] = "".join(t for _, t in buffer)
    return fields, pairs


def expected(text: str, header: bool) -> str:
    keep = "" if header else "\n\r"
    return "".join(
        c
        if c in keep or unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp", "Cs")
        else REPLACEMENT
        for c in text
    )


def event(kind: str, sub: str, purpose: str, reason: str, version: str) -> dict[str, Any]:
    return {
        "seq": 7,
        "kind": kind,
        "at": "2026-12-01T09:00:00.000000Z",
        "data": {
            "caseworker": {"sub": sub},
            "decision": "deny",
            "reason_codes": [reason],
            "policy_version": version,
            "purpose": purpose,
        },
    }


def test_the_characters_found_by_the_attack_never_break_a_line() -> None:
    line = cef_line(event("look" + NASTY, NASTY, "p" + NASTY, NASTY, "v" + NASTY))
    assert len((line + "\n").splitlines()) == 1
    assert not any(c in line for c in "\x0b\x0c\x1b\x85\u2028\u2029\x00\x7f\n\r")
    header, pairs = parse(line)
    assert header[3] == expected("look" + NASTY, header=True)
    assert pairs["cs6"] == expected("p" + NASTY, header=False)


TEXT = st.text(
    alphabet=st.one_of(st.characters(codec=None), st.sampled_from([*NASTY, "=", " ", "\ud800"])),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT, TEXT, TEXT, TEXT)
def test_any_event_text_is_one_line_that_parses_back(
    kind: str, sub: str, purpose: str, reason: str, version: str
) -> None:
    events = [event(kind, sub, purpose, reason, version), event("lookup", "Z1", "ok", "r", "v")]
    out = to_cef(events)
    lines = out.splitlines()
    assert len(lines) == 2 and out.count("\n") == 2
    assert "\u2028" not in out and "\x85" not in out
    out.encode()  # no lone surrogate survives
    header, pairs = parse(lines[0])
    assert header[:3] == ["NAV", "personkort", "1.0"] and header[3] == expected(kind, True)
    assert pairs["suid"] == expected(sub, False)
    if purpose:
        assert pairs["cs6"] == expected(purpose, False)
    if version:
        assert pairs["cs3"] == expected(version, False)
    assert pairs["externalId"] == "7" and pairs["flexString1"] == "Deny"
