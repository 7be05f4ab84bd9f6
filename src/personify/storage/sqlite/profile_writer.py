"""Profile batches stored by a writer process (``personify.storage.sqlite.writer``).

:class:`BackgroundProfileStore` is the processing worker's profile store: ``apply`` encodes
a batch and hands it to the writer; a read waits for the batch in flight only when it asks
for a profile or identity that batch writes (every other row reads the same before and
after it), so the next batch's reads overlap the write. After a failed write every call
raises until the checkpoint is read again, which the processor does when it rewinds to
redo the batches from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from personify.storage.ports import ProfileChanges
from personify.storage.sqlite.profiles import SqlProfileStore, encode_changes
from personify.storage.sqlite.writer import WriterProcess


def database_of(url: str) -> Path:
    """The SQLite file of a database URL (a writer process needs one)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        raise ValueError(f"a writer process needs a SQLite file, not {url!r}")
    return Path(database)


class BackgroundProfileStore:
    """A :class:`SqlProfileStore` on a SQLite file whose writes run in a writer process."""

    def __init__(self, store: SqlProfileStore, url: str) -> None:
        self.inner = store
        self.writer = WriterProcess("profiles", database_of(url))
        # What the batch in flight writes: reads of anything else need not wait for it.
        self._writing_ids: set[str] = set()
        self._writing_keys: set[tuple[str, str]] = set()

    # -- writes -----------------------------------------------------------------------------
    def apply(self, changes: ProfileChanges, checkpoint: int | None = None) -> None:
        rows = encode_changes(changes)  # serialized here, while the previous batch is stored
        writer = self.writer
        with writer.lock:
            writer.submit((rows, checkpoint))
            self._writing_ids = {row[0] for row in rows.profiles}
            self._writing_keys = {(kind, value) for kind, value, _ in rows.identities}

    def settle(self) -> None:
        self._settled()

    def delete_profiles(self, profile_ids: Iterable[str]) -> int:
        self._settled()
        return self.inner.delete_profiles(profile_ids)

    def merged_into(self, profile_ids: Iterable[str]) -> list[str]:
        # Only an erasure asks, rarely: wait for the batch in flight (as ``history`` does)
        # rather than reason about which of its rows name these in ``merged_into``.
        self._settled()
        return self.inner.merged_into(profile_ids)

    # -- reads ------------------------------------------------------------------------------
    # After a failed write every call raises until the checkpoint is read again: nothing may
    # be decided from a store that lacks a batch the processor thinks is there.
    def _settled(self) -> None:
        with self.writer.lock:
            self.writer.wait()
            self.writer.check()

    def get_many(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(profile_ids)
        writer = self.writer
        with writer.lock:
            if writer.in_flight and not self._writing_ids.isdisjoint(ids):
                writer.wait()  # the batch in flight writes one of them
            writer.check()
        return self.inner.get_many(ids)

    def lookup_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        asked = list(keys)
        writer = self.writer
        with writer.lock:
            if writer.in_flight and not self._writing_keys.isdisjoint(asked):
                writer.wait()
            writer.check()
        return self.inner.lookup_many(asked)

    def checkpoint(self) -> int:
        """The stored checkpoint; reading it is resuming from it (a failure is forgotten)."""
        with self.writer.lock:
            self.writer.recover()
        return self.inner.checkpoint()

    def history(self, profile_id: str) -> dict[str, list[dict[str, Any]]]:
        self._settled()
        return self.inner.history(profile_id)

    def count(self) -> int:
        self._settled()
        return self.inner.count()

    def scan(self, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        pages = self.inner.scan(batch_size)
        while True:
            self._settled()  # each page reads the file anew: after the batch in flight
            page = next(pages, None)
            if page is None:
                return
            yield page

    def close(self) -> None:
        self.writer.close()
        self.inner.close()


def background(store: SqlProfileStore) -> BackgroundProfileStore | SqlProfileStore:
    """``store`` with its writes in a writer process, when it is a SQLite file."""
    try:
        database_of(store.url)
    except ValueError:
        return store
    return BackgroundProfileStore(store, store.url)
