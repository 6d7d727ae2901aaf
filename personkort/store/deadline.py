"""A bound on how long a caller waits for the store, whatever the database does.

A database that hangs (a stopped server, a dead network path that still ACKs) answers nothing,
and no server-side timeout fires: only the caller can stop waiting. The read runs on a bounded
pool of threads and the caller waits at most ``seconds``; after that it gets ``StoreTimeout``
(a store error: the lookup answers 503) while the stuck read finishes or fails on its own when
the database comes back. With every worker stuck, new reads queue and time out the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

import sqlalchemy as sa

T = TypeVar("T")


class StoreTimeout(sa.exc.SQLAlchemyError):
    """The store did not answer within the deadline."""


class Deadline:
    def __init__(self, seconds: float, workers: int = 32) -> None:
        self.seconds = seconds
        self._pool = (
            ThreadPoolExecutor(workers, thread_name_prefix="store-read") if seconds > 0 else None
        )

    def run(self, read: Callable[[], T]) -> T:
        if self._pool is None:
            return read()
        future = self._pool.submit(read)
        try:
            return future.result(timeout=self.seconds)
        except FutureTimeout:
            future.cancel()  # a queued read never starts; a running one is left to finish
            raise StoreTimeout(f"the store did not answer within {self.seconds} s") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
