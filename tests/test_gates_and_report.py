"""Quality gates stop a bad night before it is published; the run report names what a steward
acts on. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters import read_drop
from adapters.drop import fingerprint
from personkort.gates import GateConfig
from personkort.nightly import run_night
from personkort.store import open_engine, queries

PERSONKORT = str(Path(sys.executable).parent / "personkort")


def _night(engine, drop: Path, gates: GateConfig | None = None):
    return run_night(
        engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop), gates=gates
    )


def test_quarantine_over_the_threshold_stops_the_night(sample: Path, store_url: str) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    served = sorted(queries.links(engine))
    outcome = _night(engine, sample / "night2", GateConfig(max_quarantine_share=0.02))
    assert outcome.status == "refused"
    assert outcome.report and outcome.report["gates"][0]["code"] == "for_mye_karantene"
    assert "infotrygd" in outcome.message and "yesterday's cards still served" in outcome.message
    assert sorted(queries.links(engine)) == served
    night = queries.nights(engine)[-1]
    assert night["status"] == "refused" and night["report"]["gates"]


def test_a_missing_extract_stops_the_night(sample: Path, store_url: str, tmp_path: Path) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop)
    for path in (drop / "kommune").iterdir():
        path.chmod(0o644)
        path.unlink()
    outcome = _night(engine, drop)
    assert outcome.status == "refused"
    codes = {g["code"] for g in outcome.report["gates"]}  # type: ignore[index]
    assert {"kilde_avvist", "fall_i_poster"} <= codes
    assert queries.served_night(engine) == 1


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator import CorruptionModel, simulate

    out = tmp_path_factory.mktemp("report")
    # More protected people, and Infotrygd always behind Arena, so disagreements occur.
    model = CorruptionModel(fortrolig=0.02, infotrygd_spesreg_lag=1.0)
    simulate(8_000, 5, 1, out, model=model)
    return out / "night1"


def test_report_finds_double_payments_and_disagreeing_markers(
    simulated: Path, store_url: str
) -> None:
    engine = open_engine(store_url)
    outcome = _night(engine, simulated)
    assert outcome.status == "published"
    findings = outcome.report["findings"]  # type: ignore[index]
    payments = findings["possible_double_payments"]
    assert payments["count"] > 0
    cards = {card for _, _, card in queries.links(engine)}
    assert {p["card_id"] for p in payments["listed"]} <= cards
    assert all(p["municipal"] and p["infotrygd"].startswith("line:") for p in payments["listed"])
    assert findings["protection_disagreements"]["count"] > 0
    assert findings["invalid_identity_numbers"]["count"] > 0
    text = json.dumps(outcome.report)
    idents = {i for i in (p.ident for p in read_drop(simulated).persons) if i}
    assert not any(i in text for i in idents), "the report must not carry identity numbers"
    assert queries.nights(engine)[-1]["report"]["findings"]["possible_double_payments"]["count"]


def test_night_writes_the_report_file(sample: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    report = tmp_path / "report.json"
    done = subprocess.run(
        [PERSONKORT, "night", str(sample / "night1"), "--store", store, "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    written = json.loads(report.read_text())
    assert written["counts"]["cards"] > 0 and written["gates"] == []
