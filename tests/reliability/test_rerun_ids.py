"""Card ids after an interrupted night equal an uninterrupted night's (issue 12, item 6).

On the main before, ids came from the night's row id, which the interrupted night used up: a
rerun gave 62 cards ids other than an uninterrupted run's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from personkort.nightly import run_night, stage_night
from personkort.store import models as m
from personkort.store import open_engine, queries


def _run(engine: sa.Engine, drop: Path) -> str:
    return run_night(
        engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop)
    ).status


def test_ids_after_an_interrupted_night_equal_an_uninterrupted_nights(
    sample: Path, store_url: str, tmp_path: Path
) -> None:
    straight = open_engine(f"sqlite:///{tmp_path / 'straight.sqlite'}")
    assert _run(straight, sample / "night1") == "published"
    assert _run(straight, sample / "night2") == "published"

    interrupted = open_engine(store_url)
    assert _run(interrupted, sample / "night1") == "published"
    drop = sample / "night2"
    staged = stage_night(
        interrupted, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop)
    )
    assert staged.status == "staged"  # ... and its publish step never runs
    with interrupted.begin() as conn:
        conn.execute(
            sa.update(m.NightLease).values(expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        )
    assert _run(interrupted, drop) == "published"
    with interrupted.connect() as conn:
        assert conn.scalar(sa.select(sa.func.max(m.Night.id))) == 3  # the rerun is night 3
    assert sorted(queries.links(interrupted)) == sorted(queries.links(straight))
    new_ids = {card for _, _, card in queries.links(straight)}
    assert new_ids == {card for _, _, card in queries.links(interrupted)}
