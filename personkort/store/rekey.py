"""Re-encrypting sensitive fields under the active key, while the API keeps serving.

Rows are updated one batch at a time; every row stays readable throughout (old ciphertexts
under keys still in the ring, new ones under the active key), so there is no downtime. A
municipal service's free text sealed before lines were bound (``crypto.PREFIX``) is sealed
again bound to its line (``crypto.service_context``), under the active key or not.
"""

from __future__ import annotations

import sqlalchemy as sa

from personkort.store import models as m
from personkort.store.crypto import LINE_PREFIX, KeyRing, context, service_context
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
                    sa.select(table).where(table.id > last_id).order_by(table.id).limit(batch)
                ).all()
                if not rows:
                    break
                for row in rows:
                    values = {}
                    for column in columns:
                        again = _sealed_again(ring, name, column, row)
                        if again is not None:
                            values[column] = again
                    if values:
                        conn.execute(sa.update(table).where(table.id == row.id).values(**values))
                        changed += len(values)
                last_id = rows[-1].id
    return changed + rekey_quarantine(engine, ring, batch=batch)


def _sealed_again(ring: KeyRing, table: str, column: str, row: sa.Row) -> str | None:
    """The value sealed under the active key (a service's free text bound to its line too),
    or None when it is already so sealed (or empty)."""
    stored = getattr(row, column)
    where = context(table, column, row.record_key)
    if table == "municipal_service":
        line = service_context(row.record_key, row.location, row.service, row.owner_kommune)
        bound = stored is not None and stored.startswith(LINE_PREFIX)
        if stored is None or (bound and ring.key_id_of(stored) == ring.active):
            return None
        return ring.encrypt(ring.decrypt(stored, line, where), line, LINE_PREFIX)
    if stored is None or ring.key_id_of(stored) == ring.active:
        return None
    return ring.encrypt(ring.decrypt(stored, where), where)
