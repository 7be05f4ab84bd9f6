"""Where each message id sits in the log, kept in memory instead of a unique SQL index.

Message ids are random (UUIDs from the clients), so a unique B-tree index on them dirties
about one random page per message: measured on this project's 2-core VM at 600,000 logged
messages, 15 of the 21 µs a message cost to publish went to that index, and the share grows
with the log. This index keeps a 64-bit hash per message instead: a sorted NumPy array for
most of them and a dict for the recent ones, about 16 bytes a message. A hash only names
*candidate* offsets; the caller reads those rows and compares the ids, so a collision can
never make a new message look like a duplicate.

Python's ``hash()`` of a string is randomized per process, which is fine: the index is
rebuilt from the log whenever a process opens it, and never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

_EMPTY = np.empty(0, dtype=np.int64)


class MessageIndex:
    def __init__(self, hasher: Callable[[str], int] = hash) -> None:
        self._hash = hasher
        self._base_h = _EMPTY  # sorted, unique hashes
        self._base_o = _EMPTY  # their offsets
        self._recent: dict[int, int] = {}  # hashes not yet merged into the arrays
        self._more: dict[int, list[int]] = {}  # further offsets of a hash already present
        self.head = 0  # the highest offset indexed

    def __len__(self) -> int:
        return len(self._base_h) + len(self._recent) + sum(map(len, self._more.values()))

    def hashes(self, message_ids: Iterable[str]) -> list[int]:
        return [self._hash(m) for m in message_ids]

    def candidates(self, hashes: Sequence[int]) -> list[list[int]]:
        """For each hash, the offsets of logged messages whose id has that hash."""
        out: list[list[int]] = [[] for _ in hashes]
        base_h, recent, more = self._base_h, self._recent, self._more
        if len(base_h):
            wanted = np.fromiter(hashes, dtype=np.int64, count=len(hashes))
            at = np.minimum(np.searchsorted(base_h, wanted), len(base_h) - 1)
            for i in np.flatnonzero(base_h[at] == wanted).tolist():
                out[i].append(int(self._base_o[at[i]]))
        if recent:
            get = recent.get
            for i, h in enumerate(hashes):
                offset = get(h)
                if offset is not None:
                    out[i].append(offset)
        if more:
            for i, h in enumerate(hashes):
                if h in more:
                    out[i].extend(more[h])
        return out

    def add(self, entries: Iterable[tuple[int, int]]) -> None:
        """Index ``(hash, offset)`` pairs of messages just made durable, in offset order."""
        recent, more = self._recent, self._more
        pending = list(entries)
        if not pending:
            return
        known = self.candidates([h for h, _ in pending])
        for (h, offset), found in zip(pending, known, strict=True):
            if found or h in recent:
                more.setdefault(h, []).append(offset)
            else:
                recent[h] = offset
            self.head = max(self.head, offset)
        # Merge geometrically: each merge sorts everything, so the recent part may grow to
        # a quarter of the base before it is folded in (amortized O(log n) per message).
        if len(recent) > max(50_000, len(self._base_h) // 4):
            self._merge()

    def load(self, chunks: Iterable[Sequence[tuple[int, str]]]) -> None:
        """Index the ``(offset, message_id)`` rows already in the log (at open, when empty).

        Built as arrays chunk by chunk and sorted once: a dict of every id first would
        need several times the memory.
        """
        assert not len(self), "load() fills an empty index"
        hasher = self._hash
        hashes, offsets = [], []
        for rows in chunks:
            hashes.append(np.fromiter((hasher(m) for _, m in rows), np.int64, len(rows)))
            offsets.append(np.fromiter((o for o, _ in rows), np.int64, len(rows)))
        if not hashes:
            return
        h, o = np.concatenate(hashes), np.concatenate(offsets)
        if not len(h):
            return
        order = np.argsort(h, kind="stable")
        h, o = h[order], o[order]
        repeated = np.flatnonzero(h[1:] == h[:-1]) + 1  # a hash shared by several ids
        for i in repeated.tolist():
            self._more.setdefault(int(h[i]), []).append(int(o[i]))
        keep = np.ones(len(h), dtype=bool)
        keep[repeated] = False
        self._base_h, self._base_o = h[keep], o[keep]
        self.head = int(o.max())

    def _merge(self) -> None:
        recent = self._recent
        h = np.concatenate([self._base_h, np.fromiter(recent, np.int64, len(recent))])
        o = np.concatenate([self._base_o, np.fromiter(recent.values(), np.int64, len(recent))])
        order = np.argsort(h, kind="stable")
        self._base_h, self._base_o = h[order], o[order]
        self._recent = {}
