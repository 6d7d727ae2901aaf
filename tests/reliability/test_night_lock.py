"""One night at a time per store (issue 12, item 1): two nights started together, the DAG's
separate stage and publish steps, a crashed night's lease, and a pointer that only moves on.

Each scenario failed on the main before the lease: both nights "published", records got two
current rows, and night 1's content was served labelled night 2.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from personkort.nightly import publish_staged, run_night, stage_night
from personkort.store import NightBusy, open_engine
from personkort.store import models as m
from personkort.store.nights import published_night


def _stage(engine: sa.Engine, drop: Path):  # type: ignore[no-untyped-def]
    return stage_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))


def _two_current_rows(engine: sa.Engine) -> int:
    """Source records with more than one current row (the corruption two nights made)."""
    with engine.connect() as conn:
        return conn.scalar(
            sa.select(sa.func.count()).select_from(
                sa.select(m.SourceRecord.source_key)
                .where(m.SourceRecord.valid_to.is_(None))
                .group_by(m.SourceRecord.register, m.SourceRecord.source_key)
                .having(sa.func.count() > 1)
                .subquery()
            )
        )


def _statuses(engine: sa.Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {i: s for i, s in conn.execute(sa.select(m.Night.id, m.Night.status))}


def test_a_second_night_refuses_while_one_is_staged_and_the_staged_one_publishes(
    sample: Path, store_url: str
) -> None:
    engine = open_engine(store_url)
    staged = _stage(engine, sample / "night1")
    assert staged.status == "staged"
    with pytest.raises(NightBusy, match="holds the store"):
        _stage(engine, sample / "night2")  # the DAG's "a whole night B" between stage and publish
    published = publish_staged(engine, staged)
    assert published.status == "published"
    with engine.connect() as conn:
        assert published_night(conn) == staged.night
    assert _two_current_rows(engine) == 0
    # Once published, the lease is free: the next night runs.
    drop = sample / "night2"
    nxt = run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert nxt.status == "published"


def test_a_staged_night_whose_lease_was_taken_over_is_not_published(
    sample: Path, store_url: str
) -> None:
    engine = open_engine(store_url)
    first = _stage(engine, sample / "night1")
    with engine.begin() as conn:  # its publish step never came: the lease runs out
        conn.execute(
            sa.update(m.NightLease).values(expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        )
    drop = sample / "night2"
    second = run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert second.status == "published"
    with pytest.raises(NightBusy, match="no longer holds the store"):
        publish_staged(engine, first)
    with engine.connect() as conn:
        assert published_night(conn) == second.night  # never back to the older night
    assert _statuses(engine)[first.night] == "failed"
    assert _two_current_rows(engine) == 0


def test_a_night_killed_on_this_host_frees_the_store_at_once(sample: Path, store_url: str) -> None:
    engine = open_engine(store_url)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    import socket

    with engine.begin() as conn:
        night = conn.execute(
            sa.insert(m.Night).returning(m.Night.id),
            {
                "drop_dir": "x",
                "fingerprint": "x",
                "status": "running",
                "started_at": dt.datetime.now(dt.UTC),
            },
        ).scalar_one()
        conn.execute(
            sa.update(m.NightLease).values(
                night_id=night,
                holder=f"{socket.gethostname()}:{dead}",
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
            )
        )
    drop = sample / "night1"
    rerun = run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert rerun.status == "published"
    assert _statuses(engine)[night] == "failed"


def test_a_live_holder_on_another_host_is_waited_for(sample: Path, store_url: str) -> None:
    engine = open_engine(store_url)
    with engine.begin() as conn:
        conn.execute(
            sa.update(m.NightLease).values(
                night_id=99,
                holder="another-host:1",
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
            )
        )
    with pytest.raises(NightBusy, match="another-host"):
        _stage(engine, sample / "night1")


def _night_in_process(store_url: str, drop: str, data_dir: str, start, results) -> None:  # type: ignore[no-untyped-def]
    """Read the drop, wait for the other process, then run the night at the same moment."""
    os.environ["PERSONKORT_DATA_DIR"] = data_dir
    engine = open_engine(store_url)
    extract = read_drop(Path(drop))
    start.wait()
    try:
        out = run_night(engine, extract, drop_dir=drop, fingerprint=fingerprint(Path(drop)))
        results.put(out.status)
    except NightBusy:
        results.put("busy")
    finally:
        engine.dispose()


def test_two_nights_started_together_give_one_winner(
    sample: Path, store_url: str, tmp_path: Path
) -> None:
    open_engine(store_url).dispose()  # migrated before the race
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    workers = [
        ctx.Process(
            target=_night_in_process,
            args=(store_url, str(sample / d), str(tmp_path / "data"), start, results),
        )
        for d in ("night1", "night2")
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    assert outcomes == ["busy", "published"], outcomes
    engine = open_engine(store_url)
    assert _two_current_rows(engine) == 0
    assert list(_statuses(engine).values()).count("published") == 1
