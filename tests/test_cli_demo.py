"""``personkort demo`` (what ``make run`` runs), without the server: simulate, two nights, links."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import read_csv

PERSONKORT = str(Path(sys.executable).parent / "personkort")


def test_demo_runs_two_nights_into_the_embedded_store(tmp_path: Path) -> None:
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
    assert result.stderr.count("published: night") == 2
    assert (tmp_path / "demo" / "personkort.sqlite").exists()
    links = read_csv(tmp_path / "demo" / "links.csv")
    assert links and set(links[0]) == {"register", "source_key", "person_id"}
