"""A synthetic population: households, families, twins, fathers and sons of one name, people
who came with a D-nummer, and what each register knows about them."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from personkort.ident import make_ident
from simulator import vocab
from simulator.quirks import CorruptionModel

BENEFIT_TEXTS = {
    "DAGP": [
        "Oppsagt grunnet nedbemanning",
        "Permittert fra produksjon",
        "Midlertidig ansettelse utløpt",
    ],
    "AAP": [
        "Utmattelse, under utredning",
        "Moderat depresjon, gradert oppfølging",
        "Ryggplager etter operasjon",
        "Angstlidelse, i behandling",
        "Kroniske smerter, utredes",
    ],
    "TILTPENG": ["Deltar i arbeidsmarkedstiltak", "Kurs i regi av NAV"],
}
SERVICE_TEXTS = {
    "OKSOS": ["Husleie og strøm", "Nødhjelp, matkort", "Supplerende livsopphold"],
    "KVP": ["Kvalifiseringsprogram, 12 mnd", "Kvalifiseringsprogram, forlenget"],
    "BOLIG": ["Hospits i påvente av kommunal bolig", "Midlertidig bolig etter utkastelse"],
    "RUS": ["Poliklinisk rusbehandling", "Oppfølging etter avrusning"],
    "GJELD": ["Gjeldsrådgivning, frivillig gjeldsordning", "Budsjettveiledning"],
}
DIAGNOSES = ["L03", "P76", "L18", "R05", "P74", "K86", "T90", "L84", "P02", "A04", "L86", "P03"]
MEASURES = ["AMO", "ARBTREN", "JOBBK", "OPPFOLG", "VARLONTIL"]
ORGANISERS = [
    "Fretex AS",
    "Vekst Valdres AS",
    "Trondheim Arbeidssenter",
    "Aktiv Arbeid AS",
    "Jobbhuset",
]


@dataclass(slots=True)
class Benefit:
    code: str  # DAGP AAP TILTPENG | SP UF AP BT EF SH
    start: dt.date
    end: dt.date | None
    status: str = "IVERK"
    amount: int = 0  # Arena: DAGSATS in øre; Infotrygd: BELOP in øre
    grade: int = 100
    diagnosis: str = ""
    text: str | None = None
    owner: str = ""  # SH: the municipality that owns the case


@dataclass(slots=True)
class Service:
    code: str  # OKSOS KVP BOLIG RUS GJELD
    start: dt.date
    end: dt.date | None
    amount: int | None  # øre per month
    caseworker: str
    text: str


@dataclass(slots=True)
class Person:
    key: str
    gender: str  # M / K
    given: str
    middle: str | None
    surname: str
    maiden: str | None  # surname before a marriage
    born: dt.date
    fnr: str | None
    dnr: str | None
    dnr_until: dt.date | None
    kommune: str
    address: str
    postnr: str
    poststed: str
    phone: str | None
    household: int
    protection: str | None = None
    skjermet: bool = False
    died: dt.date | None = None
    # Arena
    arena_ids: list[int] = field(default_factory=list)  # the first is the main registration
    vedtak: list[Benefit] = field(default_factory=list)
    tiltak: list[Benefit] = field(default_factory=list)
    arena_changed: dt.datetime | None = None
    # Infotrygd
    benefits: list[Benefit] = field(default_factory=list)
    # municipal systems
    client_id: str | None = None
    services: list[Service] = field(default_factory=list)
    # stable identity quirks of this person's records
    quirks: dict[str, object] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return self.fnr or self.dnr  # type: ignore[return-value]

    def age(self, on: dt.date) -> int:
        return on.year - self.born.year - ((on.month, on.day) < (self.born.month, self.born.day))


class Numbers:
    """Unique, valid synthetic identity numbers."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def new(self, born: dt.date, *, dnr: bool = False) -> str:
        if born.year >= 2000:
            low, high = 500, 999
        elif born.year >= 1940:
            low, high = 0, 499
        else:
            low, high = 0, 499
        while True:
            value = make_ident(born, self.rng.randint(low, high), dnr=dnr, synthetic=True)
            if value and value not in self.used:
                self.used.add(value)
                return value


class Population:
    """Builds people household by household."""

    def __init__(self, rng: random.Random, model: CorruptionModel, today: dt.date) -> None:
        self.rng = rng
        self.model = model
        self.today = today
        self.numbers = Numbers(rng)
        self.people: list[Person] = []
        self.households = 0
        self.next_arena_id = 1001
        self.next_client: dict[str, int] = {}

    def key(self) -> str:
        return f"P{len(self.people):08d}"

    def birth(self, low: int, high: int) -> dt.date:
        age_days = self.rng.randint(low * 365, high * 365 + 364)
        return self.today - dt.timedelta(days=age_days)

    def given(self, gender: str) -> str:
        table = vocab.male() if gender == "M" else vocab.female()
        first = table.draw(self.rng)
        if self.rng.random() < 0.25:
            second = table.draw(self.rng)
            if second != first:
                return f"{first} {second}"
        return first

    def home(self) -> tuple[str, str, str, str]:
        place = vocab.places()[vocab.place_draw().draw(self.rng)]
        postnr, poststed = self.rng.choice(place.postnr)
        number = self.rng.randint(1, 120)
        letter = self.rng.choice(["", "", "", "A", "B"])
        return (
            place.kommunenr,
            f"{vocab.streets().draw(self.rng)} {number}{letter}",
            postnr,
            poststed,
        )

    def person(
        self,
        gender: str,
        surname: str,
        born: dt.date,
        home: tuple[str, str, str, str],
        *,
        given: str | None = None,
        immigrant: bool = False,
        maiden: str | None = None,
    ) -> Person:
        rng, model = self.rng, self.model
        dnr = fnr = until = None
        if immigrant or rng.random() < model.d_number:
            dnr = self.numbers.new(born, dnr=True)
            if rng.random() < model.d_to_fnr:
                fnr = self.numbers.new(born)
                until = self.today - dt.timedelta(days=rng.randint(30, 3000))
        else:
            fnr = self.numbers.new(born)
        middle = vocab.surnames().draw(rng) if rng.random() < 0.1 else None
        p = Person(
            key=self.key(),
            gender=gender,
            given=given or self.given(gender),
            middle=middle if middle != surname else None,
            surname=surname,
            maiden=maiden,
            born=born,
            fnr=fnr,
            dnr=dnr,
            dnr_until=until,
            kommune=home[0],
            address=home[1],
            postnr=home[2],
            poststed=home[3],
            phone=f"+47 {rng.randint(40000000, 99999999)}" if rng.random() < 0.7 else None,
            household=self.households,
        )
        roll = rng.random()
        if roll < model.strengt_fortrolig:
            p.protection = "STRENGT_FORTROLIG"
        elif roll < model.strengt_fortrolig + model.fortrolig:
            p.protection = "FORTROLIG"
        p.skjermet = rng.random() < model.skjermet and 20 <= p.age(self.today) <= 67
        if rng.random() < model.dead and p.age(self.today) > 50:
            p.died = self.today - dt.timedelta(days=rng.randint(1, 300))
        self.people.append(p)
        return p

    def household(self) -> list[Person]:
        rng = self.rng
        self.households += 1
        home = self.home()
        immigrant = rng.random() < self.model.d_number
        surname = (vocab.immigrant_surnames() if immigrant else vocab.surnames()).draw(rng)
        kind = rng.random()
        if kind < 0.40:
            gender = rng.choice("MK")
            return [self.person(gender, surname, self.birth(18, 95), home, immigrant=immigrant)]
        man_born = self.birth(22, 85)
        man = self.person("M", surname, man_born, home, immigrant=immigrant)
        members = [man]
        if kind < 0.90:
            own = vocab.surnames().draw(rng)
            married = rng.random() < 0.7
            woman_born = man_born + dt.timedelta(days=rng.randint(-1500, 1500))
            woman = self.person(
                "K",
                surname if married else own,
                min(woman_born, self.today - dt.timedelta(days=18 * 366)),
                home,
                immigrant=immigrant,
                maiden=own if married else None,
            )
            members.append(woman)
        if kind >= 0.65:
            youngest_parent = max(p.born for p in members)
            children = rng.randint(1, 3)
            twins = rng.random() < self.model.twins
            last_born = None
            for n in range(children + (1 if twins else 0)):
                if twins and n == 1 and last_born is not None:
                    born = last_born
                else:
                    born = youngest_parent + dt.timedelta(days=rng.randint(20 * 365, 42 * 365))
                    born = min(born, self.today - dt.timedelta(days=rng.randint(0, 20 * 365)))
                    born = max(born, youngest_parent + dt.timedelta(days=16 * 365))
                if born > self.today:
                    continue
                gender = rng.choice("MK")
                name = None
                if gender == "M" and rng.random() < self.model.junior:
                    name = man.given  # named after his father
                child = self.person(gender, surname, born, home, given=name, immigrant=immigrant)
                members.append(child)
                last_born = born
        return members

    def arena_id(self) -> int:
        self.next_arena_id += 1
        return self.next_arena_id - 1

    def client_id(self, kommune: str) -> str:
        n = self.next_client.get(kommune, 0) + 1
        self.next_client[kommune] = n
        system = vocab.places()[kommune].system
        return str(10000 + n) if system == "sosio" else f"K-{kommune}-{n:07d}"


def build(persons: int, rng: random.Random, model: CorruptionModel, today: dt.date) -> Population:
    """A population of (about, to the household) ``persons`` people with their register data."""
    pop = Population(rng, model, today)
    while len(pop.people) < persons:
        pop.household()
    del pop.people[persons:]
    by_household: dict[int, list[Person]] = {}
    for p in pop.people:
        by_household.setdefault(p.household, []).append(p)
    for p in pop.people:
        assign_registers(pop, p, by_household[p.household])
    return pop


def _period(
    rng: random.Random, today: dt.date, open_share: float = 0.5
) -> tuple[dt.date, dt.date | None]:
    start = today - dt.timedelta(days=rng.randint(10, 1500))
    if rng.random() < open_share:
        return start, None
    return start, start + dt.timedelta(days=rng.randint(30, 700))


def assign_registers(pop: Population, p: Person, family: list[Person]) -> None:
    """Decide what Arena, Infotrygd and the municipal systems know about one person."""
    rng, model, today = pop.rng, pop.model, pop.today
    age = p.age(today)
    if 18 <= age <= 67 and rng.random() < model.arena_coverage:
        add_to_arena(pop, p)
    if age >= 67:
        p.benefits.append(
            Benefit("AP", *_period(rng, today, 0.95), amount=rng.randint(1800000, 3500000))
        )
    if 18 <= age < 67 and rng.random() < 0.08:
        start, end = _period(rng, today, 0.8)
        p.benefits.append(
            Benefit(
                "UF",
                start,
                end,
                amount=rng.randint(1500000, 3000000),
                grade=rng.choice([50, 60, 80, 100]),
                diagnosis=rng.choice(DIAGNOSES),
            )
        )
    if 18 <= age < 67 and rng.random() < 0.05:
        start, end = _period(rng, today, 0.3)
        p.benefits.append(
            Benefit(
                "SP",
                start,
                end,
                amount=rng.randint(1500000, 4000000),
                grade=rng.choice([20, 50, 100]),
                diagnosis=rng.choice(DIAGNOSES),
            )
        )
    children = [c for c in family if c.age(today) < 18]
    adults = [a for a in family if a.age(today) >= 18]
    if children and adults and p is adults[-1]:
        p.benefits.append(Benefit("BT", *_period(rng, today, 0.9), amount=151000 * len(children)))
        if len(adults) == 1 and rng.random() < 0.3:
            p.benefits.append(
                Benefit("EF", *_period(rng, today, 0.5), amount=rng.randint(1200000, 2000000))
            )
    if age >= 18 and rng.random() < model.municipal_clients:
        add_services(pop, p)


def add_to_arena(pop: Population, p: Person) -> None:
    rng, today = pop.rng, pop.today
    p.arena_ids = [pop.arena_id()]
    if rng.random() < pop.model.arena_duplicate:
        p.arena_ids.append(pop.arena_id())
    for _ in range(rng.choice([1, 1, 2])):
        code = rng.choice(["DAGP", "AAP", "TILTPENG"])
        start, end = _period(rng, today, 0.5)
        p.vedtak.append(
            Benefit(
                code,
                start,
                end,
                status="IVERK" if end is None or end > today else "AVSLU",
                amount=rng.randint(30000, 150000),
                text=rng.choice(BENEFIT_TEXTS[code]),
            )
        )
    if rng.random() < 0.3:
        start, end = _period(rng, today, 0.0)
        p.tiltak.append(
            Benefit(
                rng.choice(MEASURES),
                start,
                end,
                status=rng.choice(["GJENN", "FULLF", "AVBRUTT"]),
                text=rng.choice(ORGANISERS),
            )
        )
    registered = dt.datetime.combine(
        today - dt.timedelta(days=rng.randint(200, 3000)),
        dt.time(rng.randint(0, 23), rng.randint(0, 59)),
    )
    p.arena_changed = registered + dt.timedelta(
        days=rng.randint(0, 150), minutes=rng.randint(0, 600)
    )
    p.quirks["arena_registered"] = registered


def add_services(pop: Population, p: Person) -> None:
    rng, today = pop.rng, pop.today
    p.client_id = pop.client_id(p.kommune)
    start, end = _period(rng, today, 0.6)
    p.services.append(
        Service(
            "OKSOS",
            start,
            end,
            rng.randint(200000, 1500000),
            _worker(pop, p),
            rng.choice(SERVICE_TEXTS["OKSOS"]),
        )
    )
    for code, share in (("KVP", 0.2), ("BOLIG", 0.1), ("RUS", 0.05), ("GJELD", 0.15)):
        if rng.random() < share:
            start, end = _period(rng, today, 0.5)
            amount = rng.randint(500000, 1800000) if code == "KVP" else None
            p.services.append(
                Service(code, start, end, amount, _worker(pop, p), rng.choice(SERVICE_TEXTS[code]))
            )
    if rng.random() < pop.model.sh_through_infotrygd:
        oksos = p.services[0]
        if rng.random() < 0.3:  # the same months again: a possible double payment
            start, end = oksos.start, oksos.end
        else:
            start, end = _period(rng, oksos.start - dt.timedelta(days=400), 0.0)
        p.benefits.append(Benefit("SH", start, end, amount=oksos.amount or 500000, owner=p.kommune))


def _worker(pop: Population, p: Person) -> str:
    if vocab.places()[p.kommune].system == "sosio":
        return pop.rng.choice(["ab", "tm", "sr", "kh"]) + str(pop.rng.randint(10, 99))
    return f"k{pop.rng.randint(1000, 9999)}"
