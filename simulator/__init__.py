"""The register simulator: synthetic people and their nightly register extracts, in exactly the
formats of the interface agreement, with every quirk of it and an answer key.

    simulate(persons=10_000, seed=1, nights=2, out=Path("data/registers"))

writes ``out/night1/``, ``out/night2/``, ... each a drop folder with ``truth/`` beside the
extracts, and, with the Folkeregister feed (``feed=True``, the default), each night's
``folkeregister/`` snapshot and ``out/hendelserN/``: the events of the day after night N.
Deterministic for a seed. The corruption model is ``quirks.CorruptionModel``.
"""

from __future__ import annotations

import datetime as dt
import gc
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from simulator.answer_key import write_feed_truth, write_truth
from simulator.evolve import next_night
from simulator.feed import Feed
from simulator.feed_events import write_day
from simulator.formats import Night, write_arena, write_infotrygd, write_municipal
from simulator.people import Person, build
from simulator.quirks import CorruptionModel

__all__ = ["CorruptionModel", "SimulationSummary", "simulate"]

Progress = Callable[[str, int, int], None]


@dataclass(slots=True)
class SimulationSummary:
    persons: int
    nights: list[dict[str, object]] = field(default_factory=list)

    def __rich__(self) -> str:
        lines = [f"{self.persons} persons"]
        for n, night in enumerate(self.nights, start=1):
            lines.append(f"night{n}: " + ", ".join(f"{k} {v}" for k, v in night.items()))
        return "\n".join(lines)


def simulate(
    persons: int,
    seed: int,
    nights: int,
    out: Path,
    *,
    start: dt.date = dt.date(2026, 11, 20),
    model: CorruptionModel | None = None,
    progress: Progress | None = None,
    feed: bool = True,
) -> SimulationSummary:
    """Simulate ``nights`` consecutive nights of register extracts for ``persons`` people;
    ``feed=False`` leaves the Folkeregister feed out (the registers' files are the same)."""
    model = model or CorruptionModel()
    report = progress or (lambda stage, done, total: None)
    report("population", 0, persons)
    population = build(persons, random.Random(f"{seed}:population"), model, start)
    report("population", persons, persons)
    quirk_rng = random.Random(f"{seed}:quirks")
    register = Feed(population, random.Random(f"{seed}:feed"), start) if feed else None
    summary = SimulationSummary(persons)
    for n in range(1, nights + 1):
        day = start + dt.timedelta(days=n - 1)
        changes = {}
        if n > 1:
            changes = next_night(population, day, random.Random(f"{seed}:changes:{n}"))
        people = population.people
        households: dict[int, list[Person]] = {}
        for p in people:
            households.setdefault(p.household, []).append(p)
        folder = Path(out) / f"night{n}"
        night = Night(folder, day, model, random.Random(f"{seed}:night:{n}"), quirk_rng, households)
        for step, writer in enumerate((write_arena, write_infotrygd, write_municipal)):
            report(f"night{n}", step, 4)
            writer(night, people)
        if register is not None:
            changes.update(_feed_night(register, n, day, folder, Path(out), night))
        write_truth(folder / "truth", people, night.written)
        report(f"night{n}", 4, 4)
        summary.nights.append({**night.written.records, "bad": len(night.written.bad), **changes})
    return summary


def _feed_night(
    register: Feed, n: int, day: dt.date, folder: Path, out: Path, night: Night
) -> dict[str, int]:
    """The feed's part of night ``n``: families of the newcomers, the day's events before it
    (they change what this night's snapshot says), the snapshot and its answer key."""
    with _no_cycle_collection():
        return _feed_work(register, n, day, folder, out, night)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The feed makes millions of short-lived dicts without cycles: the cycle collector's
    full passes over a million live people cost more than the work (refcounting frees them)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _feed_work(
    register: Feed, n: int, day: dt.date, folder: Path, out: Path, night: Night
) -> dict[str, int]:
    seen = register.seen
    register.extend()
    register.draw_markers(register.pop.people[seen:])
    counts: dict[str, int] = {}
    if n == 1:
        persons = len(register.pop.people)
        register.pick_caseworkers(max(10, round(register.model.feed_caseworkers * persons)))
    else:
        previous = day - dt.timedelta(days=1)
        counts["hendelser"] = write_day(register, previous, out / f"hendelser{n - 1}")
    register.write_snapshot(folder, day, night.written)
    write_feed_truth(folder / "truth", register.relatives(), register.protection_rows())
    return counts
