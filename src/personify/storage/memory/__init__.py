"""In-memory adapters: they define the expected behaviour of every port (not durable)."""

from personify.storage.memory.adapters import (
    LruCache,
    MemoryEventLog,
    MemoryEventStore,
    MemoryProfileStore,
    MemoryQuarantineStore,
)

__all__ = [
    "LruCache",
    "MemoryEventLog",
    "MemoryEventStore",
    "MemoryProfileStore",
    "MemoryQuarantineStore",
]
