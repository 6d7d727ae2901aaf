"""On SQLite a night's write never stalls lookups for long (issue 12, item 7): every lookup
writes an audit event, SQLite has one writer, and a night used to hold the write lock for its
whole write (10 s and more at scale, then 503). The night now commits in steps of at most
0.1 s (its rows stay invisible until published).

A lookup that waited for the lock used to miss the night's short gaps between steps (SQLite's
busy wait backs off to 100 ms sleeps) and waited 1.78 s on a loaded CI machine, although no
step held the lock for more than 0.3 s: lookups now try every millisecond and the night
leaves a gap (test_sqlite_lock_fairness). The target is one second, and the test holds it:
beside two busy processes the longest wait measured was 0.25 s (docs/reliability.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.auth import mint
from api.settings import Settings
from personkort.store import open_engine
from tests.api_server import serve

PERSONKORT = str(Path(sys.executable).parent / "personkort")
CLAIMS = {"sub": "Z1", "employer": "stat", "office": "nav-oslo", "roles": ["veileder"]}


@pytest.fixture(scope="module")
def big_drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator import simulate

    out = tmp_path_factory.mktemp("stall")
    simulate(60_000, 5, 1, out)
    return out / "night1"


def test_lookups_during_a_sqlite_night_write_wait_under_a_second(
    big_drop: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    open_engine(store).dispose()  # migrated before the night and the server start
    settings = Settings(
        store_url=store, data_dir=str(tmp_path / "data"), dev_mode=True, lookups_per_minute=100_000
    )
    with serve(create_app(settings)) as url:
        token = mint(settings, CLAIMS)
        headers = {"Authorization": f"Bearer {token}"}
        client = httpx.Client(base_url=url, headers=headers, timeout=30)
        # The night in a process of its own, as in production (in a thread it would share the
        # server's interpreter lock, and that, not SQLite, would set the waits).
        env = {**os.environ, "PERSONKORT_DATA_DIR": settings.data_dir}
        writer = subprocess.Popen(
            [PERSONKORT, "night", str(big_drop), "--store", store],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        waits, statuses = [], set()
        while writer.poll() is None:
            started = time.monotonic()
            response = client.post("/api/v1/personkort", json={"ident": "01010112345"})
            waits.append(time.monotonic() - started)
            statuses.add(response.status_code)
        assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
    assert len(waits) > 20  # the lookups really ran beside the write
    assert statuses <= {404, 422}, statuses  # answered (an unknown number), never 503

    assert max(waits) < 1.0, f"longest lookup {max(waits):.2f} s over {len(waits)} lookups"
