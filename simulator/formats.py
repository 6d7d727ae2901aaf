"""Writing one night's drop folder in exactly the registers' formats, with the answer key's
links and bad records."""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from simulator import vocab
from simulator.people import Person
from simulator.quirks import CorruptionModel, ascii_letters, typo_ident, typo_name

ARENA_DDL = """
CREATE TABLE PERSON (
  PERSON_ID INTEGER PRIMARY KEY, FODSELSNR VARCHAR(11), FORNAVN VARCHAR(50) NOT NULL,
  MELLOMNAVN VARCHAR(50), ETTERNAVN VARCHAR(50) NOT NULL, FODSELSDATO DATE,
  ADRESSELINJE VARCHAR(100), POSTNR CHAR(4), POSTSTED VARCHAR(50), KOMMUNENR CHAR(4),
  TELEFON VARCHAR(20), DISKRESJONSKODE VARCHAR(4), ER_EGEN_ANSATT CHAR(1) NOT NULL DEFAULT 'N',
  FORMIDLINGSGRUPPEKODE VARCHAR(5), KVALIFISERINGSGRUPPEKODE VARCHAR(5), NAV_KONTOR VARCHAR(40),
  VEILEDER_IDENT VARCHAR(7), DOEDSDATO DATE, REG_DATO TIMESTAMP NOT NULL,
  MOD_DATO TIMESTAMP NOT NULL);
CREATE TABLE PERSON_IDENT_HIST (
  PERSON_ID INTEGER NOT NULL, FODSELSNR VARCHAR(11) NOT NULL, GYLDIG_FRA DATE, GYLDIG_TIL DATE);
CREATE TABLE VEDTAK (
  VEDTAK_ID INTEGER PRIMARY KEY, PERSON_ID INTEGER NOT NULL, SAKSKODE VARCHAR(8) NOT NULL,
  VEDTAKSTATUS VARCHAR(5) NOT NULL, FRA_DATO DATE NOT NULL, TIL_DATO DATE, DAGSATS NUMERIC(10,2),
  BEGRUNNELSE VARCHAR(2000), REG_DATO TIMESTAMP NOT NULL, MOD_DATO TIMESTAMP NOT NULL);
CREATE TABLE TILTAKDELTAKER (
  DELTAKER_ID INTEGER PRIMARY KEY, PERSON_ID INTEGER NOT NULL, TILTAKSKODE VARCHAR(10) NOT NULL,
  DELTAKERSTATUS VARCHAR(8) NOT NULL, FRA_DATO DATE, TIL_DATO DATE, ARRANGOR VARCHAR(100),
  REG_DATO TIMESTAMP NOT NULL, MOD_DATO TIMESTAMP NOT NULL);
"""
SOSIO_HEADER = (
    "klientnr;fodselsnummer;etternavn;fornavn;adresse;postnr;poststed;tjeneste;vedtak_fra;"
    "vedtak_til;belop_mnd;saksbehandler;merknad"
)
SOSIO_LABELS = {
    "OKSOS": "Økonomisk sosialhjelp",
    "KVP": "Kvalifiseringsprogrammet",
    "BOLIG": "Midlertidig botilbud",
    "RUS": "Rustiltak",
    "GJELD": "Økonomisk rådgivning",
}
NS4551 = str.maketrans("ÆØÅæøå", "[\\]{|}")
STAMP = "%Y-%m-%d %H:%M:00"


@dataclass(slots=True)
class Written:
    """What a night's writers produced for the answer key and the summary."""

    links: list[tuple[str, str, str]] = field(default_factory=list)
    bad: list[tuple[str, str, str]] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)


class Night:
    """One night's writing: stable quirks of records, fresh transfer errors."""

    def __init__(
        self,
        out: Path,
        day: dt.date,
        model: CorruptionModel,
        rng: random.Random,
        quirk_rng: random.Random,
        households: dict[int, list[Person]],
    ) -> None:
        self.out, self.day, self.model, self.rng = out, day, model, rng
        self.quirk_rng = quirk_rng
        self.households = households
        self.written = Written()

    def quirk(self, p: Person, name: str, draw: Callable[[random.Random], object]) -> object:
        """A record's quirk: drawn once, then the same every night."""
        if name not in p.quirks:
            p.quirks[name] = draw(self.quirk_rng)
        return p.quirks[name]

    def chance(self, rate: float) -> bool:
        return self.rng.random() < rate


# -- Arena -----------------------------------------------------------------------------------


def write_arena(night: Night, people: list[Person]) -> None:
    path = night.out / "arena" / "arena.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + ARENA_DDL)
    m = night.model
    persons, hist, vedtak, tiltak = [], [], [], []
    for p in people:
        if not p.arena_ids:
            continue
        registered = p.quirks["arena_registered"]
        changed = p.arena_changed or registered
        for n, pid in enumerate(p.arena_ids):
            duplicate = n > 0
            fnr: str | None = p.ident
            if duplicate and night.quirk(
                p, "dup_no_fnr", lambda r: r.random() < m.arena_duplicate_without_fnr
            ):
                fnr = None
            if not duplicate and night.quirk(
                p, "arena_null_fnr", lambda r: r.random() < m.arena_null_fnr
            ):
                fnr = None
            given, middle = p.given, p.middle
            if middle and night.quirk(
                p, "middle_in_fornavn", lambda r: r.random() < m.arena_middle_in_fornavn
            ):
                given, middle = f"{given} {middle}", None
            if night.quirk(p, f"arena_typo{n}", lambda r: r.random() < m.arena_name_typo):
                given = typo_name(given, night.quirk_rng)
            birth = p.born.isoformat()
            if night.chance(m.arena_broken_birth_date):
                birth = "0000-00-00"
                night.written.bad.append(("arena", f"PERSON:{pid}", "invalid FODSELSDATO"))
            else:
                night.written.links.append(("arena", str(pid), p.key))
            place = vocab.places()[p.kommune]
            persons.append(
                (
                    pid,
                    fnr,
                    given,
                    middle,
                    p.surname,
                    birth,
                    p.address,
                    p.postnr,
                    p.poststed,
                    p.kommune,
                    p.phone,
                    {"STRENGT_FORTROLIG": "SPSF", "FORTROLIG": "SPFO"}.get(p.protection or ""),
                    "J" if p.skjermet else "N",
                    night.quirk(
                        p, "formidling", lambda r: r.choice(["ARBS", "ARBS", "IARBS", "ISERV"])
                    ),
                    night.quirk(p, "kval", lambda r: r.choice(["IKVAL", "BFORM", "BATT", "VARIG"])),
                    vocab.OFFICES.get(place.kommunenr, "nav-oslo"),
                    night.quirk(p, "veileder", lambda r: f"Z{r.randint(100000, 999999)}"),
                    p.died.isoformat() if p.died else None,
                    registered.strftime(STAMP),
                    changed.strftime(STAMP),
                )
            )
        main = p.arena_ids[0]
        if p.fnr and p.dnr:
            hist.append((main, p.dnr, p.born.isoformat(), (p.dnr_until or night.day).isoformat()))
        stamp = (registered.strftime(STAMP), changed.strftime(STAMP))
        for n, v in enumerate(p.vedtak):
            vedtak.append(
                (
                    main * 10 + n,
                    main,
                    v.code,
                    v.status,
                    v.start.isoformat(),
                    v.end.isoformat() if v.end else None,
                    v.amount / 100,
                    v.text,
                    *stamp,
                )
            )
        for n, t in enumerate(p.tiltak):
            tiltak.append(
                (
                    main * 10 + n,
                    main,
                    t.code,
                    t.status,
                    t.start.isoformat(),
                    t.end.isoformat() if t.end else None,
                    t.text,
                    *stamp,
                )
            )
    orphans = sum(1 for _ in range(len(vedtak)) if night.chance(m.arena_orphan_vedtak))
    for n in range(orphans):
        vid = 9_000_000_000 + n
        day = night.day.isoformat()
        vedtak.append(
            (
                vid,
                100_000_000 + n,
                "DAGP",
                "IVERK",
                day,
                None,
                700.0,
                None,
                f"{day} 01:00:00",
                f"{day} 01:00:00",
            )
        )
        night.written.bad.append(("arena", f"VEDTAK:{vid}", "orphan PERSON_ID"))
    db.executemany(f"INSERT INTO PERSON VALUES ({','.join('?' * 20)})", persons)
    db.executemany("INSERT INTO PERSON_IDENT_HIST VALUES (?,?,?,?)", hist)
    db.executemany(f"INSERT INTO VEDTAK VALUES ({','.join('?' * 10)})", vedtak)
    db.executemany(f"INSERT INTO TILTAKDELTAKER VALUES ({','.join('?' * 9)})", tiltak)
    db.commit()
    db.close()
    night.written.records["arena"] = len(persons) + len(hist) + len(vedtak) + len(tiltak)


# -- Infotrygd -------------------------------------------------------------------------------


def _ns(text: str) -> str:
    return text.upper().translate(NS4551)


def _fixed(*parts: tuple[str, int]) -> str:
    return "".join(value[:width].ljust(width) for value, width in parts).ljust(120)


def write_infotrygd(night: Night, people: list[Person]) -> None:
    m, rng = night.model, night.rng
    day = night.day.strftime("%Y%m%d")
    lines = [
        _fixed(
            ("H", 1),
            ("INFOTRYGD", 9),
            (day, 8),
            (f"{(night.day - dt.date(2020, 1, 1)).days:06d}", 6),
        )
    ]
    count = total = 0
    for p in people:
        if not p.benefits:
            continue
        numbers = [p.ident]
        if p.fnr and p.dnr:
            mode = night.quirk(
                p,
                "infotrygd_numbers",
                lambda r: r.choices(
                    ["fnr", "dnr", "both"],
                    [
                        1 - m.infotrygd_still_dnr - m.infotrygd_two_records,
                        m.infotrygd_still_dnr,
                        m.infotrygd_two_records,
                    ],
                )[0],
            )
            numbers = {"fnr": [p.fnr], "dnr": [p.dnr], "both": [p.fnr, p.dnr]}[mode]  # type: ignore[index]
        tknr = p.kommune
        if night.quirk(p, "pre_reform", lambda r: r.random() < m.infotrygd_pre_reform):
            old = vocab.places()[p.kommune].pre_reform
            tknr = old[0] if old else tknr
        spesreg = {"STRENGT_FORTROLIG": "6", "FORTROLIG": "7"}.get(p.protection or "", " ")
        if spesreg != " " and night.quirk(
            p, "spesreg_lag", lambda r: r.random() < m.infotrygd_spesreg_lag
        ):
            spesreg = " "
        name = " ".join(x for x in (p.surname, p.given, p.middle) if x)
        for i, number in enumerate(numbers):
            line = _fixed(
                ("1", 1),
                (number, 11),
                (_ns(name), 40),
                (tknr, 4),
                (_ns(p.address), 30),
                (p.postnr, 4),
                (spesreg, 1),
                (p.died.strftime("%Y%m%d") if p.died else "00000000", 8),
            )
            count += 1
            if night.chance(m.infotrygd_truncated):
                line = line[: rng.randint(20, 100)].rstrip() or line[:20]
                night.written.bad.append(
                    ("infotrygd", f"line:{len(lines) + 1}", "truncated person record")
                )
            else:
                night.written.links.append(("infotrygd", number, p.key))
            lines.append(line)
            if i > 0:
                continue  # the second record (the old number) has no benefits of its own
            for b in p.benefits:
                fom = b.start.strftime("%Y%m%d")
                if night.chance(m.infotrygd_bad_date):
                    fom = f"{b.start.year}0231"
                    night.written.bad.append(
                        ("infotrygd", f"line:{len(lines) + 1}", "invalid FOM date")
                    )
                lines.append(
                    _fixed(
                        ("2", 1),
                        (number, 11),
                        (b.code, 2),
                        (fom, 8),
                        (b.end.strftime("%Y%m%d") if b.end else "00000000", 8),
                        (f"{b.grade:03d}", 3),
                        (b.diagnosis, 3),
                        (f"{b.amount:011d}", 11),
                        (b.owner, 4),
                    )
                )
                count += 1
                total += b.amount
    lines.append(_fixed(("T", 1), (f"{count:09d}", 9), (f"{total:015d}", 15)))
    path = night.out / "infotrygd" / f"infotrygd_{day}.dat"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("ascii"))
    night.written.records["infotrygd"] = count


# -- municipal systems -----------------------------------------------------------------------


def _typed_ident(night: Night, p: Person, system: str) -> tuple[str | None, str | None]:
    """The number as the municipal caseworker typed it, and its stated type."""
    m = night.model
    modes = ["ok", "empty", "space", "typo", "family"]
    weights = [
        1 - m.ident_empty - m.ident_space - m.ident_typo - m.ident_family,
        m.ident_empty,
        m.ident_space,
        m.ident_typo,
        m.ident_family,
    ]
    mode = night.quirk(p, "ident_mode", lambda r: r.choices(modes, weights)[0])
    number = p.ident
    if p.fnr and p.dnr and night.quirk(p, "old_dnr", lambda r: r.random() < m.ident_old_dnr):
        number = p.dnr
    kind = "DNR" if number == p.dnr and number != p.fnr else "FNR"
    if mode == "empty":
        return None, None
    if mode == "space" and system == "sosio":
        return f"{number[:6]} {number[6:]}", kind
    if mode == "typo":
        return str(night.quirk(p, "typo_value", lambda r: typo_ident(number, r))), kind
    if mode == "family":
        others = [o for o in night.households.get(p.household, []) if o is not p]
        if others:
            other = others[0]
            return other.ident, "DNR" if other.ident == other.dnr else "FNR"
    return number, kind


def _municipal_names(night: Night, p: Person) -> tuple[str, str, str | None]:
    m = night.model
    given, surname, middle = p.given, p.surname, p.middle
    if " " in given and night.quirk(p, "short_given", lambda r: r.random() < m.given_shortened):
        given = given.split()[0]
    if p.maiden and night.quirk(p, "maiden", lambda r: r.random() < m.maiden_surname):
        surname = p.maiden
    return given, surname, middle


def _address(p: Person) -> tuple[str, str, str]:
    lagged = p.quirks.get("municipal_address")
    return lagged if isinstance(lagged, tuple) else (p.address, p.postnr, p.poststed)  # type: ignore[return-value]


def _kroner(ore: int | None) -> str:
    if ore is None:
        return ""
    whole, cents = divmod(ore, 100)
    return f"{whole:,}".replace(",", " ") + f",{cents:02d}"


def write_municipal(night: Night, people: list[Person]) -> None:
    folder = night.out / "kommune"
    folder.mkdir(parents=True, exist_ok=True)
    day = night.day.strftime("%Y%m%d")
    clients: dict[str, list[Person]] = {k: [] for k in vocab.places()}
    for p in people:
        if p.client_id and p.services:
            clients[p.kommune].append(p)
    total = 0
    for kommune, place in vocab.places().items():
        if place.system == "sosio":
            total += _sosio(night, kommune, clients[kommune], folder / f"sosio_{kommune}_{day}.csv")
        else:
            total += _flyt(night, kommune, clients[kommune], folder / f"flyt_{kommune}_{day}.jsonl")
    night.written.records["kommune"] = total


def _sosio(night: Night, kommune: str, people: list[Person], path: Path) -> int:
    m, rng = night.model, night.rng
    lines = [SOSIO_HEADER]
    for p in people:
        ident, _ = _typed_ident(night, p, "sosio")
        given, surname, _ = _municipal_names(night, p)
        address, postnr, poststed = _address(p)
        if night.quirk(p, "ascii", lambda r: r.random() < m.ascii_letters):
            given, surname, address = (
                ascii_letters(given),
                ascii_letters(surname),
                ascii_letters(address),
            )
        good = False
        for s in p.services:
            fields = [
                p.client_id or "",
                ident or "",
                surname,
                given,
                address,
                postnr,
                poststed,
                SOSIO_LABELS[s.code],
                s.start.strftime("%d.%m.%Y"),
                s.end.strftime("%d.%m.%Y") if s.end else "",
                _kroner(s.amount),
                s.caseworker,
                s.text,
            ]
            location = f"sosio_{kommune}:line:{len(lines) + 1}"
            roll = rng.random()
            if roll < m.sosio_bad_columns:
                fields = fields[:7]
                night.written.bad.append(("kommune", location, "bad columns"))
            elif roll < m.sosio_bad_columns + m.sosio_bad_date:
                fields[8] = f"31.02.{s.start.year}"
                night.written.bad.append(("kommune", location, "invalid date"))
            elif roll < m.sosio_bad_columns + m.sosio_bad_date + m.sosio_bad_amount:
                fields[10] = "ca 5000"
                night.written.bad.append(("kommune", location, "bad amount"))
            else:
                good = True
            lines.append(";".join(fields))
        if good:
            night.written.links.append(("kommune", f"sosio:{kommune}:{p.client_id}", p.key))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return len(lines) - 1


def _flyt(night: Night, kommune: str, people: list[Person], path: Path) -> int:
    m, rng = night.model, night.rng
    stamp = f"{night.day.isoformat()}T01:30:00+01:00"
    lines = []
    for p in people:
        ident, kind = _typed_ident(night, p, "flyt")
        if ident and night.quirk(
            p, "ident_type_null", lambda r: r.random() < m.flyt_ident_type_null
        ):
            kind = None
        given, surname, middle = _municipal_names(night, p)
        address, postnr, poststed = _address(p)
        services = [
            {
                "kode": s.code,
                "fra": s.start.isoformat(),
                "til": s.end.isoformat() if s.end else None,
                "belopMnd": None if s.amount is None else s.amount / 100,
                "saksbehandler": s.caseworker,
                "begrunnelse": s.text,
            }
            for s in p.services
        ]
        obj: dict[str, object] = {"klientId": p.client_id, "kommunenr": kommune}
        person = {
            "ident": ident,
            "identType": kind if ident else None,
            "fornavn": given,
            "mellomnavn": middle,
            "etternavn": surname,
            "fodselsdato": p.born.isoformat(),
            "adresse": {"gate": address, "postnr": postnr, "poststed": poststed},
            "telefon": p.phone,
        }
        location = f"flyt_{kommune}:line:{len(lines) + 1}"
        roll = rng.random()
        kind_bad = None
        if roll < m.flyt_missing_person:
            kind_bad = "missing person"
        else:
            obj["person"] = person
        if kind_bad is None and roll < m.flyt_missing_person + m.flyt_bad_date:
            services[0]["fra"] = f"{p.services[0].start.year}-02-30"
            kind_bad = "invalid date"
        obj["tjenester"] = services
        obj["sistEndret"] = stamp
        line = json.dumps(obj, ensure_ascii=False)
        if kind_bad is None and roll < m.flyt_missing_person + m.flyt_bad_date + m.flyt_truncated:
            line = line[: rng.randint(40, len(line) - 5)]
            kind_bad = "truncated json"
        if kind_bad:
            night.written.bad.append(("kommune", location, kind_bad))
        else:
            night.written.links.append(("kommune", f"flyt:{kommune}:{p.client_id}", p.key))
        lines.append(line)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)
