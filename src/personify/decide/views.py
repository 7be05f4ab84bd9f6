"""The people the decision path asks about, kept in memory until anything they are made of
changes.

A decision reads one person: the profile (``state.sqlite``), segment memberships
(``segments.sqlite``), model scores (``scores.sqlite``) and consent (``consent.sqlite``), four
reads and a JSON decode that cost more than the decision itself. Those files are written by
other processes (in ``personify serve`` the processing worker; batch scoring; the CLI), which
cannot tell this one, so :class:`PersonCache` asks SQLite instead
(:class:`~personify.storage.sqlite.watch.FileWatch`, one ``PRAGMA data_version`` per file):
while nothing was committed to any of them, a cached person is exactly what a fresh read
would return; after any commit the whole cache is dropped. A person is therefore never
served from before a change, at the price of fewer hits while events stream in.

The token is read before the person is, so a commit racing a read makes the next call drop
that entry rather than keep it. What depends on the clock rather than on the stores (the
lifecycle stage: ``lapsing`` after so many days without an order) is recomputed on each read.

>>> loads = []
>>> def load(pid):
...     loads.append(pid)
...     return Person({"profile_id": pid}, None)
>>> version = [1]
>>> cache = PersonCache(load, lambda: (version[0],), max_size=10)
>>> _ = cache.get("p1"); _ = cache.get("p1"); loads
['p1']
>>> version[0] = 2  # something was committed
>>> _ = cache.get("p1"); loads
['p1', 'p1']
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personify.config import Settings

WATCHED = ("state.sqlite", "segments.sqlite", "scores.sqlite", "consent.sqlite")
"""The files a profile view is read from (profiles and identities, memberships, scores,
consent), under ``data_dir`` with the ``sqlite`` state backend."""


def watched_files(settings: Settings) -> list[Path] | None:
    """The files to watch for these settings, or ``None`` when the state is not in SQLite
    files (the ``memory`` backend: nothing to watch, so nothing is cached)."""
    if settings.state_backend != "sqlite":
        return None
    return [settings.data_dir / name for name in WATCHED]


@dataclass(frozen=True)
class Person:
    """What a decision needs about the person asking: the profile view (read-only: it may be
    shared by concurrent decisions) and, when consent does not allow personalization, why."""

    view: dict[str, Any]
    withheld: str | None
    #: epoch seconds until which the view's lifecycle stage is known to hold (0: recompute)
    stage_until: float = 0.0


class PersonCache:
    """People by profile id, valid while ``token()`` does not change; bounded (least recently
    used go first). With ``token=None`` nothing is cached and every call loads."""

    def __init__(
        self,
        load: Callable[[str], Person],
        token: Callable[[], Hashable] | None,
        *,
        max_size: int,
    ) -> None:
        self._load = load
        self._token_of = token
        self._max = max(1, max_size)
        self._entries: OrderedDict[str, Person] = OrderedDict()
        self._token: Hashable = None
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def caching(self) -> bool:
        return self._token_of is not None

    def get(self, profile_id: str) -> Person:
        """The person for ``profile_id`` (raises what ``load`` raises, e.g. NotFound)."""
        if self._token_of is None:
            return self._load(profile_id)
        token = self._token_of()  # before the read: a racing commit then drops the entry
        with self._lock:
            if token != self._token:
                self._entries.clear()
                self._token = token
                self._generation += 1
            found = self._entries.get(profile_id)
            if found is not None:
                self._entries.move_to_end(profile_id)
                return found
            generation = self._generation
        person = self._load(profile_id)
        with self._lock:
            if generation == self._generation:  # else a newer token already dropped the rest
                self._entries[profile_id] = person
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return person

    def __len__(self) -> int:
        return len(self._entries)
