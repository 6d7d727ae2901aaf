"""The store and the night: publish, rerun, incremental = full rebuild, refusal, recovery.
Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from adapters import read_drop
from adapters.drop import fingerprint
from personkort.nightly import run_night
from personkort.reconcile import pairwise_score, record_key
from personkort.store import models as m
from personkort.store import open_engine, queries
from personkort.store.nights import driver_insert
from simulator import simulate
from tests.conftest import read_csv


def _night(engine: sa.Engine, drop: Path):
    return run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))


def _partition(engine: sa.Engine) -> set[frozenset[str]]:
    cards: dict[str, set[str]] = defaultdict(set)
    for register, source_key, card in queries.links(engine):
        cards[card].add(record_key(register, source_key))
    return {frozenset(v) for v in cards.values()}


def _row_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0
            for t in m.Base.metadata.sorted_tables
        }


def test_two_nights_publish_the_answer_keys_people(sample: Path, store_url: str) -> None:
    engine = open_engine(store_url)
    for name in ("night1", "night2"):
        outcome = _night(engine, sample / name)
        assert outcome.status == "published"
        truth = {
            record_key(r["register"], r["source_key"]): r["person_key"]
            for r in read_csv(sample / name / "truth" / "links.csv")
        }
        clusters = _partition(engine)
        assert {k for c in clusters for k in c} == set(truth)
        score = pairwise_score(clusters, truth)
        assert score.precision == 1.0
        assert score.recall >= 0.99
    assert queries.served_night(engine) == 2


def test_rerunning_the_served_night_changes_nothing(sample: Path, store_url: str) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    before = _row_counts(engine)
    again = _night(engine, sample / "night1")
    assert again.status == "unchanged"
    assert _row_counts(engine) == before


def test_card_ids_stay_while_records_stay(sample: Path, store_url: str) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    first = {(r, k): c for r, k, c in queries.links(engine)}
    _night(engine, sample / "night2")
    second = {(r, k): c for r, k, c in queries.links(engine)}
    kept = [key for key in first if key in second and first[key] == second[key]]
    assert len(kept) / len(first) > 0.9
    # Every card id that disappeared is accounted for by an event.
    with engine.connect() as conn:
        events = conn.execute(sa.select(m.CardEvent.old_ids)).scalars().all()
    explained = {old for olds in events for old in olds}
    assert set(first.values()) - set(second.values()) <= explained


def test_incremental_night_equals_a_full_rebuild(
    sample: Path, store_url: str, tmp_path: Path
) -> None:
    incremental = open_engine(store_url)
    _night(incremental, sample / "night1")
    _night(incremental, sample / "night2")
    rebuilt = open_engine(f"sqlite:///{tmp_path / 'rebuilt.sqlite'}")
    _night(rebuilt, sample / "night2")
    assert _partition(incremental) == _partition(rebuilt)


def test_refused_night_leaves_yesterdays_cards_served(
    sample: Path, store_url: str, tmp_path: Path
) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    served = sorted(queries.links(engine))
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop)
    (info,) = (drop / "infotrygd").glob("*.dat")
    info.chmod(0o644)
    info.write_bytes(info.read_bytes()[:10_000])
    outcome = _night(engine, drop)
    assert outcome.status == "refused"
    assert info.name in outcome.message and "trailer" in outcome.message
    assert sorted(queries.links(engine)) == served
    assert queries.served_night(engine) == 1
    assert [n["status"] for n in queries.nights(engine)] == ["published", "refused"]
    assert _night(engine, sample / "night2").status == "published"


def test_failed_write_rolls_back_and_keeps_serving(
    sample: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    served = sorted(queries.links(engine))
    import personkort.store.nights as nights

    real = nights._insert_night_rows

    def boom(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("disk full")

    monkeypatch.setattr(nights, "_insert_night_rows", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _night(engine, sample / "night2")
    assert sorted(queries.links(engine)) == served
    statuses = [n["status"] for n in queries.nights(engine)]
    assert statuses == ["published", "failed"]
    monkeypatch.undo()
    assert _night(engine, sample / "night2").status == "published"


def test_steward_decision_binds_later_nights(sample: Path, store_url: str) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    with engine.connect() as conn:
        review = conn.execute(sa.select(m.ReviewRow)).mappings().first()
    assert review is not None, "the sample has an uncertain pair"
    with engine.begin() as conn:
        queries.add_decision(conn, review["record_key"], review["candidate_key"], False, "Z999")
    _night(engine, sample / "night2")
    with engine.connect() as conn:
        open_reviews = conn.execute(
            sa.select(m.ReviewRow.record_key, m.ReviewRow.candidate_key).where(
                m.ReviewRow.night_id == 2
            )
        ).all()
    assert (review["record_key"], review["candidate_key"]) not in open_reviews


def test_cards_awaiting_review_are_the_cards_of_queued_records(
    sample: Path, store_url: str
) -> None:
    engine = open_engine(store_url)
    for night in ("night1", "night2"):
        _night(engine, sample / night)
    served = queries.served_night(engine)
    with engine.connect() as conn:
        queued = conn.execute(
            sa.select(m.ReviewRow.record_key, m.ReviewRow.candidate_key).where(
                m.ReviewRow.night_id == served
            )
        ).all()
        pending = set(
            conn.scalars(
                sa.select(m.Card.card_id).where(m.Card.valid_to.is_(None), m.Card.pending_review)
            )
        )
    links = {record_key(r, k): card for r, k, card in queries.links(engine)}
    assert queued, "the sample's second night has uncertain pairs"
    # both sides of every pair: each card involved awaits review (spec/policy.md)
    assert pending == {links[r] for pair in queued for r in pair if r in links}


def _current_match_keys(engine: sa.Engine) -> set[tuple[str, int, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.MatchKey.record_key, m.MatchKey.key, m.MatchKey.floating).where(
                m.MatchKey.valid_to.is_(None)
            )
        )
        return {tuple(row) for row in rows}  # type: ignore[misc]


def _cards_by_records(engine: sa.Engine) -> dict[frozenset[str], tuple[object, ...]]:
    cards: dict[str, set[str]] = defaultdict(set)
    for register, source_key, card in queries.links(engine):
        cards[card].add(record_key(register, source_key))
    with engine.connect() as conn:
        attrs = {
            row[0]: tuple(row[1:])
            for row in conn.execute(
                sa.select(
                    m.Card.card_id, m.Card.protection, m.Card.skjermet, m.Card.pending_review
                ).where(m.Card.valid_to.is_(None))
            )
        }
    return {frozenset(records): attrs[card] for card, records in cards.items()}


def _simulated(factory: pytest.TempPathFactory, seed: int, nights: int) -> Path:
    sim = factory.mktemp("sim")
    simulate(3_000, seed, nights, sim)
    return sim


def test_an_incremental_night_on_a_simulated_population(
    store_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sim = _simulated(tmp_path_factory, 13, 3)
    incremental = open_engine(store_url)
    assert _night(incremental, sim / "night1").counts["reconciled"] == "full"
    for name in ("night2", "night3"):
        outcome = _night(incremental, sim / name)
        assert outcome.status == "published"
        assert outcome.counts["reconciled"] == "incremental"
        assert outcome.counts["records_reconciled"] < outcome.counts["person_records"] / 3
        rebuilt = open_engine(f"sqlite:///{tmp_path / f'rebuilt-{name}.sqlite'}")
        assert _night(rebuilt, sim / name).counts["reconciled"] == "full"
        assert _cards_by_records(incremental) == _cards_by_records(rebuilt)
        assert _current_match_keys(incremental) == _current_match_keys(rebuilt)
        with incremental.connect() as a, rebuilt.connect() as b:
            queue = sa.select(m.ReviewRow.record_key, m.ReviewRow.candidate_key).order_by(
                m.ReviewRow.id
            )
            served_a, served_b = queries.served_night(incremental), queries.served_night(rebuilt)
            assert (
                a.execute(queue.where(m.ReviewRow.night_id == served_a)).all()
                == b.execute(queue.where(m.ReviewRow.night_id == served_b)).all()
            )


def test_an_incremental_night_writes_what_a_full_night_writes(
    store_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sim = _simulated(tmp_path_factory, 17, 2)
    incremental = open_engine(store_url)
    full = open_engine(f"sqlite:///{tmp_path / 'full.sqlite'}")
    for engine in (incremental, full):
        _night(engine, sim / "night1")
    with full.begin() as conn:  # as if the keys were made by another version: a full night
        counts = conn.scalar(sa.select(m.Night.counts).where(m.Night.id == 1))
        conn.execute(
            sa.update(m.Night)
            .where(m.Night.id == 1)
            .values(counts={**counts, "match_state": "another version"})
        )
    a, b = _night(incremental, sim / "night2"), _night(full, sim / "night2")
    assert (a.counts["reconciled"], b.counts["reconciled"]) == ("incremental", "full")
    for count in ("cards", "cards_new", "links_changed", "merged", "split", "retired"):
        assert a.counts[count] == b.counts[count], count
    assert sorted(queries.links(incremental)) == sorted(queries.links(full))  # card ids too
    assert _cards_by_records(incremental) == _cards_by_records(full)
    assert _current_match_keys(incremental) == _current_match_keys(full)

    def events(engine: sa.Engine) -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(m.CardEvent.kind, m.CardEvent.old_ids, m.CardEvent.new_ids).where(
                    m.CardEvent.night_id == 2
                )
            )
            return sorted((kind, tuple(old), tuple(new)) for kind, old, new in rows)

    assert events(incremental) == events(full)
    assert events(full)  # the night merged, split or retired cards: the ids were put to work
    assert {**a.report, "counts": None} == {**b.report, "counts": None}


def test_a_night_written_in_small_chunks_stores_what_one_written_whole_stores(
    sample: Path, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The night's rows are made and written a chunk of records at a time (memory); chunks of
    three records and of seven rows must leave the store as one chunk of everything does."""
    whole = open_engine(f"sqlite:///{tmp_path / 'whole.sqlite'}")
    chunked = open_engine(store_url)
    monkeypatch.setattr("personkort.store.nights.RECORDS_AT_A_TIME", 1_000_000)
    monkeypatch.setattr("personkort.store.nights.CHUNK", 1_000_000)
    monkeypatch.setattr("personkort.store.nights.SQLITE_CHUNK", 1_000_000)
    for name in ("night1", "night2"):
        assert _night(whole, sample / name).status == "published"
    monkeypatch.setattr("personkort.store.nights.RECORDS_AT_A_TIME", 3)
    monkeypatch.setattr("personkort.store.nights.CHUNK", 7)
    monkeypatch.setattr("personkort.store.nights.SQLITE_CHUNK", 7)
    for name in ("night1", "night2"):
        assert _night(chunked, sample / name).status == "published"
    counts = _row_counts(whole)
    assert counts["source_record"] > 3 and counts["match_key"] > 7
    assert _row_counts(chunked) == counts
    assert sorted(queries.links(chunked)) == sorted(queries.links(whole))
    assert _cards_by_records(chunked) == _cards_by_records(whole)
    assert _current_match_keys(chunked) == _current_match_keys(whole)


_FEED_PERSON = {
    "person_key": "01010012345",
    "digest": "0" * 32,
    "location": "folkeregister:line:1",
    "given_names": "Åse Marie",
    "middle_name": None,
    "surname": "Ødegård",
    "birth_date": dt.date(1970, 1, 1),
    "gradering": "STRENGT_FORTROLIG",
    "death_date": None,
    "changed_at": dt.datetime(2026, 11, 20, 1, 10, 0, 123456, tzinfo=dt.UTC),
    "idents": [["01010012345", "FNR", True], ["41010012345", "DNR", False]],
    "numbers": 2,
    "relations": [["02020054321", "MOR"]],
    "valid_from": 1,
}


def test_the_drivers_insert_stores_what_sqlalchemys_insert_stores(store_url: str) -> None:
    """A full night's feed rows go through the driver, each value through its column's own
    bind processor: read back, a row so written equals one written through SQLAlchemy (dates,
    an aware time, JSON lists, a NULL), on each database."""
    engine = open_engine(store_url)
    t = m.FeedPersonRow
    names = list(_FEED_PERSON)
    with engine.begin() as conn:
        conn.execute(sa.insert(t), [dict(_FEED_PERSON, person_key="a")])
        driver_insert(conn, t, names, [tuple(dict(_FEED_PERSON, person_key="b").values())])
    with engine.connect() as conn:
        rows = {r.person_key: r for r in conn.execute(sa.select(t))}
    assert set(rows) == {"a", "b"}
    through_sqlalchemy, through_driver = (
        {name: getattr(rows[k], name) for name in names if name != "person_key"} for k in "ab"
    )
    assert through_driver == through_sqlalchemy
    assert through_driver["changed_at"] == _FEED_PERSON["changed_at"]
    assert through_driver["idents"] == _FEED_PERSON["idents"]


class _Defaulted(DeclarativeBase):
    pass


class _WithDefault(_Defaulted):
    __tablename__ = "with_default"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    made: Mapped[str] = mapped_column(sa.String(8), default="python")


def test_the_drivers_insert_refuses_a_column_it_would_write_without_its_default() -> None:
    engine = sa.create_engine("sqlite://")
    _Defaulted.metadata.create_all(engine)
    with engine.begin() as conn, pytest.raises(ValueError, match="exactly its columns"):
        driver_insert(conn, _WithDefault, ["kind"], [("a",)])  # type: ignore[arg-type]
    with engine.connect() as conn:  # the insert commits as it breathes, on SQLite
        driver_insert(conn, _WithDefault, ["kind", "made"], [("a", "given")])  # type: ignore[arg-type]
        assert conn.execute(sa.select(_WithDefault.made)).scalar() == "given"


def test_a_row_the_database_refuses_through_the_driver_is_sqlalchemys_error(
    store_url: str,
) -> None:
    """The night's failure path handles SQLAlchemy's errors; nothing of the transaction stays."""
    engine = open_engine(store_url)
    row = dict(_FEED_PERSON, surname=None)  # NOT NULL
    with pytest.raises(sa.exc.DatabaseError), engine.begin() as conn:
        driver_insert(
            conn, m.FeedPersonRow, list(row), [tuple(_FEED_PERSON.values()), tuple(row.values())]
        )
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(m.FeedPersonRow)).scalar() == 0


def test_the_drivers_insert_commits_as_it_breathes_as_sqlalchemys_insert_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a night commits its rows a chunk at a time, so lookups are not stalled for
    the whole write. A driver insert first on a connection (a full night's feed: nothing to
    close) began the driver's transaction behind SQLAlchemy's back, whose commits then did
    nothing: each chunk must be committed, visible to another connection as it is written."""
    monkeypatch.setattr("personkort.store.nights.SQLITE_CHUNK", 2)
    monkeypatch.setattr("personkort.store.nights.BREATHE", 0.0)
    engine = open_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    seen: list[int] = []

    def rows() -> Iterator[tuple[Any, ...]]:
        for n in range(6):
            with sqlite3.connect(tmp_path / "store.sqlite") as other:
                seen.append(other.execute("SELECT count(*) FROM feed_person").fetchone()[0])
            yield tuple(dict(_FEED_PERSON, person_key=f"p{n}").values())

    with engine.connect() as conn:
        driver_insert(conn, m.FeedPersonRow, list(_FEED_PERSON), rows())
        with sqlite3.connect(tmp_path / "store.sqlite") as other:
            seen.append(other.execute("SELECT count(*) FROM feed_person").fetchone()[0])
    assert seen == [0, 0, 2, 2, 4, 4, 6]  # before each row is made, then after the insert
