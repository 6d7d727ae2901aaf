"""A writer that waits for SQLite's write lock gets it in the gaps a night leaves.

SQLite's own busy wait backs off to sleeps of 100 ms; a night that holds the lock for up to
0.1 s, commits and takes it again a few milliseconds later starved such a waiter for well
over a second (the CI failure of test_sqlite_night_stall, 1.78 s). ``begin_immediate``
tries every millisecond and the night leaves ``SQLITE_GAP`` between its steps.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from personkort.audit.log import begin_immediate
from personkort.store.nights import BREATHE, SQLITE_GAP


def _night_like(url: str, stop: threading.Event, started: threading.Event) -> None:
    """Hold the write lock for BREATHE, commit, leave SQLITE_GAP, again, as a night does."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        while not stop.is_set():
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.exec_driver_sql("INSERT INTO t (v) VALUES ('night')")
            started.set()
            time.sleep(BREATHE)
            conn.commit()
            time.sleep(SQLITE_GAP)
    engine.dispose()


def test_a_waiting_writer_gets_the_lock_within_a_step_or_two(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lock.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("CREATE TABLE t (v TEXT)")
    stop, started = threading.Event(), threading.Event()
    night = threading.Thread(target=_night_like, args=(url, stop, started), daemon=True)
    night.start()
    assert started.wait(5)
    waits = []
    try:
        for _ in range(15):
            with engine.connect() as conn:
                begun = time.monotonic()
                begin_immediate(conn)
                waits.append(time.monotonic() - begun)
                conn.exec_driver_sql("INSERT INTO t (v) VALUES ('lookup')")
                conn.commit()
            time.sleep(0.013)  # land at different points of the night's step
    finally:
        stop.set()
        night.join(5)
    # one step and the gap is the most a waiter should wait; SQLite's backoff took seconds
    assert max(waits) < 3 * BREATHE, [round(w, 3) for w in waits]


def test_the_wait_is_bounded_and_then_the_lock_error_is_raised(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'held.sqlite'}"
    engine = sa.create_engine(url)
    with engine.connect() as holder, engine.connect() as waiter:
        holder.exec_driver_sql("BEGIN IMMEDIATE")
        begun = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            begin_immediate(waiter, wait=0.2)
        assert 0.2 <= time.monotonic() - begun < 1.0
        holder.rollback()
        begin_immediate(waiter, wait=0.2)  # and the connection is usable once the lock is free
        busy = waiter.connection.dbapi_connection.execute("PRAGMA busy_timeout").fetchone()
        assert busy == (5000,)  # SQLite's own wait is back for every other statement
        waiter.rollback()
    engine.dispose()
