"""A bad Folkeregister snapshot never opens the relatives gate: it is refused alone and the
last one stays in force, while the night's cards publish."""

from __future__ import annotations

import shutil
from pathlib import Path

from adapters import read_drop
from adapters.drop import fingerprint
from personkort.nightly import run_night
from personkort.store import open_engine
from personkort.store.feed import canonical, snapshot_in_force


def test_a_cut_short_snapshot_is_refused_and_the_last_one_kept(
    store_url: str, tmp_path: Path, sample: Path
) -> None:
    engine = open_engine(store_url)
    first = sample / "night1"
    run_night(engine, read_drop(first), drop_dir=str(first), fingerprint=fingerprint(first))
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop)
    snapshot = next((drop / "folkeregister").glob("*.jsonl"))
    lines = snapshot.read_text(encoding="utf-8").splitlines(keepends=True)
    snapshot.write_text("".join(lines[:100]), encoding="utf-8")  # cut short, 100 of 331
    outcome = run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert outcome.status == "published", outcome.message
    feed = outcome.counts["feed"]
    assert feed["status"] == "refused" and "against 330" in feed["reason"]
    with engine.connect() as conn:
        served = outcome.night
        assert served is not None
        in_force = snapshot_in_force(conn, served)
        assert in_force is not None and in_force[2] == "folkeregister_20261120.jsonl"
        last_line_person = lines[-1].split('"identifikasjonsnummer": "', 1)[1][:11]
        assert canonical(conn, served, [last_line_person])  # still known from night 1
