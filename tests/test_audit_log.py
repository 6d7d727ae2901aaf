"""The audit log: chain, checkpoints, inclusion proofs, tampering, keys, fail-closed, export.
Every store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from personkort.audit import (
    AuditLog,
    AuditUnavailable,
    audit_keys,
    merkle,
    verify,
    verify_inclusion,
)
from personkort.audit.export import cef_line, cef_value, to_cef
from personkort.audit.log import AuditRefused, begin_write, canonical
from personkort.audit.models import AuditCheckpointRow, AuditEventIdentRow, AuditEventRow
from personkort.store import open_engine

IDENT = "15928011418"


def lookup(n: int) -> dict[str, object]:
    return {
        "caseworker": {
            "sub": f"Z{n:06d}",
            "employer": "stat",
            "office": "nav-oslo",
            "roles": ["veileder"],
        },
        "card_id": f"pk-{n:016x}",
        "decision": "permit" if n % 3 else "deny",
        "reason_codes": [] if n % 3 else ["skjermet_person"],
        "policy_version": "a" * 64,
        "privileged_use": ["strengt_fortrolig_adresse"] if n % 5 == 0 else [],
    }


@pytest.fixture
def audit(store_url: str, tmp_path: Path) -> AuditLog:
    engine = open_engine(store_url)
    return AuditLog(engine, audit_keys(str(tmp_path)), checkpoint_every=4)


def _fill(audit: AuditLog, n: int) -> None:
    for i in range(1, n + 1):
        audit.append("lookup", lookup(i), ident=IDENT if i % 2 else None, trace_id=f"t{i}")
    audit.wait_for_checkpoints()


def test_untouched_log_verifies(audit: AuditLog) -> None:
    _fill(audit, 10)
    result = verify(audit.engine, audit.keys)
    assert result.ok and result.events == 10 and result.checkpoints == 2


def _tamper(audit: AuditLog, statement: sa.Executable) -> None:
    with audit.engine.begin() as conn:
        conn.execute(statement)


def test_a_changed_event_fails_at_that_event(audit: AuditLog) -> None:
    _fill(audit, 10)
    with audit.engine.connect() as conn:
        body = conn.scalar(sa.select(AuditEventRow.body).where(AuditEventRow.seq == 6))
    forged = body.replace('"deny"', '"permit"') if '"deny"' in body else body.replace("Z0", "Z9")
    _tamper(audit, sa.update(AuditEventRow).where(AuditEventRow.seq == 6).values(body=forged))
    result = verify(audit.engine, audit.keys)
    assert not result.ok and result.first_bad_seq == 6
    assert "hash" in (result.problem or "")


def test_a_changed_index_column_fails_at_that_event(audit: AuditLog) -> None:
    _fill(audit, 10)
    _tamper(audit, sa.update(AuditEventRow).where(AuditEventRow.seq == 3).values(decision="permit"))
    result = verify(audit.engine, audit.keys)
    assert not result.ok and result.first_bad_seq == 3


def test_a_deleted_event_fails_at_that_event(audit: AuditLog) -> None:
    _fill(audit, 10)
    _tamper(audit, sa.delete(AuditEventRow).where(AuditEventRow.seq == 5))
    result = verify(audit.engine, audit.keys)
    assert not result.ok and result.first_bad_seq == 5 and "missing" in (result.problem or "")


def test_deleting_the_newest_events_is_caught_by_the_checkpoint(audit: AuditLog) -> None:
    _fill(audit, 8)
    _tamper(audit, sa.delete(AuditEventRow).where(AuditEventRow.seq >= 7))
    result = verify(audit.engine, audit.keys)
    assert not result.ok and result.first_bad_seq == 7


def test_reordered_events_fail_at_the_first_moved(audit: AuditLog) -> None:
    _fill(audit, 10)
    with audit.engine.begin() as conn:
        conn.execute(sa.update(AuditEventRow).where(AuditEventRow.seq == 4).values(seq=-4))
        conn.execute(sa.update(AuditEventRow).where(AuditEventRow.seq == 7).values(seq=4))
        conn.execute(sa.update(AuditEventRow).where(AuditEventRow.seq == -4).values(seq=7))
    result = verify(audit.engine, audit.keys)
    assert not result.ok and result.first_bad_seq == 4


def test_a_forged_checkpoint_fails(audit: AuditLog, tmp_path: Path) -> None:
    _fill(audit, 8)
    _tamper(
        audit,
        sa.update(AuditCheckpointRow)
        .where(AuditCheckpointRow.tree_size == 4)
        .values(root_hash="0" * 64),
    )
    result = verify(audit.engine, audit.keys)
    assert not result.ok and result.first_bad_seq == 4 and "signature" in (result.problem or "")
    other = audit_keys(str(tmp_path / "other"))
    assert not verify(audit.engine, other.public).ok


def test_one_events_inclusion_is_proven_without_the_log(audit: AuditLog) -> None:
    _fill(audit, 12)
    proof = audit.prove(5)
    assert verify_inclusion(proof, audit.keys.public)
    assert len(proof["path"]) <= 4  # log2(12) hashes, not the log
    forged = {**proof, "body": proof["body"].replace("Z0", "Z9")}
    assert not verify_inclusion(forged, audit.keys.public)


def test_identity_numbers_are_findable_not_readable(audit: AuditLog) -> None:
    _fill(audit, 6)
    with audit.engine.connect() as conn:
        bodies = conn.scalars(sa.select(AuditEventRow.body)).all()
    assert not any(IDENT in b for b in bodies)
    found = audit.events(ident=IDENT)
    assert [e["seq"] for e in found] == [1, 3, 5]
    assert audit.reveal(json.dumps(found[0])) == IDENT
    assert audit.events(ident="01010112345") == []


def test_concurrent_appends_keep_a_gapless_valid_chain(audit: AuditLog) -> None:
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(5):
                audit.append("lookup", lookup(k * 100 + i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = verify(audit.engine, audit.keys)
    assert result.ok and result.events == 50


def test_append_fails_closed_when_the_store_is_gone(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    audit = AuditLog(engine, audit_keys(str(tmp_path)))
    audit.append("lookup", lookup(1))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE audit_event"))
    with pytest.raises(AuditUnavailable):
        audit.append("lookup", lookup(2), ident=IDENT)


def test_auditor_queries(audit: AuditLog) -> None:
    _fill(audit, 15)
    assert {e["data"]["decision"] for e in audit.events(decision="deny")} == {"deny"}
    assert [e["seq"] for e in audit.events(privileged=True)] == [5, 10, 15]
    assert [e["seq"] for e in audit.events(caseworker="Z000007")] == [7]
    assert len(audit.events(limit=5, offset=10)) == 5


def test_cef_lines_escape_and_name_the_decision(audit: AuditLog) -> None:
    _fill(audit, 3)
    lines = to_cef(audit.events()).splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("CEF:0|NAV|personkort|1.0|lookup|Oppslag personkort|")
    assert "flexString1=Deny" in lines[2] and "suid=Z000003" in lines[2]
    assert IDENT not in "".join(lines)
    assert cef_value("a=b\\c\nd") == "a\\=b\\\\c\\nd"
    event = {**audit.events()[0], "kind": "x|y"}
    assert "|x\\|y|" in cef_line(event)


def _naive_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(_naive_root(leaves[:k]), _naive_root(leaves[k:]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_merkle_proofs_match_the_rfc_definition(items: list[bytes], data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(x) for x in items]
    assert merkle.root(leaves) == _naive_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = merkle.inclusion_path(index, leaves)
    assert merkle.verify_path(index, len(leaves), leaves[index], path, merkle.root(leaves))
    if len(leaves) > 1:
        wrong = (index + 1) % len(leaves)
        assert not merkle.verify_path(
            wrong, len(leaves), leaves[index], path, merkle.root(leaves)
        ) or (leaves[wrong] == leaves[index])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=4), max_size=70))
def test_a_frontier_grown_leaf_by_leaf_has_the_rfc_root(items: list[bytes]) -> None:
    frontier = merkle.Frontier()
    leaves = [merkle.leaf_hash(x) for x in items]
    for n, leaf in enumerate(leaves, 1):
        frontier.add(leaf)
        assert frontier.size == n and frontier.root() == merkle.root(leaves[:n])
    assert frontier.root() == merkle.root(leaves)


def test_checkpoints_after_a_restart_cover_the_whole_log(audit: AuditLog) -> None:
    _fill(audit, 6)
    again = AuditLog(audit.engine, audit.keys, checkpoint_every=4)
    for i in range(7, 11):
        again.append("lookup", lookup(i))
    again.wait_for_checkpoints()
    result = verify(audit.engine, audit.keys)
    assert result.ok and result.checkpoints == 2
    proof = again.prove(3)
    assert proof["checkpoint"]["tree_size"] == 8 and verify_inclusion(proof, audit.keys.public)


def test_concurrent_appends_share_commits(audit: AuditLog) -> None:
    """Group commit: many threads' events land in fewer transactions than events."""
    commits = 0
    original = audit._insert

    def counting(conn: sa.Connection, batch: list) -> list:  # type: ignore[type-arg]
        nonlocal commits
        commits += 1
        time.sleep(0.005)  # hold the write lock long enough for others to queue
        return original(conn, batch)

    audit._insert = counting  # type: ignore[method-assign]
    threads = [
        threading.Thread(target=lambda k=k: audit.append("lookup", lookup(k))) for k in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert commits < 20
    result = verify(audit.engine, audit.keys)
    assert result.ok and result.events == 20


def test_identity_numbers_inside_an_event_are_replaced_by_their_hmac(audit: AuditLog) -> None:
    audit.append(
        "steward_decision",
        {
            "caseworker": {"sub": "Z1"},
            "record_a": f"infotrygd:{IDENT}",
            "record_b": "arena:1001",
            "reason": "same person as 159280 11418",
            "card_id": "pk-1234567890123456",
        },
    )
    with audit.engine.connect() as conn:
        body = conn.scalar(sa.select(AuditEventRow.body))
    assert IDENT not in body and "159280 11418" not in body
    assert f"infotrygd:ident:{audit.keys.ident_hmac(IDENT)}" in body
    assert "pk-1234567890123456" in body and "arena:1001" in body
    assert verify(audit.engine, audit.keys).ok


OTHER = "03058512345"  # another of the person's numbers (an earlier one, say)


def test_a_body_is_the_canonical_serialisation(audit: AuditLog) -> None:
    """The writer builds the body from data serialised at the edge: it must equal canonical()."""
    audit.append("lookup", {**lookup(1), "purpose": 'ø \u2028 "q"'}, ident=IDENT)
    with audit.engine.connect() as conn:
        body = conn.scalar(sa.select(AuditEventRow.body))
    assert body.encode() == canonical(json.loads(body))


def test_every_number_on_the_card_finds_the_event(audit: AuditLog) -> None:
    by_card = audit.append("lookup", lookup(1), idents=[IDENT, OTHER])  # by card id
    by_other = audit.append("lookup", lookup(2), ident=OTHER, idents=[IDENT, OTHER])
    audit.append("lookup", lookup(3), ident="01010112345", idents=["01010112345"])
    for number in (IDENT, OTHER, "159280 11418"):
        assert [e["seq"] for e in audit.events(ident=number)] == [by_card.seq, by_other.seq]
    with audit.engine.connect() as conn:
        rows = conn.execute(sa.select(AuditEventIdentRow).order_by("seq", "ident_hmac")).all()
    assert {(r.seq, r.ident_hmac) for r in rows} >= {
        (1, audit.ident_hmac(IDENT)),
        (1, audit.ident_hmac(OTHER)),
    }
    event = audit.events(ident=IDENT)[1]
    assert event["data"]["ident_hmac"] == audit.ident_hmac(OTHER)  # the typed one, as before
    assert sorted(event["data"]["ident_hmacs"]) == sorted(
        [audit.ident_hmac(IDENT), audit.ident_hmac(OTHER)]
    )
    assert verify(audit.engine, audit.keys).ok


def test_a_number_in_free_text_finds_the_event(audit: AuditLog) -> None:
    stored = audit.append(
        "steward_decision", {"caseworker": {"sub": "Z1"}, "reason": "same as 159280-11418"}
    )
    assert [e["seq"] for e in audit.events(ident=IDENT)] == [stored.seq]


def _change_table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS change_t (n INTEGER)"))


def _changes(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT count(*) FROM change_t"))


def test_append_in_commits_with_the_change(audit: AuditLog) -> None:
    _change_table(audit.engine)
    audit.append("lookup", lookup(1))
    with begin_write(audit.engine) as conn:
        conn.execute(sa.text("INSERT INTO change_t VALUES (1)"))
        stored = audit.append_in(conn, "consent_registered", lookup(2), ident=IDENT)
    assert stored.seq == 2 and _changes(audit.engine) == 1
    with audit.engine.begin() as conn:  # the lead's form: the change first takes the lock
        conn.execute(sa.text("INSERT INTO change_t VALUES (2)"))
        audit.append_in(conn, "consent_withdrawn", lookup(3), idents=[IDENT])
    with audit.engine.begin() as conn:  # no write before: append_in takes the lock itself
        audit.append_in(conn, "policy_activated", lookup(4))
        conn.execute(sa.text("INSERT INTO change_t VALUES (3)"))
    audit.append("lookup", lookup(5))
    assert _changes(audit.engine) == 3
    assert [e["seq"] for e in audit.events(ident=IDENT)] == [2, 3]
    result = verify(audit.engine, audit.keys)
    assert result.ok and result.events == 5


def test_a_change_whose_event_is_refused_is_rolled_back(audit: AuditLog) -> None:
    _change_table(audit.engine)
    with pytest.raises(AuditRefused), audit.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO change_t VALUES (1)"))
        audit.append_in(conn, "consent_registered", lookup(1) | {"caseworker": {"sub": "Z" * 41}})
    assert _changes(audit.engine) == 0


def test_a_change_whose_event_cannot_be_written_is_rolled_back(audit: AuditLog) -> None:
    _change_table(audit.engine)
    audit.append("lookup", lookup(1))
    with audit.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_event_ident RENAME TO audit_event_ident_away"))
    with pytest.raises(AuditUnavailable), audit.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO change_t VALUES (1)"))
        audit.append_in(conn, "consent_registered", lookup(2), ident=IDENT)
    with audit.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_event_ident_away RENAME TO audit_event_ident"))
    assert _changes(audit.engine) == 0
    with audit.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(AuditEventRow)) == 1
    assert verify(audit.engine, audit.keys).ok


def test_append_in_and_group_commit_interleave_into_one_chain(audit: AuditLog) -> None:
    _change_table(audit.engine)
    errors: list[BaseException] = []

    def lookups() -> None:
        try:
            for i in range(40):
                audit.append("lookup", lookup(i), ident=IDENT)
        except BaseException as exc:
            errors.append(exc)

    def changes() -> None:
        try:
            for i in range(15):
                with begin_write(audit.engine) as conn:
                    conn.execute(sa.text("INSERT INTO change_t VALUES (1)"))
                    audit.append_in(conn, "consent_registered", lookup(i), ident=IDENT)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (lookups, lookups, changes, changes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = verify(audit.engine, audit.keys)
    assert result.ok and result.events == 110 and _changes(audit.engine) == 30


def test_migration_0006_fills_the_ident_index_from_the_typed_numbers(store_url: str) -> None:
    """A store with events from before 0006: the index gets their typed numbers."""
    from alembic import command
    from alembic.config import Config

    from personkort.store.database import MIGRATIONS

    engine = sa.create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0005")
        conn.execute(
            sa.text(
                "INSERT INTO audit_event (seq, kind, at, body, prev_hash, hash, leaf,"
                " ident_hmac, privileged) VALUES (1, 'lookup', 'x', '{}', :z, :z, :z, :h, false)"
            ),
            {"z": "0" * 64, "h": "a" * 64},
        )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        rows = conn.execute(sa.select(AuditEventIdentRow.seq, AuditEventIdentRow.ident_hmac)).all()
    assert [tuple(r) for r in rows] == [(1, "a" * 64)]
    engine.dispose()
