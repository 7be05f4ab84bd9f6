"""How much the HTTP collector may run ahead of processing.

Profiles (and segment memberships) should be current within a second or two of the
acknowledgment, so the collector waits while the backlog is too long. A fixed number of
messages is the wrong unit: a worker that also evaluates fifty segments clears a few thousand
messages a second, one without them several times more. The collector therefore also bounds
the backlog in *time*: the waiting messages divided by the rate the processor was seen to clear
them recently.
"""

from __future__ import annotations

import time


class DrainRate:
    """The processor's recent rate (messages per second while it had work), as seen from the
    collector through its position; ``None`` until it has been busy for ``window`` seconds."""

    def __init__(self, window: float = 0.5) -> None:
        self.window = window
        self.rate: float | None = None
        self._at: float | None = None
        self._position = 0

    def observe(self, position: int, lag: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._at is None or lag == 0:
            # idle (or first sight): the next window starts here
            self._at, self._position = now, position
            return
        elapsed = now - self._at
        if elapsed < self.window:
            return
        seen = max(position - self._position, 0) / elapsed
        self.rate = seen if self.rate is None else 0.5 * self.rate + 0.5 * seen
        self._at, self._position = now, position

    def limit(self, most: int, seconds: float, least: int) -> int:
        """The backlog to allow: at most ``most`` messages, and at most ``seconds`` of work at
        the observed rate (but never below ``least``, so collection always moves)."""
        if self.rate is None or seconds <= 0:
            return most
        return min(most, max(least, int(self.rate * seconds)))
