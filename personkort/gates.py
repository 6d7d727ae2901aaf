"""Quality gates: conditions that stop a night before it replaces a good one.

Each failure carries a stable code and a sentence a data steward understands. A stopped night
publishes nothing; yesterday's cards stay served.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from personkort.feed.records import FEED
from personkort.records import Extract

_DATED = re.compile(r"_\d{8}(?=\.\w+$|$)|\.\w+$")


@dataclass(frozen=True, slots=True)
class SourceAcceptance:
    """A steward's acceptance, for one night, of sources that are missing, empty or far
    smaller than last night (e.g. a municipality that announced a day without delivery)."""

    sources: frozenset[str]  # source names as the report gives them: "kommune:flyt_0301"
    steward: str
    reason: str

    def __post_init__(self) -> None:
        if self.sources and (not self.steward.strip() or not self.reason.strip()):
            raise ValueError("accepting a source needs the steward's id and a reason")


@dataclass(frozen=True, slots=True)
class GateConfig:
    max_quarantine_share: float = 0.10  # of one source's records
    min_records_for_share: int = 50  # smaller sources are judged by the steward, not the gate
    max_drop_share: float = 0.10  # fewer person records or cards than last night by this share
    # One source far smaller than last night: fewer records by this share, when it had at
    # least ``min_records_for_shrink`` (a small municipality's file varies by itself).
    max_source_drop_share: float = 0.5
    min_records_for_shrink: int = 20
    accepted: SourceAcceptance | None = None


@dataclass(frozen=True, slots=True)
class GateFailure:
    code: str
    message: str
    source: str | None = field(default=None)  # the source a per-source gate is about

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.source is not None:
            out["source"] = self.source
        return out


def source_name(key: str) -> str:
    """A source as nights compare it: the register and the file without its date and suffix
    (``infotrygd:infotrygd_20261120.dat`` -> ``infotrygd:infotrygd``)."""
    return _DATED.sub("", key)


def check_sources(
    extract: Extract, previous: dict[str, Any] | None, config: GateConfig
) -> list[GateFailure]:
    """Per source: one that delivered last night and is missing, empty (or header-only) or far
    smaller tonight. Without this a missing municipal file published green: its people's
    services vanished and their cards were retired."""
    before: dict[str, int] = {}
    for key, counts in ((previous or {}).get("sources") or {}).items():
        if key.startswith(f"{FEED}:"):
            continue  # the feed has its own gate (``check_feed``): it never stops the night
        name = source_name(key)
        before[name] = before.get(name, 0) + int(counts.get("read", 0))
    tonight: dict[str, int] = {}
    for c in extract.counts:
        if c.register.value == FEED:
            continue
        name = source_name(f"{c.register.value}:{c.source}")
        tonight[name] = tonight.get(name, 0) + c.read
    failures = []
    kept = "Nattens kort er ikke publisert; gårsdagens kort vises fortsatt."
    for name, read_before in sorted(before.items()):
        if read_before <= 0:
            continue
        now = tonight.get(name)
        if now is None:
            failures.append(
                GateFailure(
                    "kilde_mangler",
                    f"{name} leverte {read_before} poster forrige natt, men mangler i natt. {kept}",
                    name,
                )
            )
        elif now == 0:
            failures.append(
                GateFailure(
                    "kilde_tom",
                    f"{name} er tom i natt (ingen poster; forrige natt {read_before}). {kept}",
                    name,
                )
            )
        elif read_before >= config.min_records_for_shrink and now < read_before * (
            1 - config.max_source_drop_share
        ):
            failures.append(
                GateFailure(
                    "kilde_krympet",
                    f"{name} har {now} poster i natt mot {read_before} forrige natt (mer enn "
                    f"{config.max_source_drop_share:.0%} færre). {kept}",
                    name,
                )
            )
    return failures


def waived(
    extract: Extract, previous: dict[str, Any] | None, config: GateConfig
) -> list[GateFailure]:
    """The per-source failures a steward accepted for this night."""
    accepted = config.accepted.sources if config.accepted else frozenset()
    return [f for f in check_sources(extract, previous, config) if f.source in accepted]


def check_feed(
    extract: Extract,
    persons_before: int | None,
    config: GateConfig,
    *,
    in_force: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> str | None:
    """Why tonight's Folkeregister snapshot must not replace the last one, or None. A cut-short
    or mostly unreadable snapshot would drop people's relations and markers (the relatives gate
    would open), an older one would bring back markers since lifted and lose raises, and one
    dated in the future would make the day's events look included in it: each is refused, the
    last snapshot stays in force, and the night goes on."""
    if extract.feed is None:
        return None
    counts = [c for c in extract.counts if c.register.value == FEED]
    read = sum(c.read for c in counts)
    quarantined = sum(c.quarantined for c in counts)
    if read >= config.min_records_for_share and quarantined > config.max_quarantine_share * read:
        return f"{quarantined} of {read} lines of the snapshot could not be read"
    persons = extract.feed.lines
    if persons_before and persons < (1 - config.max_drop_share) * persons_before:
        return f"{persons} persons in the snapshot against {persons_before} in the last one"
    as_of = extract.feed.as_of
    if in_force is not None and as_of < in_force:
        return f"the snapshot is from {as_of:%Y-%m-%d %H:%M}, older than the one in force"
    if now is not None and as_of > now + dt.timedelta(days=1):
        return f"the snapshot is dated {as_of:%Y-%m-%d}, in the future"
    return None


def check_extract(
    extract: Extract, previous: dict[str, Any] | None, config: GateConfig
) -> list[GateFailure]:
    """Gates on what the adapters read, before reconciliation."""
    failures = [
        GateFailure(
            "kilde_avvist",
            f"{r.register} ({r.source}) ble avvist: {r.reason}. Nattens kort er ikke publisert; "
            "gårsdagens kort vises fortsatt.",
        )
        for r in extract.refusals
    ]
    for c in extract.counts:
        if not c.conserved:
            failures.append(
                GateFailure(
                    "telling_stemmer_ikke",
                    f"{c.register} {c.source}: lest {c.read}, men godtatt {c.accepted} + "
                    f"karantene {c.quarantined}.",
                )
            )
        elif (
            c.register.value != FEED  # a bad snapshot is refused alone (``check_feed``)
            and c.read >= config.min_records_for_share
            and c.quarantined / c.read > config.max_quarantine_share
        ):
            failures.append(
                GateFailure(
                    "for_mye_karantene",
                    f"{c.register} {c.source}: {c.quarantined} av {c.read} poster "
                    f"({c.quarantined / c.read:.1%}) i karantene, grensen er "
                    f"{config.max_quarantine_share:.0%}. Se karantenelisten for natten.",
                )
            )
    accepted = config.accepted.sources if config.accepted else frozenset()
    failures += [f for f in check_sources(extract, previous, config) if f.source not in accepted]
    before = _less_accepted((previous or {}).get("person_records"), previous, accepted)
    if before and len(extract.persons) < before * (1 - config.max_drop_share):
        failures.append(
            GateFailure(
                "fall_i_poster",
                f"Bare {len(extract.persons)} personposter mot {before} forrige natt "
                f"(mer enn {config.max_drop_share:.0%} færre). Mangler et uttrekk?",
            )
        )
    return failures


def check_cards(
    cards: int, previous: dict[str, Any] | None, config: GateConfig
) -> list[GateFailure]:
    """Gates on the reconciled night, before it is published."""
    accepted = config.accepted.sources if config.accepted else frozenset()
    before = _less_accepted((previous or {}).get("cards"), previous, accepted)
    if before and cards < before * (1 - config.max_drop_share):
        return [
            GateFailure(
                "fall_i_kort",
                f"Bare {cards} personkort mot {before} forrige natt "
                f"(mer enn {config.max_drop_share:.0%} færre).",
            )
        ]
    return []


def _less_accepted(
    before: int | None, previous: dict[str, Any] | None, accepted: frozenset[str]
) -> int | None:
    """Last night's total without what the accepted sources delivered: a source the steward
    accepted as missing does not also stop the night as a drop in the totals."""
    if not before or not accepted:
        return before
    sources = (previous or {}).get("sources") or {}
    gone = sum(int(c.get("read", 0)) for k, c in sources.items() if source_name(k) in accepted)
    return max(0, before - gone)
