"""Night-to-night change: what happens to a population between two extracts."""

from __future__ import annotations

import datetime as dt
import random

from simulator import vocab
from simulator.people import (
    SERVICE_TEXTS,
    Person,
    Population,
    Service,
    add_services,
    assign_registers,
)


def _some(rng: random.Random, people: list[Person], rate: float) -> list[Person]:
    """At least one when there is anyone to pick, else about ``rate`` of them."""
    if not people:
        return []
    count = max(1, round(rate * len(people)))
    return rng.sample(people, min(count, len(people)))


def next_night(pop: Population, day: dt.date, rng: random.Random) -> dict[str, int]:
    """Move the population on by one night; returns how many of each change happened."""
    m = pop.model
    pop.today = day
    stamp = dt.datetime.combine(day, dt.time(0, 30))
    alive = [p for p in pop.people if p.died is None]
    changes: dict[str, int] = {}

    movers = _some(rng, alive, m.moves)
    for p in movers:
        if rng.random() < m.move_lag and p.client_id:
            p.quirks["municipal_address"] = (p.address, p.postnr, p.poststed)
        place = vocab.places()[p.kommune]
        p.postnr, p.poststed = rng.choice(place.postnr)
        p.address = f"{vocab.streets().draw(rng)} {rng.randint(1, 120)}"
        if p.arena_ids:
            p.arena_changed = stamp
    changes["moved"] = len(movers)

    d_only = [p for p in alive if p.dnr and not p.fnr]
    got_fnr = _some(rng, d_only, m.d_to_fnr_per_night)
    for p in got_fnr:
        p.fnr = pop.numbers.new(p.born)
        p.dnr_until = day
        if p.arena_ids:
            p.arena_changed = stamp
    changes["got_fnr"] = len(got_fnr)

    old = [p for p in alive if p.age(day) > 60]
    dying = _some(rng, old, m.deaths_per_night)
    for p in dying:
        p.died = day - dt.timedelta(days=1)
        if p.arena_ids:
            p.arena_changed = stamp
    changes["died"] = len(dying)

    unprotected = [p for p in alive if p.protection is None]
    protected = _some(rng, unprotected, m.new_protection_per_night)
    for p in protected:
        p.protection = rng.choice(["STRENGT_FORTROLIG", "FORTROLIG", "FORTROLIG"])
        if p.arena_ids:
            p.arena_changed = stamp
    changes["protected"] = len(protected)

    before = len(pop.people)
    target = before + max(1, round(m.newcomers_per_night * before))
    while len(pop.people) < target:
        members = pop.household()
        for p in members:
            assign_registers(pop, p, members)
    changes["newcomers"] = len(pop.people) - before

    adults = [p for p in alive if p.age(day) >= 18]
    new_clients = _some(rng, [p for p in adults if not p.client_id], m.new_services_per_night / 2)
    for p in new_clients:
        add_services(pop, p)
    clients = [p for p in adults if p.client_id and p.services]
    for p in _some(rng, clients, m.new_services_per_night / 2):
        code = rng.choice(["KVP", "BOLIG", "GJELD"])
        p.services.append(
            Service(
                code, day, None, None, p.services[0].caseworker, rng.choice(SERVICE_TEXTS[code])
            )
        )
    ongoing = [p for p in clients if any(s.end is None for s in p.services)]
    ended = _some(rng, ongoing, m.ended_services_per_night)
    for p in ended:
        for s in p.services:
            if s.end is None:
                s.end = day
                break
    changes["new_services"] = len(new_clients)
    changes["ended_services"] = len(ended)
    return changes
