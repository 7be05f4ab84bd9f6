"""Converters that turn files into raw Segment messages for the engine to ingest.

Each converter reads one file and yields plain message dicts (camelCase keys, exactly as an
HTTP client would send them) or :class:`ImportProblem` for a record it could not convert, so
nothing is dropped silently. It fills :class:`ImportStats` as it goes and can say up front how
many items it will yield (``total_hint``) for a progress bar. Validation and ingestion happen
elsewhere; converters never write anything.

>>> from pathlib import Path
>>> conv = NdjsonConverter(Path("export.ndjson"))
>>> conv.stats.messages
0

- :class:`OnlineRetailConverter`: the UCI Online Retail file -> identifies + orders/refunds.
- :class:`CustomerCsvConverter`: a customer table -> one identify per row.
- :class:`NdjsonConverter`: newline-delimited Segment JSON, passed through.
"""

from personify.events.importers.base import (
    Converter,
    ConverterItem,
    ImportProblem,
    ImportStats,
    read_table,
)
from personify.events.importers.customers_csv import CustomerCsvConverter
from personify.events.importers.ndjson import NdjsonConverter
from personify.events.importers.online_retail import OnlineRetailConverter

__all__ = [
    "Converter",
    "ConverterItem",
    "CustomerCsvConverter",
    "ImportProblem",
    "ImportStats",
    "NdjsonConverter",
    "OnlineRetailConverter",
    "read_table",
]
