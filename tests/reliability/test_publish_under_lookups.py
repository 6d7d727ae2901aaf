"""Lookups during a publish (issue 12, item 9a): while the next night is staged and published
in a process of its own, every lookup answers, each answer is exactly the person's card of
the old night or of the new one (never a mix of both), no lookup sees the old night after
another has seen the new one, and every lookup is audited exactly once.

The short form of the scenario (bench/reliability_scenarios.py); the full form, longer and at
20,000 persons, is ``python -m bench.reliability``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters import read_drop
from adapters.drop import fingerprint
from api.app import create_app
from api.auth import mint
from api.settings import Settings
from bench.reliability_scenarios import (
    CLAIMS,
    PERSONKORT,
    publish_under_lookups,
    tally,
)
from personkort.nightly import run_night
from personkort.store import open_engine
from tests.api_server import serve
from tests.conftest import read_csv


def test_lookups_during_a_publish_get_the_old_or_the_new_card_each_audited_once(
    store_url: str, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One key ring for this process and the night's (the store's key comes from the data dir).
    data = tmp_path / "data"
    monkeypatch.setenv("PERSONKORT_DATA_DIR", str(data))
    engine = open_engine(store_url)
    night1, night2 = sample / "night1", sample / "night2"
    run_night(engine, read_drop(night1), drop_dir=str(night1), fingerprint=fingerprint(night1))
    persons = read_csv(night1 / "truth" / "persons.csv")
    idents = [p["fnr"] or p["dnr"] for p in persons if p["fnr"] or p["dnr"]]
    settings = Settings(
        store_url=store_url, data_dir=str(data), dev_mode=True, lookups_per_minute=1_000_000
    )
    night = [PERSONKORT, "night", str(night2), "--store", store_url]
    try:
        with serve(create_app(settings)) as url:
            run = publish_under_lookups(
                url, mint(settings, CLAIMS), idents, night, dict(os.environ), rate=120
            )
        audit = tally(engine, run.trace_ids())
    finally:
        engine.dispose()

    assert run.night_returncode == 0, run.night_stderr[-2000:]
    during = [a for a in run.answers if run.night_began <= a.sent <= run.night_ended]
    assert len(during) >= 20, "the lookups ran beside the night"
    statuses = {a.status for a in run.answers}
    assert statuses <= {200, 403, 404}, f"answers: {run.kinds}"  # never a 5xx, never refused
    assert run.content_changed >= 10, "the nights differ in more than the night's number"
    assert not run.mixed, [(a.ident, a.body[:300]) for a in run.mixed[:3]]
    assert run.kinds["old"] >= 1 and run.kinds["new"] >= 1, run.kinds
    assert not run.old_after_new, "an answer from the old night after one from the new"
    # Every lookup this run made (the checks before and after included) has exactly one
    # lookup event, and the log holds no other.
    assert audit.lost == 0 and audit.doubled == 0, audit.line()
    assert audit.events == audit.answered == len(run.trace_ids()), audit.line()
    assert audit.events_unaccounted == 0, audit.line()
