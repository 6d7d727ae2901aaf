"""The database restarted under load (issue 12, item 9b): a private PostgreSQL cluster (initdb
and pg_ctl; never the shared server) is stopped under a steady load of lookups, left down two
seconds and started again. While it is down every lookup answers 503 (problem+json) within
the store timeout, and readiness says not ready; after it, lookups answer 200 again within a
bounded time from the same API process, no card ever left without its audit event, and the
audit chain verifies.

The short form of the scenario (bench/reliability_scenarios.py); the full form, with several
restarts (clean and crash-like) at 20,000 persons, is ``python -m bench.reliability``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from api.app import create_app
from api.auth import mint
from api.settings import Settings
from bench.reliability_scenarios import (
    CLAIMS,
    PROBLEM_JSON,
    ClusterUnavailable,
    PrivateCluster,
    restart_under_lookups,
    tally,
    verify_audit,
)
from personkort.nightly import run_night
from personkort.store import open_engine
from tests.api_server import serve
from tests.conftest import read_csv

pytestmark = pytest.mark.postgres
STORE_TIMEOUT = 2.0
ELEVEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{11}(?![0-9])")
RECOVERY = 10.0  # seconds from the server's start to the first 200 again


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL cluster of this test's own: skipped where none can be made, failed instead
    under ``PERSONKORT_REQUIRE_PG=1`` (as tests/conftest.py does for the shared server)."""
    try:
        made = PrivateCluster()
    except ClusterUnavailable as exc:
        if os.environ.get("PERSONKORT_REQUIRE_PG") == "1":
            pytest.fail(f"a private PostgreSQL cluster cannot be made: {exc}")
        pytest.skip(f"a private PostgreSQL cluster cannot be made: {exc}")
    try:
        yield made
    finally:
        made.close()


def test_lookups_answer_503_while_the_database_restarts_and_recover_on_their_own(
    cluster: PrivateCluster,
    sample: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("PERSONKORT_DATA_DIR", str(data))
    store = cluster.url()
    direct = open_engine(store)
    drop = sample / "night1"
    run_night(direct, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    direct.dispose()
    persons = read_csv(drop / "truth" / "persons.csv")
    idents = [p["fnr"] or p["dnr"] for p in persons if p["fnr"] or p["dnr"]]
    settings = Settings(
        store_url=store,
        data_dir=str(data),
        dev_mode=True,
        lookups_per_minute=1_000_000,
        store_timeout_seconds=STORE_TIMEOUT,
    )
    caplog.set_level(logging.WARNING)
    with serve(create_app(settings)) as url:
        run = restart_under_lookups(
            url, mint(settings, CLAIMS), idents, cluster, rate=60, down_seconds=2.0
        )
    after = sa.create_engine(store)
    try:
        audit = tally(after, run.trace_ids())
        verified, events, problem = verify_audit(after, str(data))
    finally:
        after.dispose()

    (outage,) = run.outages
    statuses = {a.status for a in run.answers}
    assert statuses <= {200, 403, 404, 503}, statuses  # no 500, no dropped connection
    down = run.down()
    assert len(down) >= 40, f"{len(down)} lookups while the database was down"
    assert {a.status for a in down} == {503}, sorted({a.status for a in down})
    assert {a.content_type for a in down} == {PROBLEM_JSON}
    assert {a.json()["code"] for a in down} <= {
        "lager_utilgjengelig",
        "revisjonslogg_utilgjengelig",
    }
    slowest = max(a.service for a in down)
    assert slowest < STORE_TIMEOUT, f"a 503 took {slowest:.2f} s"
    # Back on their own, without restarting the API.
    assert outage.recovered is not None, cluster.log_tail()
    assert outage.recovered - outage.started < RECOVERY
    settled = [a for a in run.answers if a.sent > outage.recovered + 1.0]
    assert len(settled) >= 30
    assert {a.status for a in settled} <= {200, 403, 404}, sorted({a.status for a in settled})
    # Readiness: not ready while down, ready after.
    ready_down = [s for t, s in run.ready if outage.down[0] <= t < outage.down[1] - 0.5]
    assert ready_down and set(ready_down) == {503}, ready_down
    ready_after = [s for t, s in run.ready if t > outage.recovered + 1.0]
    assert ready_after and set(ready_after) == {200}, ready_after
    # Never a card without its event; the chain verifies across the restart.
    assert audit.ok > 0 and audit.lost == 0 and audit.doubled == 0, audit.line()
    assert audit.events_for_ok == audit.ok, audit.line()
    assert verified, f"audit verify: {problem} ({events} events)"
    # The outage and the recovery are in the log (the report's outage of 595 503s logged
    # nothing), each once, and the log names no person.
    logged = caplog.text
    assert logged.count("store unavailable:") == 1, logged[-2000:]
    assert logged.count("store available again") == 1, logged[-2000:]
    recovered = [r.getMessage() for r in caplog.records if r.getMessage().startswith("recovered:")]
    assert len(recovered) == 1 and "unavailable (503)" in recovered[0], recovered
    assert not ELEVEN_DIGITS.search(logged)
