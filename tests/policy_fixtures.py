"""A card with one value of every field class, for the policy tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from personkort.card import BenefitLine, Card, MeasureLine, ServiceLine, Source, Sourced

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
IDENT = "15928011418"

ARENA = Source("arena", "1001", "PERSON:1001", 1)
INFOTRYGD = Source("infotrygd", IDENT, "line:2", 1)
SOSIO = Source("kommune", "sosio:3449:77", "sosio_3449:line:2", 1)

# Distinct, recognisable values, so a test can look for them in the bytes of a response.
VALUES = {
    "address": "Hemmeligveien 7",
    "phone": "+47 99988777",
    "dagp_rate": Decimal("1234.56"),
    "dagp_text": "Permittert fra Hydro",
    "aap_text": "Alvorlig depresjon, behandling",
    "sp_diagnosis": "P76",
    "sp_amount": Decimal("31415.92"),
    "sh_amount": Decimal("7414.26"),
    "oksos_amount": Decimal("5555.55"),
    "oksos_text": "Husleie og strøm, merknad",
    "rus_text": "Rusbehandling poliklinisk",
    "kvp_text": "Kvalifiseringsprogram 12 mnd",
    "gjeld_text": "Frivillig gjeldsordning",
    "bolig_text": "Hospits i påvente",
}


def services(owner: str = "3449") -> list[ServiceLine]:
    src = Source("kommune", f"sosio:{owner}:77", f"sosio_{owner}:line:2", 1)
    day = dt.date(2026, 1, 1)
    return [
        ServiceLine(
            "kommune",
            "sosio",
            owner,
            "OKSOS",
            day,
            None,
            VALUES["oksos_amount"],
            "ab1",
            VALUES["oksos_text"],
            src,
        ),
        ServiceLine(
            "kommune", "sosio", owner, "KVP", day, None, None, "ab1", VALUES["kvp_text"], src
        ),
        ServiceLine(
            "kommune", "sosio", owner, "BOLIG", day, None, None, "ab1", VALUES["bolig_text"], src
        ),
        ServiceLine(
            "kommune", "sosio", owner, "RUS", day, None, None, "ab1", VALUES["rus_text"], src
        ),
        ServiceLine(
            "kommune", "sosio", owner, "GJELD", day, None, None, "ab1", VALUES["gjeld_text"], src
        ),
        ServiceLine(
            "infotrygd",
            "infotrygd",
            "5001",
            "OKSOS",
            day,
            None,
            VALUES["sh_amount"],
            None,
            None,
            Source("infotrygd", IDENT, "line:4", 1),
        ),
    ]


def full_card(
    *, protection: str | None = None, skjermet: bool = False, owner: str = "3449"
) -> Card:
    sosio = Source("kommune", f"sosio:{owner}:77", f"sosio_{owner}:line:2", 1)
    day = dt.date(2025, 3, 1)
    card = Card("pk-0123456789abcdef", 1, protection, skjermet, False)
    card.sources = [ARENA, INFOTRYGD, sosio]
    card.idents = [Sourced(IDENT, ARENA), Sourced(IDENT, INFOTRYGD)]
    card.names = [
        Sourced("Kari Nordmann", ARENA),
        Sourced("KARI NORDMANN", INFOTRYGD),
        Sourced("Kari Nordmann-Sosio", sosio),
    ]
    card.fields = {
        "birth_date": [Sourced(dt.date(1980, 12, 15), ARENA)],
        "address": [Sourced(VALUES["address"], ARENA)],
        "phone": [Sourced(VALUES["phone"], ARENA)],
    }
    card.follow_up = [Sourced(("nav_office", "nav-valdres"), ARENA)]
    card.measures = [MeasureLine("AMO", "GJENN", day, None, "Fretex AS", ARENA)]
    card.state_benefits = [
        BenefitLine(
            "arena",
            "DAGP",
            "IVERK",
            day,
            None,
            VALUES["dagp_rate"],
            None,
            None,
            None,
            VALUES["dagp_text"],
            ARENA,
        ),
        BenefitLine(
            "arena",
            "AAP",
            "IVERK",
            day,
            None,
            Decimal("800.00"),
            None,
            None,
            None,
            VALUES["aap_text"],
            ARENA,
        ),
        BenefitLine(
            "infotrygd",
            "SP",
            None,
            day,
            None,
            None,
            VALUES["sp_amount"],
            100,
            VALUES["sp_diagnosis"],
            None,
            INFOTRYGD,
        ),
    ]
    card.municipal_services = services(owner)
    return card
