"""The personkort store (SQLAlchemy 2; SQLite embedded, PostgreSQL in production)."""

import sqlalchemy as sa

from personkort.store.database import open_engine, store_url
from personkort.store.lease import NightBusy
from personkort.store.nights import NightWrite, begin_night, finish_night, write_night

# What the edges name without importing SQLAlchemy themselves: an open store, and its failures.
Engine = sa.Engine
StoreError = sa.exc.SQLAlchemyError

__all__ = [
    "Engine",
    "NightBusy",
    "NightWrite",
    "StoreError",
    "begin_night",
    "finish_night",
    "open_engine",
    "store_url",
    "write_night",
]
