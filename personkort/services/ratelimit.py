"""A per-caseworker limit on lookups: mass reading of cards is what auditors look for first.

A sliding window of the last minute per caseworker, in this process. With several API worker
processes each keeps its own window, so the effective limit is the setting times the number of
workers (docs/architecture.md).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LookupLimiter:
    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, window: float = 60.0
    ) -> None:
        self.per_minute = per_minute  # 0: no limit
        self.window = window
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, who: str) -> int:
        """0 if ``who`` may look up now (and count it), else the seconds until they may."""
        if self.per_minute <= 0:
            return 0
        now = self._clock()
        with self._lock:
            seen = self._seen.setdefault(who, deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.per_minute:
                return max(1, int(seen[0] + self.window - now + 0.999))
            seen.append(now)
            if len(self._seen) > 100_000:  # forget idle caseworkers, not busy ones
                for key in [k for k, v in self._seen.items() if not v]:
                    del self._seen[key]
            return 0
