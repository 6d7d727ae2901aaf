"""Re-encrypting sensitive fields under the active key, while the API keeps serving.

Rows are updated one batch at a time; every row stays readable throughout (old ciphertexts
under keys still in the ring, new ones under the active key), so there is no downtime.
"""

from __future__ import annotations

import sqlalchemy as sa

from personkort.store import models as m
from personkort.store.crypto import KeyRing, context
from personkort.store.quarantine import rekey_quarantine

SEALED = (
    (m.StateBenefitRow, "state_benefit", ("diagnosis", "justification")),
    (m.MunicipalServiceRow, "municipal_service", ("free_text",)),
)


def rekey(engine: sa.Engine, ring: KeyRing, batch: int = 1000) -> int:
    """Re-encrypt every sealed value not under the active key; returns how many values."""
    changed = 0
    for table, name, columns in SEALED:
        last_id = 0
        while True:
            with engine.begin() as conn:
                rows = conn.execute(
                    sa.select(table.id, table.record_key, *(getattr(table, c) for c in columns))
                    .where(table.id > last_id)
                    .order_by(table.id)
                    .limit(batch)
                ).all()
                if not rows:
                    break
                for row in rows:
                    values = {}
                    for column in columns:
                        stored = getattr(row, column)
                        if stored is None or ring.key_id_of(stored) == ring.active:
                            continue
                        where = context(name, column, row.record_key)
                        values[column] = ring.encrypt(ring.decrypt(stored, where), where)
                    if values:
                        conn.execute(sa.update(table).where(table.id == row.id).values(**values))
                        changed += len(values)
                last_id = rows[-1].id
    return changed + rekey_quarantine(engine, ring, batch=batch)
