"""Embedded adapters on SQLite files (operational state, the durable log, the quarantine)."""

from personify.storage.sqlite.log import SqliteEventLog
from personify.storage.sqlite.profiles import SqlProfileStore
from personify.storage.sqlite.quarantine import SqliteQuarantineStore

__all__ = ["SqlProfileStore", "SqliteEventLog", "SqliteQuarantineStore"]
