"""The shared input of both linkers: one drop folder read through the adapters, each person
record folded into the same preprocessed fields, and the answer key; and the look-alike count
both linkers are judged by."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters import read_drop
from personkort import ident as idents
from personkort.reconcile.profile import build_profile, record_key
from personkort.records import Extract


@dataclass(slots=True)
class LinkageInput:
    extract: Extract
    rows: list[dict[str, Any]]  # one per person record, preprocessed
    truth: dict[str, str]  # record key → person key
    numbers: dict[str, dict[str, dt.date]]  # record key → its valid numbers and their births


def load(drop: Path) -> LinkageInput:
    extract = read_drop(drop)
    history: dict[str, list[Any]] = {}
    for h in extract.ident_history:
        history.setdefault(record_key(h.register, h.source_key), []).append(h)
    rows = []
    numbers: dict[str, dict[str, dt.date]] = {}
    for p in extract.persons:
        key = record_key(p.register, p.source_key)
        prof = build_profile(p, history.get(key))
        birth = prof.any_birth or prof.typed_birth
        if prof.ident and prof.ident_birth:
            numbers[key] = {prof.ident: prof.ident_birth}
            for earlier in prof.history:
                parsed = idents.try_parse(earlier)
                if isinstance(parsed, idents.Ident):
                    numbers[key][parsed.value] = parsed.birth_date
        rows.append(
            {
                "unique_id": key,
                "source_dataset": p.register.value,
                "ident": prof.ident or prof.typed_ident,
                "ident_valid": prof.ident is not None,
                "earlier_idents": " ".join(prof.history) or None,
                "birth_date": birth.isoformat() if birth else None,
                "surname": " ".join(prof.surname) or None,
                "given_names": " ".join(prof.given) or None,
                "first_given": prof.first_given,
                "address": prof.address,
                "postnr": prof.postnr,
            }
        )
    with (drop / "truth" / "links.csv").open(encoding="utf-8") as f:
        truth = {
            record_key(r["register"], r["source_key"]): r["person_key"] for r in csv.DictReader(f)
        }
    return LinkageInput(extract, rows, truth, numbers)


def mixed_birth_cards(clusters: Iterable[Iterable[str]], data: LinkageInput) -> int:
    """Linked cards (two records or more) that hold valid identity numbers of two different
    birth dates: a relative's or a stranger's number on someone's card, or two look-alikes
    merged (issue 10: there must be none). Every valid number a record states counts, whether
    the linker trusted it or not: the card shows it."""
    count = 0
    for cluster in clusters:
        members = list(cluster)
        if len(members) < 2:
            continue
        births = {b for k in members for b in data.numbers.get(k, {}).values()}
        count += len(births) > 1
    return count
