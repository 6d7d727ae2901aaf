"""Quality gates: conditions that stop a night before it replaces a good one.

Each failure carries a stable code and a sentence a data steward understands. A stopped night
publishes nothing; yesterday's cards stay served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from personkort.records import Extract


@dataclass(frozen=True, slots=True)
class GateConfig:
    max_quarantine_share: float = 0.10  # of one source's records
    min_records_for_share: int = 50  # smaller sources are judged by the steward, not the gate
    max_drop_share: float = 0.10  # fewer person records or cards than last night by this share


@dataclass(frozen=True, slots=True)
class GateFailure:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


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
            c.read >= config.min_records_for_share
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
    before = (previous or {}).get("person_records")
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
    before = (previous or {}).get("cards")
    if before and cards < before * (1 - config.max_drop_share):
        return [
            GateFailure(
                "fall_i_kort",
                f"Bare {cards} personkort mot {before} forrige natt "
                f"(mer enn {config.max_drop_share:.0%} færre).",
            )
        ]
    return []
