"""The policy-version repository: each version the first time it ran, with its files."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from personkort.store import models as m
from personkort.store.queries import aware


def record_version(
    conn: sa.Connection, version: str, files: dict[str, str], at: dt.datetime
) -> bool:
    """Store a version on the caller's transaction; False if it is known already."""
    known = conn.scalar(
        sa.select(m.PolicyVersionRow.version).where(m.PolicyVersionRow.version == version)
    )
    if known:
        return False
    conn.execute(
        sa.insert(m.PolicyVersionRow).values(version=version, files=files, activated_at=at)
    )
    return True


def versions(engine: sa.Engine) -> list[tuple[str, dt.datetime]]:
    """(version, first activated) of every version, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.PolicyVersionRow.version, m.PolicyVersionRow.activated_at).order_by(
                m.PolicyVersionRow.activated_at
            )
        ).all()
    return [(v, aware(a)) for v, a in rows]  # type: ignore[misc]


def files_of(engine: sa.Engine, names: list[str]) -> dict[str, dict[str, str]]:
    """The files of the named versions that exist."""
    with engine.connect() as conn:
        return dict(
            conn.execute(  # type: ignore[arg-type]
                sa.select(m.PolicyVersionRow.version, m.PolicyVersionRow.files).where(
                    m.PolicyVersionRow.version.in_(names)
                )
            ).all()
        )
