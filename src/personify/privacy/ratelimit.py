"""Per-key token buckets for the public endpoints (collection, decisions, recommendations).

Each key gets a bucket of ``burst`` tokens refilled at ``rate`` per second; a request takes
one token or is refused with 429 and the seconds to wait. Buckets live in memory: a limit
per server process is what protects the process, and nothing needs to survive a restart.

>>> t = [0.0]
>>> limits = RateLimiter(rate=1.0, burst=2, now=lambda: t[0])
>>> [limits.take("k") for _ in range(3)]
[0.0, 0.0, 1.0]
>>> t[0] = 1.0
>>> limits.take("k")
0.0
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """Token buckets by key; ``take`` returns 0.0 when allowed, else the seconds to wait."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        now: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self._now = now
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        with self._lock:
            at = self._now()
            tokens, last = self._buckets.get(key, (self.burst, at))
            tokens = min(self.burst, tokens + (at - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, at)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, at)
                wait = (1.0 - tokens) / self.rate
            self._buckets.move_to_end(key)
            while len(self._buckets) > self._max_keys:  # forget the longest-idle keys
                self._buckets.popitem(last=False)
            return wait
