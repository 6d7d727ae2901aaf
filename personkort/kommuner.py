"""Municipality numbers: which are current, and what a pre-reform number became.

Registers lag behind the 2017–2024 municipal reforms (Infotrygd still writes 1601 for Trondheim).
A pre-reform number is read and reported as a data-quality finding, never rejected. The shipped
table covers the municipalities of the offices in the default policy and their predecessors.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Kommune:
    number: str
    name: str
    replaced_by: str | None  # None: a current municipality


@cache
def table() -> dict[str, Kommune]:
    """The shipped municipality table, by number."""
    with resources.files("personkort.data").joinpath("kommuner.csv").open(encoding="utf-8") as f:
        return {
            row["kommunenr"]: Kommune(row["kommunenr"], row["navn"], row["erstattet_av"] or None)
            for row in csv.DictReader(f)
        }


def current(number: str) -> str | None:
    """The current number for a municipality number, following reforms; None if unknown."""
    seen: set[str] = set()
    while (k := table().get(number)) is not None and number not in seen:
        if k.replaced_by is None:
            return number
        seen.add(number)
        number = k.replaced_by
    return None
