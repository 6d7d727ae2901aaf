"""The Folkeregister's events inbox (pipeline.inbox.read_inbox and ``personkort
folkeregister-innboks``), on SQLite and PostgreSQL, on a copy of the shared sample events."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from personkort.store import open_engine
from pipeline.inbox import read_inbox

FIRST = "hendelser_20261120T100000.jsonl"
SECOND = "hendelser_20261120T110000.jsonl"
TOTALS = ("received", "stored", "duplicates", "quarantined")


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Development keys of this test's own (the audit and store keys)."""
    monkeypatch.setenv("PERSONKORT_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def inbox(sample: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in (FIRST, SECOND):
        shutil.copy(sample / "hendelser" / name, folder / name)
    return folder


def scalar(store_url: str, sql: str) -> object:
    engine = open_engine(store_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def conserved(summary: dict) -> None:
    """Every event is accounted for, per file and in total."""
    for item in [*summary["files"], summary]:
        assert item["received"] == item["stored"] + item["duplicates"] + item["quarantined"]
    for key in TOTALS:
        assert summary[key] == sum(f[key] for f in summary["files"])


def test_the_sample_inbox_is_stored_once_and_moved(store_url: str, inbox: Path) -> None:
    summary = read_inbox(store_url, str(inbox))
    conserved(summary)
    assert summary["status"] == "read" and summary["errors"] == []
    assert [f["file"] for f in summary["files"]] == [FIRST, SECOND]  # name order
    assert (summary["received"], summary["stored"], summary["duplicates"]) == (7, 6, 1)
    assert all(f["moved"] for f in summary["files"])
    assert sorted(p.name for p in (inbox / "lest").iterdir()) == [FIRST, SECOND]
    assert not list(inbox.glob("hendelser_*.jsonl"))
    assert scalar(store_url, "SELECT count(DISTINCT event_id) FROM feed_event") == 6
    assert scalar(store_url, "SELECT count(*) FROM feed_event") == 6
    assert scalar(store_url, "SELECT inbox_error FROM feed_state") is None
    assert scalar(store_url, "SELECT inbox_read_at FROM feed_state") is not None
    audited = scalar(store_url, "SELECT count(*) FROM audit_event WHERE kind = 'feed_events'")
    assert audited == 2  # one per file (each under 50 events)


def test_a_second_run_and_a_redelivery_store_nothing_new(store_url: str, inbox: Path) -> None:
    read_inbox(store_url, str(inbox))
    again = read_inbox(store_url, str(inbox))
    assert again["status"] == "read" and again["files"] == [] and again["stored"] == 0
    # The same file delivered again (at least once delivery): all duplicates, none stored.
    shutil.copy(inbox / "lest" / FIRST, inbox / FIRST)
    redelivered = read_inbox(store_url, str(inbox))
    conserved(redelivered)
    assert (redelivered["received"], redelivered["stored"], redelivered["duplicates"]) == (3, 0, 3)
    assert sorted(p.name for p in (inbox / "lest").iterdir()) == [FIRST, f"{FIRST}.1", SECOND]
    assert scalar(store_url, "SELECT count(*) FROM feed_event") == 6


def test_a_bad_line_is_quarantined_and_the_rest_stored(store_url: str, inbox: Path) -> None:
    path = inbox / SECOND
    lines = path.read_bytes().splitlines()
    lines.insert(1, b'{"hendelseId": "cut-short", "opprettet": "2026-11-20T1')
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = read_inbox(store_url, str(inbox))
    conserved(summary)
    second = summary["files"][1]
    assert (second["received"], second["stored"], second["quarantined"]) == (5, 3, 1)
    assert scalar(store_url, "SELECT count(*) FROM feed_event") == 6
    location = scalar(store_url, "SELECT location FROM feed_event_quarantine")
    assert location == f"{SECOND}:line:2"
    body = scalar(
        store_url,
        f"SELECT body FROM audit_event WHERE kind = 'feed_events' AND body LIKE '%{SECOND}%'",
    )
    audited = json.loads(str(body))["data"]
    assert audited["quarantined_count"] == 1 and audited["received"] == 5
    assert audited["quarantined"][0]["location"] == f"{SECOND}:line:2"


def test_an_unreadable_inbox_is_recorded_without_a_traceback(
    store_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-inbox"
    summary = read_inbox(store_url, str(missing))
    assert summary["status"] == "unreadable" and summary["files"] == []
    (error,) = summary["errors"]
    assert str(missing) in error and "Traceback" not in error
    recorded = scalar(store_url, "SELECT inbox_error FROM feed_state")
    assert recorded == error


def test_an_unreadable_file_is_left_in_place_and_the_rest_read(store_url: str, inbox: Path) -> None:
    # Gone between the listing and the reading (a dangling link: chmod does not stop root).
    (inbox / FIRST).unlink()
    (inbox / FIRST).symlink_to(inbox / "gone.jsonl")
    summary = read_inbox(store_url, str(inbox))
    conserved(summary)
    assert summary["status"] == "partly_read" and summary["left_in_place"] == [FIRST]
    assert [f["file"] for f in summary["files"]] == [SECOND]
    assert (inbox / FIRST).is_symlink() and (inbox / "lest" / SECOND).exists()
    recorded = str(scalar(store_url, "SELECT inbox_error FROM feed_state"))
    assert FIRST in recorded and "left in the inbox" in recorded
    assert "Traceback" not in recorded


def test_a_failed_move_is_reported_and_the_events_still_stored_once(
    store_url: str, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Path, target: Path) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "rename", refuse)
    summary = read_inbox(store_url, str(inbox))
    assert summary["status"] == "read" and summary["stored"] == 6
    assert not any(f["moved"] for f in summary["files"])
    assert len(summary["errors"]) == 2 and "hendelseId" in summary["errors"][0]
    again = read_inbox(store_url, str(inbox))  # still in the inbox: read again, nothing new
    assert again["stored"] == 0 and again["duplicates"] == 7
    assert scalar(store_url, "SELECT count(*) FROM feed_event") == 6


def test_the_cli_reads_the_inbox(tmp_path: Path, inbox: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    done = CliRunner().invoke(app, ["folkeregister-innboks", str(inbox), "--store", store])
    assert done.exit_code == 0, done.output
    assert "received 7, stored 6, duplicates 1, quarantined 0" in done.output
    failed = CliRunner().invoke(
        app, ["folkeregister-innboks", str(tmp_path / "nowhere"), "--store", store]
    )
    assert failed.exit_code == 1
    assert "cannot be read" in failed.output and "Traceback" not in failed.output
