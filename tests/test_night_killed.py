"""A night killed midway: the previous night's cards stay served, and a rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from personkort.store import models as m
from personkort.store import open_engine, queries

PERSONKORT = str(Path(sys.executable).parent / "personkort")


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator import simulate

    out = tmp_path_factory.mktemp("killed")
    simulate(40_000, 21, 2, out)
    return out


def _night(drop: Path, store: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PERSONKORT, "night", str(drop), "--store", store],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _night_status(engine: sa.Engine, night: int) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(sa.select(m.Night.status).where(m.Night.id == night))


def test_killed_night_leaves_the_served_cards_and_a_rerun_completes(
    nights: Path, store_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PERSONKORT_DATA_DIR": str(tmp_path / "data")}
    first = _night(nights / "night1", store_url, env)
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    engine = open_engine(store_url)
    served = sorted(queries.links(engine))
    assert served

    second = _night(nights / "night2", store_url, env)
    deadline = time.monotonic() + 120
    while _night_status(engine, 2) != "running":  # reading done, now reconciling and writing
        assert second.poll() is None, "the night finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # At once: an incremental night at this size reconciles and writes in about a second.
    second.send_signal(signal.SIGKILL)
    assert second.wait(timeout=30) == -signal.SIGKILL

    assert queries.served_night(engine) == 1
    assert sorted(queries.links(engine)) == served

    rerun = _night(nights / "night2", store_url, env)
    assert rerun.wait(timeout=300) == 0
    statuses = [n["status"] for n in queries.nights(engine)]
    assert statuses == ["published", "failed", "published"]
    assert queries.served_night(engine) == 3
    assert sorted(queries.links(engine)) != served
