"""The shipped tables the simulator draws from: names, streets and places, with frequencies.

Given names and surnames carry approximate frequencies after Statistics Norway's name statistics,
so common names are common and look-alikes occur as often as they do in a real population.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources


class Weighted:
    """Fast repeated weighted draws from one table."""

    def __init__(self, items: list[str], weights: list[float]) -> None:
        self.items = items
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def draw(self, rng: random.Random) -> str:
        return self.items[bisect.bisect(self.cumulative, rng.random() * self.total)]


@dataclass(frozen=True, slots=True)
class Place:
    kommunenr: str
    name: str
    weight: float
    system: str  # sosio | flyt
    pre_reform: tuple[str, ...]
    postnr: tuple[tuple[str, str], ...]  # (postnr, poststed)


def _rows(name: str) -> list[dict[str, str]]:
    with resources.files("simulator.tables").joinpath(name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _weighted(name: str) -> Weighted:
    rows = _rows(name)
    return Weighted([r["name"] for r in rows], [float(r["weight"]) for r in rows])


@cache
def female() -> Weighted:
    return _weighted("given_female.csv")


@cache
def male() -> Weighted:
    return _weighted("given_male.csv")


@cache
def surnames() -> Weighted:
    return _weighted("surnames.csv")


@cache
def immigrant_surnames() -> Weighted:
    return _weighted("immigrant_surnames.csv")


@cache
def streets() -> Weighted:
    rows = _rows("streets.csv")
    return Weighted([r["street"] for r in rows], [float(r["weight"]) for r in rows])


@cache
def places() -> dict[str, Place]:
    out = {}
    for r in _rows("places.csv"):
        postnr = tuple(tuple(p.split(" ", 1)) for p in r["postnr"].split("|"))
        out[r["kommunenr"]] = Place(
            r["kommunenr"],
            r["navn"],
            float(r["weight"]),
            r["system"],
            tuple(r["pre_reform"].split()),
            postnr,  # type: ignore[arg-type]
        )
    return out


@cache
def place_draw() -> Weighted:
    table = places()
    return Weighted(list(table), [p.weight for p in table.values()])


OFFICES = {
    "5001": "nav-lerkendal",
    "3203": "nav-asker",
    "3205": "nav-lillestrom",
    "3412": "nav-loten",
    "0301": "nav-oslo",
    "4601": "nav-bergen",
    "1103": "nav-stavanger",
    "5501": "nav-tromso",
    "4204": "nav-kristiansand",
    "3301": "nav-drammen",
    "1804": "nav-bodo",
    **{k: "nav-valdres" for k in ("3449", "3450", "3451", "3452", "3453", "3454")},
    **{k: "nav-varnes" for k in ("5032", "5033", "5034", "5035", "5036")},
}
