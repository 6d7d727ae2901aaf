"""Issue 10, item 3: someone with write access to the database rewrote the events after the
newest checkpoint, recomputed the unkeyed SHA-256 chain, and ``audit verify`` said ok (a
PostgreSQL store with 186 events had no checkpoint at all). Issue 12, item 5: verify read the
events and the checkpoints in two snapshots and raised false alarms under load."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from personkort.audit import AuditLog, AuditUnavailable, audit_keys, merkle, verify
from personkort.audit.log import canonical
from personkort.audit.models import AuditCheckpointRow, AuditEventIdentRow, AuditEventRow
from personkort.store import open_engine

IDENT = "15928011418"
OTHER = "03058512345"


@pytest.fixture
def audit(store_url: str, tmp_path: Path) -> AuditLog:
    return AuditLog(open_engine(store_url), audit_keys(str(tmp_path)), checkpoint_every=4)


def _lookup(n: int) -> dict[str, object]:
    return {"caseworker": {"sub": f"Z{n:06d}"}, "decision": "deny" if n % 2 else "permit"}


def _fill(audit: AuditLog, n: int) -> None:
    for i in range(1, n + 1):
        audit.append("lookup", _lookup(i), ident=IDENT)
    audit.wait_for_checkpoints()


def _rewrite_tail(audit: AuditLog, first: int, hasher: str) -> None:
    """What an insider with database access does: change events from ``first`` on and
    recompute their chain (unkeyed SHA-256, or HMAC under a key that is not the audit key)."""
    with audit.engine.begin() as conn:
        prev = (
            conn.scalar(sa.select(AuditEventRow.hash).where(AuditEventRow.seq == first - 1))
            or "0" * 64
        )
        rows = conn.execute(
            sa.select(AuditEventRow).where(AuditEventRow.seq >= first).order_by(AuditEventRow.seq)
        ).all()
        for row in rows:
            parsed = json.loads(row.body)
            parsed["data"]["decision"] = "permit"
            parsed["prev"] = prev
            body = canonical(parsed)
            if hasher == "sha256":
                digest = hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()
            else:
                digest = hmac.new(b"k" * 32, bytes.fromhex(prev) + body, "sha256").hexdigest()
            conn.execute(
                sa.update(AuditEventRow)
                .where(AuditEventRow.seq == row.seq)
                .values(
                    body=body.decode(),
                    prev_hash=prev,
                    hash=digest,
                    leaf=merkle.leaf_hash(body).hex(),
                    decision="permit",
                )
            )
            prev = digest


@pytest.mark.parametrize("hasher", ["sha256", "wrong-key"])
def test_a_rewritten_tail_after_the_newest_checkpoint_is_found(
    audit: AuditLog, hasher: str
) -> None:
    _fill(audit, 10)  # checkpoints at 4 and 8; 9 and 10 after the newest
    assert verify(audit.engine, audit.keys).ok
    _rewrite_tail(audit, 9, hasher)
    result = verify(audit.engine, audit.keys)
    assert not result.ok and result.first_bad_seq == 9


def test_a_log_rewritten_whole_with_its_checkpoints_deleted_is_found(audit: AuditLog) -> None:
    _fill(audit, 6)
    with audit.engine.begin() as conn:
        conn.execute(sa.delete(AuditCheckpointRow))
    _rewrite_tail(audit, 1, "sha256")
    result = verify(audit.engine, audit.keys)
    assert not result.ok and result.first_bad_seq == 1
    assert "without the audit key" in (result.problem or "")


def test_with_the_public_key_alone_a_change_under_a_checkpoint_is_found(audit: AuditLog) -> None:
    _fill(audit, 10)
    _rewrite_tail(audit, 6, "sha256")
    result = verify(audit.engine, audit.keys.public)
    assert not result.ok and not result.keyed
    assert result.first_bad_seq == 5 and "4" not in (result.problem or "").split("from")[0]


def test_a_changed_ident_index_row_is_found(audit: AuditLog) -> None:
    _fill(audit, 5)
    with audit.engine.begin() as conn:
        conn.execute(
            sa.update(AuditEventIdentRow)
            .where(AuditEventIdentRow.seq == 3)
            .values(ident_hmac=audit.keys.ident_hmac(OTHER))
        )
    result = verify(audit.engine, audit.keys)
    assert not result.ok and result.first_bad_seq == 3 and "ident index" in (result.problem or "")


def test_a_deleted_or_added_ident_index_row_is_found(audit: AuditLog) -> None:
    _fill(audit, 5)
    with audit.engine.begin() as conn:
        conn.execute(sa.delete(AuditEventIdentRow).where(AuditEventIdentRow.seq == 2))
    assert verify(audit.engine, audit.keys).first_bad_seq == 2
    with audit.engine.begin() as conn:
        conn.execute(
            sa.insert(AuditEventIdentRow).values(seq=2, ident_hmac=audit.ident_hmac(IDENT))
        )
        conn.execute(sa.insert(AuditEventIdentRow).values(seq=4, ident_hmac="0" * 64))
    assert verify(audit.engine, audit.keys).first_bad_seq == 4
    with audit.engine.begin() as conn:
        conn.execute(sa.delete(AuditEventIdentRow).where(AuditEventIdentRow.ident_hmac == "0" * 64))
        conn.execute(sa.insert(AuditEventIdentRow).values(seq=99, ident_hmac="0" * 64))
    assert verify(audit.engine, audit.keys).first_bad_seq == 99


def test_checkpoints_are_signed_on_a_timer_and_at_close(store_url: str, tmp_path: Path) -> None:
    audit = AuditLog(
        open_engine(store_url),
        audit_keys(str(tmp_path)),
        checkpoint_every=1000,
        checkpoint_interval=0.2,
    )

    def sizes() -> list[int]:
        with audit.engine.connect() as conn:
            return list(conn.scalars(sa.select(AuditCheckpointRow.tree_size).order_by("tree_size")))

    for i in range(3):
        audit.append("lookup", _lookup(i))
    deadline = time.monotonic() + 10
    while sizes() != [3] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sizes() == [3]
    time.sleep(0.6)
    assert sizes() == [3]  # nothing new: no new checkpoint
    audit.append("lookup", _lookup(4))
    audit.checkpoint_interval = 3600.0  # too late for the running timer; close signs the tail
    audit.close()
    assert sizes()[-1] == 4
    result = verify(audit.engine, audit.keys)
    assert result.ok and result.events == 4
    audit.append("lookup", _lookup(5))  # a later append starts the log again
    audit.close()
    assert sizes()[-1] == 5 and verify(audit.engine, audit.keys).ok


def test_no_event_is_accepted_while_closing(store_url: str, tmp_path: Path) -> None:
    audit = AuditLog(open_engine(store_url), audit_keys(str(tmp_path)))
    audit.append("lookup", _lookup(1))
    audit._closed = True  # the moment between close() starting and finishing
    with pytest.raises(AuditUnavailable, match="closed"):
        audit.append("lookup", _lookup(2))


def test_close_signs_the_tail(store_url: str, tmp_path: Path) -> None:
    audit = AuditLog(open_engine(store_url), audit_keys(str(tmp_path)), checkpoint_interval=3600)
    for i in range(5):
        audit.append("lookup", _lookup(i))
    audit.close()
    with audit.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.max(AuditCheckpointRow.tree_size))) == 5


def test_verify_under_load_never_raises_a_false_alarm(audit: AuditLog) -> None:
    """Verify again and again while another thread appends and signs checkpoints."""
    for i in range(1500):
        audit.append("lookup", _lookup(i), ident=IDENT)
    audit.checkpoint_every = 7
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                audit.append("lookup", _lookup(n), ident=IDENT, idents=[OTHER])
                if n % 3 == 0:
                    audit.checkpoint()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [verify(audit.engine, audit.keys) for _ in range(12)]
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert all(r.ok for r in results), [r.problem for r in results if not r.ok]
    assert results[-1].events > 1500 and results[-1].checkpoints > 0
