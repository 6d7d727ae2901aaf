"""Issue 10, item 3: one bad audit event never fails the others.

Before: one token whose ``sub`` was longer than the audit column (or an 11-digit sub, which the
scrubber lengthened into ``ident:<64 hex>``) made the whole group-commit batch fail: 173 of 350
other caseworkers' lookups got 503, and nothing was logged. Each test runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from personkort.audit import AuditLog, AuditUnavailable, audit_keys, verify
from personkort.audit.log import MAX_SUB, AuditRefused
from personkort.audit.models import AuditEventRow
from personkort.store import open_engine

IDENT = "15928011418"


@pytest.fixture
def audit(store_url: str, tmp_path: Path) -> AuditLog:
    return AuditLog(open_engine(store_url), audit_keys(str(tmp_path)), checkpoint_every=100)


def lookup(sub: Any, **extra: Any) -> dict[str, Any]:
    return {
        "caseworker": {"sub": sub, "employer": "stat", "office": "nav-oslo"},
        "card_id": "pk-0123456789abcdef",
        "decision": "permit",
        **extra,
    }


class Unserialisable:
    pass


BAD_EVENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("a sub longer than the column", "lookup", lookup("Z" * (MAX_SUB + 1))),
    ("a sub that is not text", "lookup", lookup(12345)),
    ("a card id longer than its column", "lookup", {**lookup("Z1"), "card_id": "pk-" + "a" * 30}),
    ("an unknown kind", "lookup_typo", lookup("Z1")),
    ("a kind longer than its column", "x" * 40, lookup("Z1")),
    ("a value that is not JSON", "lookup", lookup("Z1", purpose=Unserialisable())),
    ("a lone surrogate", "lookup", lookup("Z1", purpose="a\ud800b")),
    ("not a number", "lookup", lookup("Z1", score=float("nan"))),
    ("a decision too long", "lookup", {**lookup("Z1"), "decision": "permit" * 4}),
    ("a field the log sets", "lookup", {**lookup("Z1"), "ident_hmac": "0" * 64}),
]


@pytest.mark.parametrize(("why", "kind", "data"), BAD_EVENTS, ids=[b[0] for b in BAD_EVENTS])
def test_an_event_that_cannot_be_stored_is_refused_at_the_edge(
    audit: AuditLog, why: str, kind: str, data: dict[str, Any]
) -> None:
    with pytest.raises(AuditRefused):
        audit.append(kind, data, trace_id="t1")
    assert issubclass(AuditRefused, AuditUnavailable)  # the API answers it 503 too
    with audit.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(AuditEventRow)) == 0


def test_an_eleven_digit_sub_is_stored_hashed_and_fits_its_column(audit: AuditLog) -> None:
    stored = audit.append("lookup", lookup(IDENT), ident=IDENT)
    with audit.engine.connect() as conn:
        row = conn.execute(sa.select(AuditEventRow).where(AuditEventRow.seq == stored.seq)).one()
    assert IDENT not in row.body and IDENT not in (row.caseworker or "")
    assert row.caseworker is not None and len(row.caseworker) <= MAX_SUB
    assert [e["seq"] for e in audit.events(caseworker=IDENT)] == [stored.seq]
    assert [e["seq"] for e in audit.events(caseworker="159280 11418")] == [stored.seq]
    assert verify(audit.engine, audit.keys).ok


def test_350_lookups_succeed_beside_bad_tokens(audit: AuditLog) -> None:
    """The original scenario: bad subs among 350 concurrent lookups fail alone."""
    outcomes: dict[int, str] = {}
    start = threading.Barrier(50)

    def worker(k: int) -> None:
        start.wait()
        for i in range(7):
            n = k * 7 + i
            sub = f"Z{n:06d}"
            if n % 50 == 0:
                sub = "Z" * 60  # too long for the column
            elif n % 50 == 25:
                sub = f"{n:011d}"  # an identity number as sub: scrubbed, still fits
            try:
                audit.append("lookup", lookup(sub), ident=IDENT, trace_id=f"t{n}")
                outcomes[n] = "ok"
            except AuditRefused:
                outcomes[n] = "refused"
            except AuditUnavailable:
                outcomes[n] = "unavailable"

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = {n for n, o in outcomes.items() if o != "ok"}
    assert refused == {n for n in range(350) if n % 50 == 0}
    assert all(outcomes[n] == "refused" for n in refused)
    result = verify(audit.engine, audit.keys)
    assert result.ok and result.events == 350 - len(refused)


def _poisoned(audit: AuditLog) -> Any:
    """An event that passed the edge but that the store cannot take (a lone surrogate in an
    indexed column: neither SQLite nor PostgreSQL can encode it)."""
    pending = audit._prepare("lookup", lookup("Z9"), None, (), None)
    pending.trace_id = "t\ud800"
    return pending


def test_a_batch_that_fails_is_written_one_event_at_a_time(
    audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    good = [audit._prepare("lookup", lookup(f"Z{i}"), IDENT, (), f"t{i}") for i in range(4)]
    bad = _poisoned(audit)
    batch = [good[0], good[1], bad, good[2], good[3]]
    with caplog.at_level(logging.WARNING, logger="personkort.audit"):
        audit._commit_batch(batch)
    assert bad.stored is None and bad.error is not None
    assert all(p.stored is not None and p.error is None for p in good)
    assert [p.stored.seq for p in good if p.stored] == [1, 2, 3, 4]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "1 event(s) not stored" in errors[-1].getMessage()
    assert any(
        r.levelno == logging.WARNING and "writable again" in r.getMessage() for r in caplog.records
    )
    assert IDENT not in caplog.text and "Z9" not in caplog.text
    assert verify(audit.engine, audit.keys).ok


def test_only_the_poisoned_callers_get_unavailable_under_load(audit: AuditLog) -> None:
    """Through the writer thread: the poisoned events share batches with good ones (the
    insert is slowed so events queue up), and only they fail."""
    original = audit._insert

    def slow(conn: sa.Connection, batch: list[Any]) -> list[Any]:
        threading.Event().wait(0.01)
        return original(conn, batch)

    audit._insert = slow  # type: ignore[method-assign]
    results: dict[int, bool] = {}

    def worker(n: int) -> None:
        pending = (
            _poisoned(audit)
            if n % 10 == 0
            else audit._prepare("lookup", lookup(f"Z{n}"), None, (), None)
        )
        audit._running()
        audit._queue.put(pending)
        pending.done.wait(30)
        results[n] = pending.stored is not None

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {n for n, ok in results.items() if not ok} == {n for n in range(60) if n % 10 == 0}
    assert verify(audit.engine, audit.keys).ok


def test_an_outage_and_its_recovery_are_logged_without_content(
    audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    audit.append("lookup", lookup("Z1"), ident=IDENT)
    with audit.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_event RENAME TO audit_event_away"))
    with caplog.at_level(logging.WARNING, logger="personkort.audit"):
        with pytest.raises(AuditUnavailable):
            audit.append("lookup", lookup("Z2", purpose=f"sak {IDENT}"), ident=IDENT)
        with audit.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_event_away RENAME TO audit_event"))
        audit.append("lookup", lookup("Z3"), ident=IDENT)
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    recovered = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failed) == 1 and "not stored" in failed[0].getMessage()
    assert len(recovered) == 1 and "writable again after 1" in recovered[0].getMessage()
    assert all(r.name == "personkort.audit" for r in failed + recovered)
    assert IDENT not in caplog.text and "sak" not in caplog.text and "Z2" not in caplog.text
    assert verify(audit.engine, audit.keys).ok


def test_a_refused_event_is_logged_without_content(
    audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="personkort.audit"), pytest.raises(AuditRefused):
        audit.append("lookup", lookup(IDENT + "x" * 40), ident=IDENT)
    assert "refused" in caplog.text and IDENT not in caplog.text
