"""A bad Folkeregister snapshot never opens the relatives gate: it is refused alone and the
last one stays in force, while the night's cards publish."""

from __future__ import annotations

import datetime as dt
import pickle
import shutil
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from personkort import nightly
from personkort.feed.records import FeedSnapshot
from personkort.nightly import run_night
from personkort.store import feed, open_engine
from personkort.store import models as m
from personkort.store.feed import (
    StaleRead,
    canonical,
    digests_from_rows,
    digests_in_force,
    known_digests,
    snapshot_changes,
    snapshot_in_force,
)
from personkort.store.nights import published_night, visible


def _night_one_served(store_url: str, sample: Path) -> sa.Engine:
    """A store that serves the sample's night 1, with its snapshot."""
    engine = open_engine(store_url)
    first = sample / "night1"
    run_night(engine, read_drop(first), drop_dir=str(first), fingerprint=fingerprint(first))
    return engine


def test_a_cut_short_snapshot_is_refused_and_the_last_one_kept(
    store_url: str, tmp_path: Path, sample: Path
) -> None:
    engine = _night_one_served(store_url, sample)
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop)
    snapshot = next((drop / "folkeregister").glob("*.jsonl"))
    lines = snapshot.read_text(encoding="utf-8").splitlines(keepends=True)
    snapshot.write_text("".join(lines[:100]), encoding="utf-8")  # cut short, 100 of 331
    outcome = run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert outcome.status == "published", outcome.message
    feed = outcome.counts["feed"]
    assert feed["status"] == "refused" and "against 330" in feed["reason"]
    with engine.connect() as conn:
        served = outcome.night
        assert served is not None
        in_force = snapshot_in_force(conn, served)
        assert in_force is not None and in_force[2] == "folkeregister_20261120.jsonl"
        last_line_person = lines[-1].split('"identifikasjonsnummer": "', 1)[1][:11]
        assert canonical(conn, served, [last_line_person])  # still known from night 1


def _feed_rows(engine: sa.Engine) -> Counter[tuple[object, ...]]:
    """The served snapshot's persons, counted: a person written twice shows."""
    with engine.connect() as conn:
        served = published_night(conn)
        t = m.FeedPersonRow
        rows = conn.execute(
            sa.select(t.person_key, t.digest, t.gradering, t.death_date, t.surname).where(
                visible(t, served)
            )
        ).all()
    return Counter(tuple(r) for r in rows)


def test_unchanged_lines_are_not_parsed_and_the_store_ends_the_same(
    tmp_path: Path, sample: Path
) -> None:
    skipping = open_engine(f"sqlite:///{tmp_path}/skip.sqlite")
    parsing = open_engine(f"sqlite:///{tmp_path}/parse.sqlite")
    for name in ("night1", "night2"):
        drop = sample / name
        known = known_digests(skipping)
        extract = read_drop(drop, feed_known=known.keys)
        assert extract.feed is not None
        if name == "night2":  # the sample stamps every line anew; only five persons changed
            assert len(extract.feed.persons) < 10 and len(extract.feed.unchanged) > 300
        lines = extract.feed.lines
        outcome = run_night(
            skipping, extract, drop_dir=str(drop), fingerprint=fingerprint(drop), feed_digests=known
        )
        assert outcome.counts["feed"]["status"] == "read"
        assert outcome.counts["feed"]["persons"] == lines
        # written, the persons were let go before reconciliation; the lines still count
        assert extract.feed.persons == [] and extract.feed.unchanged == []
        assert extract.feed.lines == lines
        run_night(parsing, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
        assert _feed_rows(skipping) == _feed_rows(parsing)


def test_a_snapshot_read_against_an_older_night_publishes_whole(
    tmp_path: Path, sample: Path
) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/stale.sqlite")
    parsing = open_engine(f"sqlite:///{tmp_path}/parse.sqlite")
    first, second = sample / "night1", sample / "night2"
    for store in (engine, parsing):
        run_night(store, read_drop(first), drop_dir=str(first), fingerprint=fingerprint(first))
    known = known_digests(engine)  # night 1's
    assert len(known.keys) > 300
    run_night(engine, read_drop(second), drop_dir=str(second), fingerprint=fingerprint(second))
    # a third drop, read against night 1's digests while night 2 was being published
    third = tmp_path / "night3"
    shutil.copytree(second, third)
    snapshot = next((third / "folkeregister").glob("*.jsonl"))
    snapshot.write_bytes(snapshot.read_bytes() + b"\n")
    extract = read_drop(third, feed_known=known.keys)
    # handed night 1's digests too, the night reads the served night's again
    outcome = run_night(
        engine, extract, drop_dir=str(third), fingerprint=fingerprint(third), feed_digests=known
    )
    assert outcome.status == "published"
    assert outcome.counts["feed"]["status"] == "read", outcome.counts["feed"]
    run_night(parsing, read_drop(third), drop_dir=str(third), fingerprint=fingerprint(third))
    assert _feed_rows(engine) == _feed_rows(parsing)


def test_lines_skipped_for_persons_the_store_lost_refuse_the_snapshot(
    store_url: str, sample: Path
) -> None:
    engine = _night_one_served(store_url, sample)
    before = _feed_rows(engine)
    drop = sample / "night2"
    wrong = {**known_digests(engine).keys, "0" * 32: "00000000000"}
    extract = read_drop(drop, feed_known=wrong)
    assert extract.feed is not None
    extract.feed.unchanged.append("0" * 32)  # as if a line matched a person since rolled back
    outcome = run_night(engine, extract, drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert outcome.status == "published"
    assert outcome.counts["feed"]["status"] == "refused"
    assert _feed_rows(engine) == before  # the last snapshot stays whole


def test_the_snapshot_in_force_is_the_moment_it_was_read_as(store_url: str, sample: Path) -> None:
    """On SQLite 01:10+01:00 was stored as 01:10 and read back as 01:10 UTC, an hour late: the
    same snapshot again was "older than the one in force" (store/models.py: UTCDateTime)."""
    engine = open_engine(store_url)
    first = sample / "night1"
    extract = read_drop(first)
    assert extract.feed is not None and extract.feed.as_of.utcoffset() == dt.timedelta(hours=1)
    run_night(engine, extract, drop_dir=str(first), fingerprint=fingerprint(first))
    with engine.connect() as conn:
        in_force = snapshot_in_force(conn, 1)
    assert in_force is not None and in_force[1] == extract.feed.as_of
    assert in_force[1].utcoffset() == dt.timedelta(0)


def _night_with_one_line_changed(sample: Path, folder: Path) -> Path:
    """Night 2's drop with its first snapshot person renamed: one line changed."""
    shutil.copytree(sample / "night2", folder)
    snapshot = next((folder / "folkeregister").glob("*.jsonl"))
    text = snapshot.read_text(encoding="utf-8")
    first, rest = text.split("\n", 1)
    renamed = first.replace('"etternavn": "', '"etternavn": "Xq', 1)
    assert renamed != first
    snapshot.write_text(f"{renamed}\n{rest}", encoding="utf-8")
    return folder


def test_the_digests_a_night_stores_are_the_rows_it_leaves_in_force(
    store_url: str, tmp_path: Path, sample: Path
) -> None:
    """The reader loads the snapshot in force's digests from the two values its night stored:
    after every night they are the served rows' own, and only the snapshot in force (and the
    one a night writes beside it) keeps them."""
    engine = open_engine(store_url)
    drops = [
        sample / "night1",
        sample / "night2",
        _night_with_one_line_changed(sample, tmp_path / "n3"),
    ]
    for drop in drops:
        known = known_digests(engine)
        outcome = run_night(
            engine,
            read_drop(drop, feed_known=known.keys),
            drop_dir=str(drop),
            fingerprint=fingerprint(drop),
            feed_digests=known,
        )
        assert outcome.counts["feed"]["status"] == "read", outcome.counts["feed"]
        with engine.connect() as conn:
            served = published_night(conn)
            assert served is not None
            from_rows = digests_from_rows(conn, served)
        loaded = known_digests(engine)
        assert loaded.night == served and loaded.keys == from_rows
        assert len(from_rows) > 300
    assert outcome.counts["feed"]["persons_changed"] == 1
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(m.FeedSnapshotRow.night_id).where(m.FeedSnapshotRow.line_digests.is_not(None))
        ).scalars()
        assert sorted(kept) == [2, 3]  # night 1's were dropped when night 3 wrote its own


def test_without_stored_digests_or_with_broken_ones_the_rows_are_read(
    store_url: str, sample: Path
) -> None:
    engine = _night_one_served(store_url, sample)
    with engine.connect() as conn:
        from_rows = digests_from_rows(conn, 1)
    t = m.FeedSnapshotRow
    with engine.connect() as conn:
        keys = conn.scalar(sa.select(m.FeedSnapshotRow.line_keys))
    flipped = ("1" if keys[0] != "1" else "2") + keys[1:]  # a failing disk: same length
    broken_values = (
        {"line_keys": flipped},
        {"line_check": "0:0:0"},
        {"line_keys": "1\n2"},
        {"line_digests": "ab"},
        {"line_digests": None},
    )
    for broken in broken_values:
        with engine.begin() as conn:  # as a store from before 0012, or a damaged value
            conn.execute(sa.update(t).values(**broken))
        assert known_digests(engine).keys == from_rows


def test_a_map_stored_with_its_digests_run_together_is_read_as_none(
    store_url: str, sample: Path
) -> None:
    """A store from before the digests were stored one per line: its map, check and all, is
    not split wrongly but read as missing, so the rows are read."""
    engine = _night_one_served(store_url, sample)
    t = m.FeedSnapshotRow
    with engine.begin() as conn:
        digests, keys = conn.execute(sa.select(t.line_digests, t.line_keys)).one()
        assert digests.count("\n") == keys.count("\n") > 300
        run_together = digests.replace("\n", "")
        check = feed._line_check(conn, run_together, keys)
        conn.execute(sa.update(t).values(line_digests=run_together, line_check=check))
        from_rows = digests_from_rows(conn, 1)
    assert feed._unpacked(run_together, keys) is None
    assert known_digests(engine).keys == from_rows


def test_a_snapshot_compared_after_its_map_was_let_go_is_checked_against_the_rows(
    tmp_path: Path, sample: Path
) -> None:
    """A map let go after one night's write (a night that then failed, say) is no longer the
    store's persons: a snapshot read against it is compared with the rows, line by line (an
    emptied map passed as the very map it was read against, and no stored person counted as
    gone); against a map that does not hold its skipped lines, it is refused."""
    engine = _night_one_served(f"sqlite:///{tmp_path}/let-go.sqlite", sample)
    stored = known_digests(engine)
    extract = read_drop(sample / "night2", feed_known=stored.keys)
    assert extract.feed is not None and len(extract.feed.unchanged) > 300
    expected = snapshot_changes(extract.feed, stored.keys)
    stored.release()
    with engine.connect() as conn:
        current = digests_in_force(conn, stored)
        assert current is not stored.keys and current == digests_from_rows(conn, 1)
    assert snapshot_changes(extract.feed, current) == expected
    with pytest.raises(StaleRead):
        snapshot_changes(extract.feed, stored.keys)  # the emptied map, checked


def test_a_night_retried_with_a_let_go_map_reads_the_rows_and_duplicates_no_one(
    tmp_path: Path, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A night that fails after its feed write lets the map go; retried with the same
    StoredDigests (the drop read again, as StaleRead says), it must compare with the rows,
    not with the emptied map: compared with nothing, every person was written a second open
    row (an attack review's finding, older than the map's release)."""
    engine = _night_one_served(f"sqlite:///{tmp_path}/retry.sqlite", sample)
    second = sample / "night2"
    stored = known_digests(engine)

    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("reconciliation failed")

    with monkeypatch.context() as patched:
        patched.setattr(nightly, "_reconcile", crash)
        with pytest.raises(RuntimeError):
            run_night(
                engine,
                read_drop(second, feed_known=stored.keys),
                drop_dir=str(second),
                fingerprint=fingerprint(second),
                feed_digests=stored,
            )
    assert stored.released and not stored.keys
    retried = run_night(
        engine,
        read_drop(second, feed_known=stored.keys),
        drop_dir=str(second),
        fingerprint=fingerprint(second),
        feed_digests=stored,
    )
    assert retried.status == "published" and retried.counts["feed"]["status"] == "read"
    t = m.FeedPersonRow
    with engine.connect() as conn:
        doubled = conn.execute(
            sa.select(t.person_key)
            .where(t.valid_to.is_(None))
            .group_by(t.person_key)
            .having(sa.func.count() > 1)
        ).all()
    assert doubled == []
    plain = _night_one_served(f"sqlite:///{tmp_path}/plain.sqlite", sample)
    uninterrupted = run_night(
        plain, read_drop(second), drop_dir=str(second), fingerprint=fingerprint(second)
    )
    assert retried.counts["feed"] == uninterrupted.counts["feed"]
    assert _feed_rows(engine) == _feed_rows(plain)


def test_the_map_handed_out_cannot_be_changed_and_one_written_short_is_not_used(
    store_url: str, sample: Path
) -> None:
    """The night trusts a snapshot read against the very map it compares with: that map is
    read-only. A stored map with fewer entries than open rows (its check made to match) is
    not used: its missing persons' lines would be parsed and written again beside their
    rows."""
    engine = _night_one_served(store_url, sample)
    known = known_digests(engine)
    with pytest.raises(TypeError):
        known.keys["0" * 32] = "00000000000"  # type: ignore[index]
    t = m.FeedSnapshotRow
    with engine.begin() as conn:
        digests, keys = conn.execute(sa.select(t.line_digests, t.line_keys)).one()
        short_digests, short_keys = digests.split("\n", 1)[1], keys.split("\n", 1)[1]
        check = feed._line_check(conn, short_digests, short_keys)  # counts the rows: one more
        conn.execute(
            sa.update(t).values(line_digests=short_digests, line_keys=short_keys, line_check=check)
        )
        from_rows = digests_from_rows(conn, 1)
    assert feed._unpacked(short_digests, short_keys) is not None  # it pairs up
    assert known_digests(engine).keys == from_rows  # but the rows are read


def test_a_snapshot_pickled_before_read_against_unpickles(tmp_path: Path, sample: Path) -> None:
    """The DAG's work files outlive a deploy: a snapshot pickled by code without the field
    (the default state of a class with slots) still loads, and one pickled now has that
    default form, which such code reads too."""
    snapshot = read_drop(sample / "night1").feed
    assert snapshot is not None
    state = snapshot.__getstate__()
    assert state[0] is None and "read_against" not in state[1]
    older = (None, {n: getattr(snapshot, n) for n in FeedSnapshot.__slots__ if n != "read_against"})
    again = FeedSnapshot.__new__(FeedSnapshot)
    again.__setstate__(older)
    assert again == snapshot and again.read_against is None


def test_a_snapshot_is_pickled_without_the_map_it_was_read_against(
    tmp_path: Path, sample: Path
) -> None:
    """The DAG keeps each step's extract as a pickle: the store's map (a million entries at
    national scale) must not travel with the snapshot's."""
    engine = _night_one_served(f"sqlite:///{tmp_path}/pickle.sqlite", sample)
    known = known_digests(engine).keys
    extract = read_drop(sample / "night2", feed_known=known)
    assert extract.feed is not None and extract.feed.read_against is known
    again = pickle.loads(pickle.dumps(extract))
    assert again.feed.read_against is None
    assert again.feed.unchanged == extract.feed.unchanged and len(again.feed.unchanged) > 300
    assert [p.key for p in again.feed.persons] == [p.key for p in extract.feed.persons]
    assert again.feed.lines == extract.feed.lines


def test_a_person_deleted_behind_the_stored_map_is_read_again(store_url: str, sample: Path) -> None:
    """The stored map is trusted only while it counts as many persons as the store holds
    open: a row deleted by hand (a database administrator hiding a marker) must not keep its
    line skipped night after night."""
    engine = _night_one_served(store_url, sample)
    second = sample / "night2"
    t = m.FeedPersonRow
    with engine.begin() as conn:
        victim = conn.scalar(sa.select(t.person_key).where(t.valid_to.is_(None)).limit(1))
        conn.execute(sa.delete(t).where(t.person_key == victim))
        from_rows = digests_from_rows(conn, 1)
    known = known_digests(engine)
    assert known.keys == from_rows and victim not in known.keys.values()
    extract = read_drop(second, feed_known=known.keys)
    assert extract.feed is not None and victim in {p.key for p in extract.feed.persons}
    outcome = run_night(
        engine, extract, drop_dir=str(second), fingerprint=fingerprint(second), feed_digests=known
    )
    assert outcome.counts["feed"]["status"] == "read", outcome.counts["feed"]
    with engine.connect() as conn:
        assert victim in digests_from_rows(conn, 2).values()


def test_a_snapshot_too_large_for_one_value_stores_no_map(
    tmp_path: Path, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "MAX_STORED_LINES", 10)  # the sample's 330 persons are "too many"
    engine = open_engine(f"sqlite:///{tmp_path}/large.sqlite")
    first = sample / "night1"
    outcome = run_night(
        engine, read_drop(first), drop_dir=str(first), fingerprint=fingerprint(first)
    )
    assert outcome.counts["feed"]["status"] == "read"
    with engine.connect() as conn:
        assert conn.scalar(sa.select(m.FeedSnapshotRow.line_digests)) is None
        from_rows = digests_from_rows(conn, 1)
    assert len(from_rows) > 300 and known_digests(engine).keys == from_rows


def test_a_person_swapped_behind_the_stored_map_is_read_again(store_url: str, sample: Path) -> None:
    """A database administrator who deletes a kode 6 person's row and adds another keeps the
    open rows' count, not their ids: the map is not trusted and the line is parsed again."""
    engine = _night_one_served(store_url, sample)
    t = m.FeedPersonRow
    with engine.begin() as conn:
        row = conn.execute(sa.select(t).where(t.valid_to.is_(None)).limit(1)).one()
        conn.execute(sa.delete(t).where(t.id == row.id))
        values = {c: getattr(row, c) for c in row._fields if c not in ("id", "person_key")}
        conn.execute(
            sa.insert(t).values({**values, "person_key": "00000000000", "digest": "e" * 32})
        )
    known = known_digests(engine)
    assert row.digest not in known.keys
    second = sample / "night2"
    extract = read_drop(second, feed_known=known.keys)
    assert extract.feed is not None and row.person_key in {p.key for p in extract.feed.persons}


def test_a_row_edited_in_place_is_read_again_within_rows_every_nights(
    store_url: str, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit that keeps a row's id keeps the map's check too; the rows are read every
    ``ROWS_EVERY`` nights even so, and the edited person's line is then parsed again."""
    engine = _night_one_served(store_url, sample)
    t = m.FeedPersonRow
    with engine.begin() as conn:
        key = conn.scalar(sa.select(t.person_key).where(t.valid_to.is_(None)).limit(1))
        conn.execute(sa.update(t).where(t.person_key == key).values(digest="f" * 32))
    assert key in known_digests(engine).keys.values()  # night 1: the map is trusted
    monkeypatch.setattr(feed, "ROWS_EVERY", 1)
    known = known_digests(engine)
    assert known.keys["f" * 32] == key  # the rows, as edited
    extract = read_drop(sample / "night2", feed_known=known.keys)
    assert extract.feed is not None and key in {p.key for p in extract.feed.persons}


def test_a_parsed_line_naming_a_skipped_persons_number_makes_the_file_read_whole(
    tmp_path: Path, sample: Path
) -> None:
    """A second line for an unchanged person (the same number, kode 6) is a duplicate: read
    whole, the later line is quarantined, as it would be without any line skipped."""
    engine = _night_one_served(f"sqlite:///{tmp_path}/dup.sqlite", sample)
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop)
    snapshot = next((drop / "folkeregister").glob("*.jsonl"))
    first = snapshot.read_text(encoding="utf-8").split("\n", 1)[0]
    copy = first.replace('"UGRADERT"', '"STRENGT_FORTROLIG"', 1)
    assert copy != first
    snapshot.write_text(snapshot.read_text(encoding="utf-8") + copy + "\n", encoding="utf-8")
    extract = read_drop(drop, feed_known=known_digests(engine).keys)
    assert extract.feed is not None and extract.feed.unchanged == []  # every line parsed
    reasons = [q.reason for q in extract.quarantine if q.register.value == "folkeregister"]
    assert any("duplicate person" in r for r in reasons), reasons


def test_a_snapshot_written_and_let_go_is_not_compared_again(tmp_path: Path, sample: Path) -> None:
    """Handed the same extract twice, the second night refuses the released snapshot (its
    persons are gone: compared again, every stored person would count as removed)."""
    engine = _night_one_served(f"sqlite:///{tmp_path}/twice.sqlite", sample)
    second = sample / "night2"
    extract = read_drop(second, feed_known=known_digests(engine).keys)
    run_night(engine, extract, drop_dir=str(second), fingerprint=fingerprint(second))
    before = _feed_rows(engine)
    again = run_night(engine, extract, drop_dir=str(second), fingerprint="another")
    assert again.counts["feed"]["status"] == "refused", again.counts["feed"]
    assert _feed_rows(engine) == before
