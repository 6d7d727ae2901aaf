"""``personkort read``: the real console script on the shared sample."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import read_csv

PERSONKORT = str(Path(sys.executable).parent / "personkort")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PERSONKORT, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_read_prints_counts_and_writes_the_quarantine(night: Path, tmp_path: Path) -> None:
    quarantine = tmp_path / "quarantine.csv"
    findings = tmp_path / "findings.csv"
    result = run("read", str(night), "--quarantine", str(quarantine), "--findings", str(findings))
    assert result.returncode == 0, result.stderr
    for header in ("read", "accepted", "quarantined", "findings"):
        assert header in result.stdout
    assert "PERSON" in result.stdout and "sosio_5001" in result.stdout
    rows = read_csv(quarantine)
    assert list(rows[0]) == ["register", "location", "reason"]
    written = {(r["register"], r["location"]) for r in rows}
    bad = {(r["register"], r["location"]) for r in read_csv(night / "truth" / "bad.csv")}
    assert bad <= written
    assert all(r["reason"] for r in rows)
    assert read_csv(findings)


def test_read_refuses_a_cut_short_file_loudly(sample: Path, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    shutil.copytree(sample / "night1", drop)
    (info,) = (drop / "infotrygd").glob("*.dat")
    info.chmod(0o644)
    info.write_bytes(info.read_bytes()[:5000])
    result = run("read", str(drop))
    assert result.returncode == 1
    assert "refused" in result.stderr and info.name in result.stderr
    assert "trailer" in result.stderr


def test_read_of_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = run("read", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_a_served_drop_is_recognised_before_it_is_read(sample: Path, tmp_path: Path) -> None:
    import sqlalchemy as sa

    from personkort.store import models as m
    from personkort.store import open_engine

    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    first = run("night", str(sample / "night1"), "--store", store)
    assert first.returncode == 0, first.stderr
    again = run("night", str(sample / "night1"), "--store", store)
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stdout + again.stderr
    assert "accepted" in first.stdout and "accepted" not in again.stdout  # nothing was read
    with open_engine(store).connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(m.Night)) == 1
