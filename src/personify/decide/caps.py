"""Frequency caps and dismissals: what a person has seen recently, and asked not to see.

Every served decision counts as an impression of its content and of its placement (a served
decision is the moment the page, email or app received the content). Counts live in memory,
bounded to the most recently active people, and are rebuilt from the decision log at start,
so caps survive a restart. Dismissals ("do not show again") are permanent per person and
content; they arrive from ``Content Dismissed`` events through the decision log.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from personify.decide.content import Caps

_KEEP_S = 7 * 86400.0  # the longest cap window


def describe_cap(window: str, most: int) -> str:
    return f"capped ({most} {window.replace('_', ' ')})"


class ImpressionMemory:
    """Recent impression times per person and per content or placement (thread-safe)."""

    def __init__(self, max_units: int = 100_000) -> None:
        self._max = max_units
        self._units: OrderedDict[str, dict[str, list[float]]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, unit: str, keys: Iterable[str], at: float) -> None:
        """One impression at ``at`` (epoch seconds) for each key (``c:<content>``, ...)."""
        with self._lock:
            seen = self._units.get(unit)
            if seen is None:
                seen = self._units[unit] = {}
                if len(self._units) > self._max:
                    self._units.popitem(last=False)
            else:
                self._units.move_to_end(unit)
            for key in keys:
                times = seen.setdefault(key, [])
                insort(times, at)  # kept sorted even if a clock steps back
                if times[0] < at - _KEEP_S:
                    del times[: bisect_left(times, at - _KEEP_S)]

    def seen(self, unit: str) -> Mapping[str, list[float]] | None:
        """The impression times of one person by key (``None``: none recorded).

        Read without copying: a concurrent :meth:`record` can at worst make one check miss
        the impression being recorded at that instant.
        """
        return self._units.get(unit)


def blocked(seen: Mapping[str, list[float]], key: str, caps: Caps, now: float) -> str | None:
    """Why ``key`` may not be shown again now, given one person's impressions (``None``: it may)."""
    times = seen.get(key)
    if not times or not caps.limits:
        return None
    for window, most, name in caps.limits:
        if len(times) - bisect_left(times, now - window) >= most:
            return describe_cap(name, most)
    return None


class DismissMemory:
    """Content each person dismissed; never shown to them again (if it is dismissible)."""

    def __init__(self) -> None:
        self._by_unit: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def add(self, unit: str, content: str) -> None:
        with self._lock:
            self._by_unit.setdefault(unit, set()).add(content)

    def of(self, unit: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._by_unit.get(unit, ()))
