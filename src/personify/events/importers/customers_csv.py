"""Convert a table of customers (CSV, xlsx or parquet) into one ``identify`` per row.

The user id comes from ``id_column`` (or the first of :data:`ID_COLUMNS` present); every other
non-empty cell becomes a trait. CSV and xlsx cells are text, so numbers written as numbers
(``42``, ``3.5``) become JSON numbers while anything else, including ids with leading zeros
such as ``"007"``, stays a string. An ``updated_at`` or ``timestamp`` column, when present,
dates the message (ISO-8601; without an offset it is taken as UTC).

The message id is the source name, file name, line number and a hash of the row, so
re-importing the same file is idempotent while an edited row becomes a new message.

>>> conv = CustomerCsvConverter(Path("customers.csv"))  # doctest: +SKIP
>>> next(iter(conv.messages()))["traits"]  # doctest: +SKIP
{'email': 'ada@example.com', 'orders': 3}
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personify.errors import InvalidInput
from personify.events.importers.base import (
    ConverterItem,
    ImportProblem,
    ImportStats,
    clean_text,
    first_data_line,
    import_context,
    raw_json,
    read_table,
    table_kind,
    text_column,
    utc_iso,
)

ID_COLUMNS = ("user_id", "userId", "customer_id", "customerID", "CustomerID", "id")
TIMESTAMP_COLUMNS = ("updated_at", "timestamp")

_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+")


@dataclass(frozen=True)
class _Layout:
    """Which columns play which role in the table."""

    id_column: str
    stamp_column: str | None
    parse_numbers: bool


class CustomerCsvConverter:
    """Yields one ``identify`` (or one :class:`ImportProblem`) per row of a customer table."""

    def __init__(self, path: Path, id_column: str | None = None, source_name: str = "csv") -> None:
        self.path = path
        self.id_column = id_column
        self.source_name = source_name
        self.stats = ImportStats()
        self._frame: pd.DataFrame | None = None
        self.line = 0  # the file line of the item last yielded

    def total_hint(self) -> int:
        """Items ``messages()`` will yield: one per data row."""
        return len(self._read())

    def messages(self) -> Iterator[ConverterItem]:
        frame = self._read()
        stamp_column = next((c for c in TIMESTAMP_COLUMNS if c in frame.columns), None)
        layout = _Layout(
            id_column=self._find_id_column(frame),
            stamp_column=stamp_column,
            parse_numbers=table_kind(self.path) != "parquet",
        )
        stamps = _parse_times(frame[stamp_column]) if stamp_column else [None] * len(frame)
        first_line = first_data_line(self.path)
        self.stats = ImportStats(extra={"missing_ids": 0, "bad_timestamps": 0})
        for index, record in enumerate(frame.to_dict("records")):
            self.stats.rows_read += 1
            self.line = first_line + index  # the file line of the item yielded next
            item = self._convert(self.line, record, layout, stamps[index])
            if isinstance(item, ImportProblem):
                self.stats.problems += 1
            else:
                self.stats.messages += 1
            yield item

    def _convert(
        self, line: int, record: dict[Hashable, Any], layout: _Layout, stamp: str | None
    ) -> ConverterItem:
        raw = raw_json(record)
        user = clean_text(record[layout.id_column])
        reasons = []
        if user is None:
            self.stats.extra["missing_ids"] += 1
            reasons.append(f"the id column {layout.id_column!r} is empty: fill it in")
        column = layout.stamp_column
        if column is not None and stamp is None and clean_text(record[column]) is not None:
            self.stats.extra["bad_timestamps"] += 1
            reasons.append(f"{column} is not an ISO-8601 date (write e.g. 2024-05-01T12:00:00Z)")
        if user is None or reasons:
            return ImportProblem(line=line, reason="; ".join(reasons), raw=raw)
        skip = {layout.id_column, column}
        traits = {
            str(key): value
            for key, cell in record.items()
            if key not in skip and (value := _trait_value(cell, layout.parse_numbers)) is not None
        }
        digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
        message: dict[str, Any] = {
            "type": "identify",
            "messageId": f"{self.source_name}:{self.path.name}:{line}:{digest}",
            "userId": user,
            "traits": traits,
            "context": import_context(),
        }
        if stamp is not None:
            message["timestamp"] = stamp
        return message

    def _read(self) -> pd.DataFrame:
        if self._frame is None:
            required = [self.id_column] if self.id_column else []
            frame = read_table(self.path, required=required, text=True)
            repeated = ", ".join(_repeated_columns(self.path, frame))
            if repeated:
                raise InvalidInput(
                    f"{self.path.name} has these column names more than once: {repeated}",
                    hint="rename or remove the extra column(s) so each trait has one column",
                )
            self._frame = frame
        return self._frame

    def _find_id_column(self, frame: pd.DataFrame) -> str:
        if self.id_column is not None:
            return self.id_column
        for candidate in ID_COLUMNS:
            if candidate in frame.columns:
                return candidate
        found = ", ".join(str(c) for c in frame.columns) or "none"
        raise InvalidInput(
            f"{self.path.name} has no user id column (looked for {', '.join(ID_COLUMNS)}; "
            f"found: {found})",
            hint="name the column that holds the user id with id_column (--id-column)",
        )


def _repeated_columns(path: Path, frame: pd.DataFrame) -> list[str]:
    """Names the header of ``path`` holds more than once, in header order.

    pandas renames a repeated CSV/xlsx column (``email``, ``email.1``), which would store a
    trait ``email.1``; only the header as written tells such a copy from a real ``email.1``.
    """
    kind = table_kind(path)
    if kind == "parquet":
        names = [str(c) for c in frame.columns]
    else:
        read = pd.read_csv if kind == "csv" else pd.read_excel
        names = read(path, header=None, nrows=1, dtype=str, na_filter=False).iloc[0].tolist()
    counts = Counter(name for name in names if name)
    return [name for name, n in counts.items() if n > 1]


def _parse_times(column: pd.Series) -> list[str | None]:
    """Each cell as UTC ISO-8601, or None when it is blank or not a date."""
    values = column if pd.api.types.is_datetime64_any_dtype(column) else text_column(column)
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    return [None if pd.isna(t) else utc_iso(t.to_pydatetime()) for t in parsed]


def _trait_value(cell: object, parse_numbers: bool) -> Any:
    """A cell as a JSON-ready trait value, or None when the cell is empty."""
    if isinstance(cell, str):
        text = cell.strip()
        if not text:
            return None
        if parse_numbers and _INTEGER.fullmatch(text):
            return int(text)
        if parse_numbers and _DECIMAL.fullmatch(text):
            return float(text)
        return text
    if cell is None or cell is pd.NA or cell is pd.NaT:
        return None
    if isinstance(cell, bool | np.bool_):
        return bool(cell)
    if isinstance(cell, int | np.integer):
        return int(cell)
    if isinstance(cell, float | np.floating):
        return float(cell) if math.isfinite(cell) else None
    if isinstance(cell, datetime):
        return utc_iso(cell) if cell.tzinfo else cell.isoformat()
    if isinstance(cell, np.ndarray):
        return cell.tolist()
    return cell
