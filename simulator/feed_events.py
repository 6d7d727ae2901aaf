"""The day's Folkeregister events between two nights, with their answer key.

Raises of a marker the next night's registers still lack, one raise that is cancelled
(``ANNULLERT``), two whose gradering is corrected (``KORRIGERT``, one up, one down), the deaths
of the night's change (the registers learn of those the next night too) and a few deaths the
registers do not know yet. Delivered in a few files, out of order across and within them, one
event twice, a correction before the event it corrects. Applying them changes the feed's state,
so the next night's snapshot holds everything they said.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

from simulator.feed import Feed, card_marker, grade
from simulator.people import Person

Event = dict[str, object]
CORRECTIONS = (("FORTROLIG", "STRENGT_FORTROLIG"), ("STRENGT_FORTROLIG", "FORTROLIG"))  # up, down


def _uuid(feed: Feed) -> str:
    h = f"{feed.rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _idents(p: Person) -> list[str]:
    """Every number of the person, the one in use first."""
    return [p.fnr, p.dnr] if p.fnr and p.dnr else [p.ident]


def _event(
    feed: Feed,
    p: Person,
    at: dt.datetime,
    kind: str,
    change: str,
    payload: dict[str, object],
    earlier: str | None = None,
) -> Event:
    field = {"ADRESSEBESKYTTELSE_V1": "adressebeskyttelse", "DOEDSFALL_V1": "doedsfall"}[kind]
    return {
        "hendelseId": _uuid(feed),
        "opprettet": at.strftime("%Y-%m-%dT%H:%M:00+01:00"),
        "personidenter": _idents(p),
        "opplysningstype": kind,
        "endringstype": change,
        "tidligereHendelseId": earlier,
        field: payload,
    }


def write_day(feed: Feed, day: dt.date, folder: Path) -> int:
    """Write ``folder/hendelser_*.jsonl`` and ``folder/expected.csv`` for ``day``; apply the
    events to the feed. Call after the next night's change, before its snapshot."""
    rng, m, state = feed.rng, feed.model, feed.state
    people = feed.pop.people
    size = len(people)

    def at() -> dt.datetime:
        return dt.datetime.combine(day, dt.time(rng.randint(7, 15), rng.randint(0, 59)))

    last = feed.last_numbers  # not a newcomer of tonight, nor one with a new number
    alive = [
        p
        for p in people
        if p.died is None and p.key not in state.died and last.get(p.key) == p.ident
    ]
    open_ = [p for p in alive if not grade(feed.gradering(p.key))]
    raises = max(3, round(m.feed_raises_per_day * size))
    targets = rng.sample(open_, min(len(open_), raises + 3))
    events: list[Event] = []
    expected: list[tuple[str, str]] = []
    plain, cancelled, corrected = targets[:-3], targets[-3:-2], targets[-2:]
    if len(targets) < 4:  # too few people for a cancelled and two corrected raises
        plain, cancelled, corrected = targets, [], []
    for p in plain:
        value = rng.choice(["STRENGT_FORTROLIG", "STRENGT_FORTROLIG", "FORTROLIG"])
        events.append(_raise(feed, p, at(), value))
        state.marker[p.key] = value
        expected.append((p.key, card_marker(value)))
    for p, (first, final) in zip(corrected, CORRECTIONS[: len(corrected)], strict=True):
        original = _raise(feed, p, at(), first)
        fix = _event(
            feed,
            p,
            _later(original),
            "ADRESSEBESKYTTELSE_V1",
            "KORRIGERT",
            {"gradering": final},
            str(original["hendelseId"]),
        )
        events += [fix, original]  # the correction is delivered first
        state.marker[p.key] = final
        expected.append((p.key, final))
    for p in cancelled:
        original = _raise(feed, p, at(), "STRENGT_FORTROLIG")
        annul = _event(
            feed,
            p,
            _later(original),
            "ADRESSEBESKYTTELSE_V1",
            "ANNULLERT",
            {"gradering": "STRENGT_FORTROLIG"},
            str(original["hendelseId"]),
        )
        events += [original, annul]
        expected.append((p.key, "unchanged (raise cancelled)"))

    raised = {p.key for p in targets}
    living = [p for p in alive if p.key not in raised and p.age(day) >= 18]
    unknown = rng.sample(living, min(len(living), max(1, round(m.feed_deaths_per_day * size))))
    for p in unknown:
        state.died[p.key] = day
    for p in sorted(unknown + [p for p in people if p.died == day], key=lambda p: p.key):
        events.append(
            _event(feed, p, at(), "DOEDSFALL_V1", "OPPRETTET", {"doedsdato": day.isoformat()})
        )
        expected.append((p.key, f"died {day.isoformat()}"))

    _deliver(feed, day, events, folder)
    with (folder / "expected.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["person_key", "effect"])
        out.writerows(expected)
    return len(events)


def _raise(feed: Feed, p: Person, at: dt.datetime, value: str) -> Event:
    return _event(feed, p, at, "ADRESSEBESKYTTELSE_V1", "OPPRETTET", {"gradering": value})


def _later(event: Event) -> dt.datetime:
    at = dt.datetime.strptime(str(event["opprettet"])[:16], "%Y-%m-%dT%H:%M")
    return at + dt.timedelta(minutes=30)


def _deliver(feed: Feed, day: dt.date, events: list[Event], folder: Path) -> None:
    """Three files, events shuffled across and within them. A correction comes before what it
    corrects: in the same file once, in an earlier file once; the cancelled raise and its
    cancellation share a file, in order. One event comes a second time, in the last file."""
    rng = feed.rng
    folder.mkdir(parents=True, exist_ok=True)
    linked = {str(e["tidligereHendelseId"]) for e in events if e["tidligereHendelseId"]}
    paired = [e for e in events if e["tidligereHendelseId"] or e["hendelseId"] in linked]
    single = [e for e in events if not (e["tidligereHendelseId"] or e["hendelseId"] in linked)]
    rng.shuffle(single)
    files: list[list[Event]] = [[], [], []]
    for e in single:
        files[rng.randrange(3)].append(e)
    if paired:
        up_fix, up, down_fix, down, raised, annul = paired
        for target, in_order in ((0, [up_fix, up]), (1, [raised, annul]), (0, [down_fix])):
            batch = files[target]
            spots = sorted(rng.randint(0, len(batch)) for _ in in_order)
            for offset, (spot, e) in enumerate(zip(spots, in_order, strict=True)):
                batch.insert(spot + offset, e)
        files[2].insert(rng.randint(0, len(files[2])), down)  # after its correction, later
    if events:
        files[2].append(rng.choice(single or events))  # delivered twice
    for hour, batch in zip((10, 13, 16), files, strict=True):
        name = f"hendelser_{day.strftime('%Y%m%d')}T{hour:02d}0000.jsonl"
        with (folder / name).open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in batch)
