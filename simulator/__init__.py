"""The register simulator: synthetic people and their nightly register extracts, in exactly the
formats of the interface agreement, with every quirk of it and an answer key.

    simulate(persons=10_000, seed=1, nights=2, out=Path("data/registers"))

writes ``out/night1/``, ``out/night2/``, ... each a drop folder with ``truth/`` beside the
extracts. Deterministic for a seed. The corruption model is ``quirks.CorruptionModel``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from simulator.answer_key import write_truth
from simulator.evolve import next_night
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
) -> SimulationSummary:
    """Simulate ``nights`` consecutive nights of register extracts for ``persons`` people."""
    model = model or CorruptionModel()
    report = progress or (lambda stage, done, total: None)
    report("population", 0, persons)
    population = build(persons, random.Random(f"{seed}:population"), model, start)
    report("population", persons, persons)
    quirk_rng = random.Random(f"{seed}:quirks")
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
        write_truth(folder / "truth", people, night.written)
        report(f"night{n}", 4, 4)
        summary.nights.append({**night.written.records, "bad": len(night.written.bad), **changes})
    return summary
