"""``personkort audit verify`` on a real store: ok, then the first broken event named."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from personkort.audit import AuditLog, audit_keys, merkle
from personkort.audit.models import AuditEventRow
from personkort.store import open_engine

PERSONKORT = str(Path(sys.executable).parent / "personkort")


def test_audit_verify_names_the_first_broken_event(store_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PERSONKORT_DATA_DIR": str(tmp_path)}
    engine = open_engine(store_url)
    audit = AuditLog(engine, audit_keys(str(tmp_path)), checkpoint_every=3)
    for n in range(7):
        audit.append("lookup", {"caseworker": {"sub": f"Z{n}"}, "decision": "permit"})
    audit.wait_for_checkpoints()
    run = [PERSONKORT, "audit", "verify", "--store", store_url]
    ok = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "7 events, 2 checkpoints" in ok.stdout
    with engine.begin() as conn:
        conn.execute(sa.delete(AuditEventRow).where(AuditEventRow.seq == 2))
    broken = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert broken.returncode == 1
    assert "broken at event 2" in broken.stderr


def test_audit_verify_finds_a_tail_rechained_without_the_key(
    store_url: str, tmp_path: Path
) -> None:
    """The CLI checks the keyed chain: events after the newest checkpoint, changed and chained
    again with plain SHA-256 (all a database writer without the audit key can do), are found."""
    env = {**os.environ, "PERSONKORT_DATA_DIR": str(tmp_path)}
    engine = open_engine(store_url)
    audit = AuditLog(engine, audit_keys(str(tmp_path)), checkpoint_every=3)
    for n in range(5):
        audit.append("lookup", {"caseworker": {"sub": f"Z{n}"}, "decision": "deny"})
    audit.wait_for_checkpoints()  # one checkpoint, at 3
    with engine.begin() as conn:
        row = conn.execute(sa.select(AuditEventRow).where(AuditEventRow.seq == 5)).one()
        body = row.body.replace('"deny"', '"permit"')
        digest = hashlib.sha256(bytes.fromhex(row.prev_hash) + body.encode()).hexdigest()
        conn.execute(
            sa.update(AuditEventRow)
            .where(AuditEventRow.seq == 5)
            .values(
                body=body,
                hash=digest,
                decision="permit",
                leaf=merkle.leaf_hash(body.encode()).hex(),
            )
        )
    run = [PERSONKORT, "audit", "verify", "--store", store_url]
    broken = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert broken.returncode == 1, broken.stdout
    assert "broken at event 5" in broken.stderr
