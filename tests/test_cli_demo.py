"""``personkort demo`` (what ``make run`` runs), without the server: simulate, two nights, links."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import read_csv

PERSONKORT = str(Path(sys.executable).parent / "personkort")


def _demo(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PERSONKORT_STORE_URL"}
    env["PERSONKORT_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [PERSONKORT, "demo", "--persons", "800", "--out", str(tmp_path / "demo"), "--no-serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_demo_runs_two_nights_into_the_embedded_store(tmp_path: Path) -> None:
    result = _demo(tmp_path)
    assert result.stderr.count("published: night") == 2
    assert (tmp_path / "demo" / "personkort.sqlite").exists()
    links = read_csv(tmp_path / "demo" / "links.csv")
    assert links and set(links[0]) == {"register", "source_key", "person_id"}


def test_demo_run_again_serves_what_it_served_without_republishing(tmp_path: Path) -> None:
    _demo(tmp_path)
    again = _demo(tmp_path)  # issue 12: nights 1 and 2 came back as nights 3 and 4
    assert "published: night" not in again.stderr
    assert "night2 is served already" in again.stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'demo' / 'personkort.sqlite'}")
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT max(id) FROM night")) == 2
        assert conn.scalar(sa.text("SELECT night_id FROM publication")) == 2
