"""The shared input of both linkers: one drop folder read through the adapters, each person
record folded into the same preprocessed fields, and the answer key."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters import read_drop
from personkort.reconcile.profile import build_profile, record_key
from personkort.records import Extract


@dataclass(slots=True)
class LinkageInput:
    extract: Extract
    rows: list[dict[str, Any]]  # one per person record, preprocessed
    truth: dict[str, str]  # record key → person key


def load(drop: Path) -> LinkageInput:
    extract = read_drop(drop)
    history: dict[str, list[Any]] = {}
    for h in extract.ident_history:
        history.setdefault(record_key(h.register, h.source_key), []).append(h)
    rows = []
    for p in extract.persons:
        key = record_key(p.register, p.source_key)
        prof = build_profile(p, history.get(key))
        birth = prof.any_birth or prof.typed_birth
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
    return LinkageInput(extract, rows, truth)
