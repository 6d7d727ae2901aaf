"""Ended page sessions: written at sign-out, read at every page request."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from personkort.store import models as m

_ENDED = sa.select(m.EndedSession.jti).where(m.EndedSession.jti == sa.bindparam("jti"))


def end(conn: sa.Connection, jti: str, expires_at: dt.datetime, now: dt.datetime) -> None:
    """Record a session as ended (on the caller's transaction), and forget the ones whose
    tokens have expired since: they are refused by their expiry anyway."""
    conn.execute(sa.delete(m.EndedSession).where(m.EndedSession.expires_at < now))
    if conn.scalar(_ENDED, {"jti": jti}) is None:
        conn.execute(sa.insert(m.EndedSession).values(jti=jti, expires_at=expires_at))


def ended(engine: sa.Engine, jti: str) -> bool:
    with engine.connect() as conn:
        return conn.scalar(_ENDED, {"jti": jti}) is not None
