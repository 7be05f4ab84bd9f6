"""Embedded event store on a DuckDB file (columnar: fast appends in bulk and analytics)."""

from personify.storage.duckdb.events import DuckDbEventStore

__all__ = ["DuckDbEventStore"]
