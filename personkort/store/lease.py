"""One night at a time per store: a lease row that every night takes before it writes.

A night takes the lease in the transaction that opens it, renews it while it works, and gives it
up when it is published, refused or failed; publishing checks, in the same transaction as the
pointer move, that the night still holds it and that the served pointer only moves forward.
The lease outlives the process that staged a night (the DAG publishes in another task), so a
crashed night's lease frees itself: at once when its process is known to be gone (same host,
pid not running, night not yet staged), otherwise when it expires.

One conditional UPDATE of one row decides who holds it: PostgreSQL re-checks the condition
after the row lock, SQLite serialises writers, so two nights started at the same moment on any
number of machines get one winner. Times are the hosts' clocks (UTC); keep them in sync.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

import sqlalchemy as sa

from personkort.store import models as m

LEASE = dt.timedelta(minutes=30)  # a staged night waits this long for its publish step
STAGED = "staged"


class NightBusy(Exception):
    """Another night holds the store: this one may not start, or may no longer publish."""


@dataclass(frozen=True, slots=True)
class Holder:
    night_id: int | None
    holder: str | None
    expires_at: dt.datetime | None


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # SQLite returns naive UTC
    return value


def current(conn: sa.Connection) -> Holder:
    row = conn.execute(
        sa.select(m.NightLease.night_id, m.NightLease.holder, m.NightLease.expires_at).where(
            m.NightLease.id == 1
        )
    ).one_or_none()
    if row is None:
        return Holder(None, None, None)
    return Holder(row.night_id, row.holder, _aware(row.expires_at))


def _gone(holder: str | None) -> bool:
    """The holder is a process on this host that no longer runs (a killed night)."""
    if not holder or holder.startswith(STAGED):
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def take(conn: sa.Connection, now: dt.datetime | None = None) -> None:
    """Take the lease for a night about to open (on the caller's transaction), or NightBusy.
    (Migration 0007 made the one row; every store is migrated when it is opened.)"""
    now = now or _now()
    before = current(conn)
    free = sa.or_(m.NightLease.holder.is_(None), m.NightLease.expires_at < now)
    if _gone(before.holder):
        free = sa.or_(free, m.NightLease.holder == before.holder)
    taken = conn.execute(
        sa.update(m.NightLease)
        .where(m.NightLease.id == 1, free)
        .values(holder=this_process(), night_id=None, expires_at=now + LEASE)
    ).rowcount
    if not taken:
        held = current(conn)
        raise NightBusy(
            f"another night (night {held.night_id}, {held.holder}) holds the store until "
            f"{held.expires_at:%Y-%m-%d %H:%M} UTC; wait for it to finish"
            if held.expires_at
            else "another night holds the store; wait for it to finish"
        )


def bind(conn: sa.Connection, night: int) -> None:
    """The lease taken by this process now belongs to the night just opened."""
    conn.execute(
        sa.update(m.NightLease)
        .where(m.NightLease.id == 1, m.NightLease.holder == this_process())
        .values(night_id=night)
    )


def renew(engine: sa.Engine, night: int, *, staged: bool = False) -> None:
    """Keep the lease while the night works; ``staged`` hands it from the staging process to
    whichever process publishes (the DAG's next task). NightBusy if it was lost."""
    with engine.begin() as conn:
        values: dict[str, object] = {"expires_at": _now() + LEASE}
        if staged:
            values["holder"] = f"{STAGED}:{socket.gethostname()}"
        renewed = conn.execute(
            sa.update(m.NightLease)
            .where(m.NightLease.id == 1, m.NightLease.night_id == night)
            .values(**values)
        ).rowcount
    if not renewed:
        raise NightBusy(f"night {night} lost the store to another night")


def check_publish(conn: sa.Connection, night: int, served: int | None) -> None:
    """Publishing: this night must hold the lease and be newer than the served one."""
    held = current(conn)
    if held.night_id != night:
        raise NightBusy(
            f"night {night} no longer holds the store (held by night {held.night_id}): "
            "not published"
        )
    if served is not None and night <= served:
        raise NightBusy(f"night {night} is not newer than the served night {served}")


def release(conn: sa.Connection, night: int) -> None:
    conn.execute(
        sa.update(m.NightLease)
        .where(m.NightLease.id == 1, m.NightLease.night_id == night)
        .values(night_id=None, holder=None, expires_at=None)
    )
