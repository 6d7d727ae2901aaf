"""The corruption model: every quirk of the interface agreement, at a documented rate.

Rates are per record (or per person where the quirk belongs to the person) and live in one
dataclass so that a benchmark or a test can turn one up. ``docs/simulator.md`` lists them.
Identity quirks (a typed number, a shortened name) belong to a record and stay the same from
night to night, as a real register keeps its typo; transfer errors (a truncated line, a broken
date) are drawn again every night.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CorruptionModel:
    # population
    twins: float = 0.03  # of families with children: two children born the same day
    junior: float = 0.03  # of sons living with their father: named after him
    d_number: float = 0.05  # people who came with a D-nummer
    d_to_fnr: float = 0.4  # of those: have since got a fødselsnummer
    strengt_fortrolig: float = 0.001
    fortrolig: float = 0.003
    skjermet: float = 0.005  # NAV employees
    dead: float = 0.004
    # Arena
    arena_coverage: float = 0.22  # of people aged 18-67
    arena_duplicate: float = 0.01  # registered twice under two PERSON_IDs
    arena_duplicate_without_fnr: float = 0.7
    arena_null_fnr: float = 0.01
    arena_middle_in_fornavn: float = 0.5  # of people with a middle name
    arena_name_typo: float = 0.003
    arena_broken_birth_date: float = 0.002  # '0000-00-00': quarantined
    arena_orphan_vedtak: float = 0.0005  # VEDTAK rows pointing at no PERSON: quarantined
    # Infotrygd
    infotrygd_still_dnr: float = 0.3  # of D-to-F people: Infotrygd still has the D-nummer
    infotrygd_two_records: float = 0.15  # of D-to-F people: one record per number
    infotrygd_spesreg_lag: float = 0.2  # of protected people: no SPESREG yet
    infotrygd_pre_reform: float = 0.05  # TKNR a pre-reform municipality number
    infotrygd_truncated: float = 0.001  # person records cut short: quarantined
    infotrygd_bad_date: float = 0.002  # benefit FOM like 20250231: quarantined
    # municipal systems
    municipal_clients: float = 0.04  # of adults: a social-service client
    sh_through_infotrygd: float = 0.1  # of OKSOS clients: also paid via Infotrygd SH
    ident_empty: float = 0.05
    ident_space: float = 0.08  # Sosio: '278869 23363'
    ident_typo: float = 0.02  # transposed or one wrong digit
    ident_family: float = 0.005  # a family member's number typed instead
    ident_old_dnr: float = 0.3  # of D-to-F people: the municipality still has the D-nummer
    given_shortened: float = 0.05
    maiden_surname: float = 0.3  # of married women: the surname from before the marriage
    ascii_letters: float = 0.1  # Sosio: æøå typed ae/o/aa
    sosio_bad_columns: float = 0.01
    sosio_bad_date: float = 0.005
    sosio_bad_amount: float = 0.01
    flyt_truncated: float = 0.02
    flyt_missing_person: float = 0.005
    flyt_bad_date: float = 0.005
    flyt_ident_type_null: float = 0.1
    # night to night
    moves: float = 0.004
    move_lag: float = 0.5  # of moves: the municipal system still has the old address
    d_to_fnr_per_night: float = 0.002  # of people with only a D-nummer
    deaths_per_night: float = 0.0003
    new_protection_per_night: float = 0.0002
    newcomers_per_night: float = 0.002
    new_services_per_night: float = 0.003
    ended_services_per_night: float = 0.003
    # the Folkeregister feed (simulator/feed.py), drawn from its own random stream
    feed_parents: float = 0.5  # of adults born 1962 or later: their parents are in the feed
    feed_adult_children: float = 0.4  # of single people 55 or older: children living elsewhere
    feed_dangling: float = 0.05  # of feed-only parents: a number the snapshot does not hold
    feed_only_marker: float = 0.002  # of people unprotected in the registers: a feed marker
    feed_municipal_kode6: float = 0.05  # of people only a municipal system knows: kode 6
    feed_stricter: float = 0.1  # of people FORTROLIG in the registers: STRENGT_FORTROLIG
    feed_caseworkers: float = 0.0005  # NAV caseworkers related to clients (at least 10)
    feed_truncated: float = 0.0005  # snapshot lines cut short: quarantined
    feed_raises_per_day: float = 0.0001  # events raising a marker (at least 3)
    feed_deaths_per_day: float = 0.00005  # deaths the registers do not know yet (at least 1)


ASCII = str.maketrans({"æ": "ae", "ø": "o", "å": "aa", "Æ": "Ae", "Ø": "O", "Å": "Aa"})


def ascii_letters(text: str) -> str:
    """How a keyboard without æøå writes a name: ``Bjørg Sæther`` → ``Bjorg Saether``."""
    return text.translate(ASCII)


def typo_ident(value: str, rng: random.Random) -> str:
    """One typing error: two adjacent digits swapped, or one digit wrong."""
    digits = list(value)
    if rng.random() < 0.5:
        for _ in range(10):
            i = rng.randrange(10)
            if digits[i] != digits[i + 1]:
                digits[i], digits[i + 1] = digits[i + 1], digits[i]
                return "".join(digits)
    i = rng.randrange(11)
    digits[i] = str((int(digits[i]) + rng.randrange(1, 10)) % 10)
    return "".join(digits)


def typo_name(name: str, rng: random.Random) -> str:
    """A doubled or swapped letter: ``Bjørg`` → ``Bjøørg``, ``Silje`` → ``Sijle``."""
    if len(name) < 4:
        return name + name[-1]
    i = rng.randrange(1, len(name) - 2)
    if rng.random() < 0.5:
        return name[:i] + name[i] + name[i:]
    return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
