"""A night whose store runs out of space: a clear message and exit code, never a traceback;
yesterday's cards still served; the next night, with space again, publishes as it would have.

The disk is made full the way SQLite sees a full disk: ``PRAGMA max_page_count`` caps the
database file, and a write past it fails with SQLITE_FULL ("database or disk is full")."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from personkort import store
from personkort.store import open_engine, queries


def _capped(url: str, spare_pages: int) -> sa.Engine:
    """An engine on the store whose connections may grow it by ``spare_pages`` pages only."""
    engine = open_engine(url)
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    cap = pages + spare_pages

    @sa.event.listens_for(engine, "connect")
    def _cap(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute(f"PRAGMA max_page_count = {cap}")

    engine.dispose()  # every connection from now on is capped
    return engine


def test_a_disk_full_night_says_so_and_keeps_the_served_cards(
    tmp_path: Path, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite"
    runner = CliRunner()
    first = runner.invoke(app, ["night", str(sample / "night1"), "--store", url])
    assert first.exit_code == 0, first.output
    served = queries.served_night(open_engine(url))
    capped = _capped(url, spare_pages=40)
    monkeypatch.setattr(store, "open_engine", lambda *a, **k: capped)
    full = runner.invoke(app, ["night", str(sample / "night2"), "--store", url])
    assert full.exit_code == 4, full.output
    assert "the disk is full" in full.output
    assert "Traceback" not in full.output
    assert isinstance(full.exception, SystemExit)  # a clean exit: no exception escaped
    assert "yesterday's cards are still served" in full.output
    monkeypatch.undo()
    engine = open_engine(url)
    assert queries.served_night(engine) == served  # night 1 still served
    assert queries.card_for_ident(engine, "27905340064") is not None
    again = runner.invoke(app, ["night", str(sample / "night2"), "--store", url])
    assert again.exit_code == 0, again.output
    assert queries.served_night(engine) != served
