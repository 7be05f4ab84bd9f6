"""The processor with a profile store that writes in the background (one batch in flight):
a batch whose write failed after ``apply`` returned is processed again, never lost."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.helpers import memory_engine

from personify.errors import Unavailable
from personify.storage import memory
from personify.storage.ports import ProfileChanges


class LosingStore(memory.MemoryProfileStore):
    """Accepts a batch, stores none of it, and says so at the next ``settle`` (what
    ``BackgroundProfileStore`` does when the writer process fails)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_next = False
        self.failure: Unavailable | None = None
        self.applied = 0

    def apply(self, changes: ProfileChanges, checkpoint: int | None = None) -> None:
        self.applied += 1
        if self.lose_next:
            self.lose_next = False
            self.failure = Unavailable("storing a batch of profiles failed: disk full")
            return
        super().apply(changes, checkpoint)

    def settle(self) -> None:
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure


def test_a_batch_whose_background_write_failed_is_processed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory, "MemoryProfileStore", LosingStore)
    p, _ = memory_engine()
    store = p.stores.profiles
    assert isinstance(store, LosingStore)

    def track(user: str, n: int) -> None:
        for i in range(n):
            p.send("track", {"userId": user, "event": "Product Viewed", "messageId": f"{user}{i}"})

    track("ann", 3)
    p.drain()
    before = store.checkpoint()
    store.lose_next = True
    track("bob", 2)
    with pytest.raises(Unavailable, match="disk full"):
        p.drain()  # the loss shows at the next settle; the processor rewinds
    assert store.checkpoint() == before
    p.drain()
    assert store.applied == 3  # ann's batch, bob's lost batch, bob's batch again
    bob = p.profile_by("user_id", "bob")
    assert bob["computed"]["event_counts"] == {"Product Viewed": 2}
    assert p.profile_by("user_id", "ann")["computed"]["event_counts"] == {"Product Viewed": 3}
    assert store.checkpoint() == p.stores.log.head()
    assert len(p.timeline(bob["profile_id"])) == 2  # events stored once


def test_the_log_is_minimized_only_once_the_batch_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A person who refuses analytics has their log payloads rewritten in minimal form; a
    batch redone after a failed background write must still read the full messages, so the
    rewrite waits until the batch's writes have landed."""
    calls: list[str] = []

    class Recording(memory.MemoryProfileStore):
        def settle(self) -> None:
            calls.append("settle")

    monkeypatch.setattr(memory, "MemoryProfileStore", Recording)
    p, _ = memory_engine()
    log = p.stores.log
    replace = log.replace

    def recorded(rows: Any) -> Any:
        calls.append("replace")
        return replace(rows)

    monkeypatch.setattr(log, "replace", recorded)
    p.send("identify", {"userId": "ann", "traits": {"consent": {"analytics": False}}})
    p.send("track", {"userId": "ann", "event": "Product Viewed"})
    assert p.processor.step() == 2
    assert "replace" in calls
    assert "settle" in calls[: calls.index("replace")]
