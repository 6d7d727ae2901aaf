"""Per-source completeness gates (issue 12, item 2): a source that delivered last night and is
missing, empty, header-only or far smaller tonight stops the night, naming the source, unless a
steward accepted it for that night (audited, shown in the night's counts).

On the main before, a drop without flyt_0301 published green: 258 records vanished and 123
cards were retired.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from personkort.audit.models import AuditEventRow
from personkort.gates import GateConfig, SourceAcceptance
from personkort.nightly import NightOutcome, run_night
from personkort.store import open_engine, queries


def _night(engine: sa.Engine, drop: Path, gates: GateConfig | None = None) -> NightOutcome:
    return run_night(
        engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop), gates=gates
    )


def _night2_with(sample: Path, tmp_path: Path, change: str) -> Path:
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop, ignore=shutil.ignore_patterns("truth"))
    flyt = next((drop / "kommune").glob("flyt_0301_*.jsonl"))
    sosio = next((drop / "kommune").glob("sosio_5001_*.csv"))
    if change == "missing":
        flyt.unlink()
    elif change == "empty":
        flyt.write_bytes(b"")
    elif change == "header-only":
        sosio.write_bytes(sosio.read_bytes().splitlines(keepends=True)[0])
    elif change == "shrunk":
        lines = flyt.read_bytes().splitlines(keepends=True)
        flyt.write_bytes(b"".join(lines[:10]))
    return drop


@pytest.mark.parametrize(
    ("change", "code", "source"),
    [
        ("missing", "kilde_mangler", "kommune:flyt_0301"),
        ("empty", "kilde_tom", "kommune:flyt_0301"),
        ("header-only", "kilde_tom", "kommune:sosio_5001"),
        ("shrunk", "kilde_krympet", "kommune:flyt_0301"),
    ],
)
def test_a_source_gone_missing_stops_the_night_naming_it(
    sample: Path, store_url: str, tmp_path: Path, change: str, code: str, source: str
) -> None:
    engine = open_engine(store_url)
    assert _night(engine, sample / "night1").status == "published"
    served = sorted(queries.links(engine))
    outcome = _night(engine, _night2_with(sample, tmp_path, change))
    assert outcome.status == "refused", outcome.message
    gates = outcome.report["gates"] if outcome.report else []
    assert {"code": code, "source": source} in [
        {"code": g["code"], "source": g.get("source")} for g in gates
    ]
    assert source in outcome.message
    assert sorted(queries.links(engine)) == served  # yesterday's cards still served


def test_a_steward_accepts_a_missing_source_for_one_night_audited(
    sample: Path, store_url: str, tmp_path: Path
) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    accepted = SourceAcceptance(
        frozenset({"kommune:flyt_0301"}), "Z200001", "Oslo kommune varslet nedetid"
    )
    outcome = _night(
        engine, _night2_with(sample, tmp_path, "missing"), GateConfig(accepted=accepted)
    )
    assert outcome.status == "published", outcome.message
    assert outcome.counts["sources_accepted"] == [
        {
            "code": "kilde_mangler",
            "message": outcome.counts["sources_accepted"][0]["message"],
            "source": "kommune:flyt_0301",
            "steward": "Z200001",
            "reason": "Oslo kommune varslet nedetid",
        }
    ]
    with engine.connect() as conn:
        kinds = [
            (kind, who)
            for kind, who in conn.execute(
                sa.select(AuditEventRow.kind, AuditEventRow.caseworker).where(
                    AuditEventRow.kind == "source_accepted"
                )
            )
        ]
    assert kinds == [("source_accepted", "Z200001")]


def test_accepting_needs_a_steward_and_a_reason() -> None:
    with pytest.raises(ValueError, match="steward"):
        SourceAcceptance(frozenset({"kommune:flyt_0301"}), "", "")
