"""An in-process sliding-window rate limiter for the public validation endpoint.

Per process: each API process (uvicorn worker) keeps its own window, so N processes behind one
address allow up to N times the configured rate. That is enough to stop one client from
monopolising a process's CPU; a shared limit would need Redis."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from docsvc import errors


class SlidingWindowRateLimiter:
    """At most ``limit`` hits per client key in any ``window_seconds`` (a sliding log, not fixed
    buckets, so a burst straddling a minute boundary cannot double the rate)."""

    def __init__(self, limit: int, window_seconds: float = 60.0, *, max_clients: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be >= 1 and window_seconds > 0")
        self.limit = limit
        self.window = window_seconds
        self._max_clients = max_clients
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count one request for ``key``; ``None`` if allowed, else seconds until one would be."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                self._make_room(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return hits[0] + self.window - now
            hits.append(now)
            return None

    def check(self, key: str) -> None:
        """Count one request; ``RateLimitedError`` (429, with ``retry_after_seconds``) if over the limit."""
        wait = self.hit(key)
        if wait is not None:
            raise errors.RateLimitedError("too many validation requests from this address; try again later",
                                          limit=self.limit, window_seconds=self.window,
                                          retry_after_seconds=max(1, math.ceil(wait)))

    def _make_room(self, now: float) -> None:
        # Many distinct addresses (IPv6 makes them cheap) must not grow memory without bound:
        # forget idle clients first, then the longest-known ones.
        if len(self._hits) < self._max_clients:
            return
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
            del self._hits[key]
        while len(self._hits) >= self._max_clients:
            del self._hits[next(iter(self._hits))]
