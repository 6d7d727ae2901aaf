"""The Folkeregister's events inbox: every file delivered since the last read, stored once.

Each ``hendelser_YYYYMMDDTHHMMSS.jsonl`` is read in name order (the names are timestamps, so
older deliveries first), handed to ``FeedEventService.receive`` and moved to ``<inbox>/lest/``.
Events are kept once by ``hendelseId``: a file read twice (a move that failed, two readers at
once) stores nothing new. A file that cannot be read at all is left where it is, and the inbox
is marked unreadable, so the cards say the day's events may be missing (nothing fails open).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from adapters.boundary import RefusedSource
from adapters.folkeregister import INBOX_FILE, EventBatch, read_inbox_file
from personkort.audit import AuditLog, audit_keys
from personkort.policy.engine import Caseworker
from personkort.records import Register
from personkort.services.folkeregister import FeedEventService
from personkort.store import open_engine

READ_FOLDER = "lest"
FILE_GLOB = "hendelser_*.jsonl"
# The inbox reader is a service, not a person: its role is the one the API's feed token has.
INBOX_READER = Caseworker(
    sub="folkeregister-innboks",
    employer="stat",
    office="folkeregister",
    roles=frozenset({"folkeregister"}),
)


def read_inbox(store_url: str | None, inbox_dir: str) -> dict[str, Any]:
    """Read every delivered file of the inbox into the store; a summary for the log and XCom.
    ``status`` is ``read`` (every file read), ``partly_read`` (some files left in place) or
    ``unreadable`` (the folder itself could not be listed)."""
    engine = open_engine(store_url)
    audit = AuditLog(engine, audit_keys())
    service = FeedEventService(engine, audit, lambda: dt.datetime.now(dt.UTC))
    try:
        return _read(service, Path(inbox_dir))
    finally:
        audit.close()
        engine.dispose()


def _read(service: FeedEventService, inbox: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "inbox": str(inbox),
        "status": "read",
        "files": [],
        "received": 0,
        "stored": 0,
        "duplicates": 0,
        "quarantined": 0,
        "left_in_place": [],
        "errors": [],
    }
    try:
        delivered = _delivered(inbox)
    except OSError as exc:
        error = (
            f"the events inbox {inbox} cannot be read: {exc.strerror or exc} (the run's"
            " inbox_dir / PERSONKORT_FEED_INBOX names another folder, or it is not mounted);"
            " the day's events may be missing, the feed's last state stays in force"
        )
        service.inbox_unreadable(INBOX_READER, error)
        return {**summary, "status": "unreadable", "errors": [error]}
    unreadable: list[str] = []
    for path in delivered:
        try:
            batch = _batch(path)
        except (RefusedSource, OSError) as exc:
            reason = exc.reason if isinstance(exc, RefusedSource) else str(exc.strerror or exc)
            unreadable.append(f"{path.name} cannot be read ({reason}); left in the inbox")
            summary["left_in_place"].append(path.name)
            continue
        receipt = service.receive(INBOX_READER, batch.events, batch.quarantine, source=path.name)
        moved = _move_aside(path, summary["errors"])
        summary["files"].append(
            {
                "file": path.name,
                "received": receipt.received,
                "stored": receipt.stored,
                "duplicates": receipt.duplicates,
                "quarantined": receipt.quarantined,
                "moved": moved,
            }
        )
        for key in ("received", "stored", "duplicates", "quarantined"):
            summary[key] += getattr(receipt, key)
    if unreadable:
        summary["errors"] += unreadable
        summary["status"] = "partly_read"
        service.inbox_unreadable(INBOX_READER, "; ".join(unreadable))
    else:
        service.inbox_read()
    return summary


def _delivered(inbox: Path) -> list[Path]:
    """The inbox's event files in name order; OSError if the folder cannot be listed."""
    if not inbox.is_dir():  # is_dir hides why; listing says it (missing, not a folder, denied)
        next(inbox.iterdir(), None)
    return sorted((p for p in inbox.glob(FILE_GLOB) if p.parent == inbox), key=lambda p: p.name)


def _batch(path: Path) -> EventBatch:
    """One file's events; RefusedSource for a name that is not a delivery's, or a file that
    cannot be opened."""
    if not INBOX_FILE.fullmatch(path.name):
        raise RefusedSource(
            Register.FOLKEREGISTER, path.name, "not an inbox file name (hendelser_YYYYMMDDTHHMMSS)"
        )
    return read_inbox_file(path)


def _move_aside(path: Path, errors: list[str]) -> bool:
    """Move a read file to ``lest/`` (never over an earlier one of the same name). A move that
    fails is reported, not raised: the events are stored, and stored once."""
    target_dir = path.parent / READ_FOLDER
    try:
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        n = 1
        while target.exists():
            target = target_dir / f"{path.name}.{n}"
            n += 1
        path.rename(target)
    except OSError as exc:
        errors.append(
            f"{path.name} was read and its events stored, but it could not be moved to"
            f" {READ_FOLDER}/ ({exc.strerror or exc}): the next read reads it again and stores"
            " no event twice (events are kept once by hendelseId; its unreadable lines, if any,"
            " are quarantined again)"
        )
        return False
    return True


def summary_text(summary: dict[str, Any]) -> str:
    """The summary as lines an operator reads in the task log or the terminal."""
    lines = [f"inbox: {summary['inbox']}", f"status: {summary['status']}"]
    for item in summary["files"]:
        moved = "moved to lest/" if item["moved"] else "NOT moved"
        lines.append(
            f"{item['file']}: received {item['received']}, stored {item['stored']},"
            f" duplicates {item['duplicates']}, quarantined {item['quarantined']}, {moved}"
        )
    lines.append(
        f"events: received {summary['received']}, stored {summary['stored']},"
        f" duplicates {summary['duplicates']}, quarantined {summary['quarantined']}"
    )
    lines += [f"error: {error}" for error in summary["errors"]]
    return "\n".join(lines)
