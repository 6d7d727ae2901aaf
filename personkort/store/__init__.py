"""The personkort store (SQLAlchemy 2; SQLite embedded, PostgreSQL in production)."""

from personkort.store.database import open_engine, store_url
from personkort.store.nights import NightWrite, begin_night, finish_night, write_night

__all__ = ["NightWrite", "begin_night", "finish_night", "open_engine", "store_url", "write_night"]
