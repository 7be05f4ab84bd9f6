"""What every converter shares: the item it yields, its counters, and table reading.

A converter turns one input file into raw Segment messages (plain dicts, camelCase keys, exactly
as an HTTP client would send them). It never validates or ingests; that happens downstream. A
record it cannot convert is yielded as an :class:`ImportProblem` instead, so nothing is dropped
silently and the CLI can write problems to a file to fix and replay.

>>> p = ImportProblem(line=3, reason="userId is empty: fill the id column", raw='{"id": ""}')
>>> isinstance(p, ImportProblem), p.line
(True, 3)
"""

from __future__ import annotations

import zipfile
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import orjson
import pandas as pd

from personify.errors import InvalidInput

TableKind = Literal["parquet", "csv", "xlsx"]

LIBRARY_NAME = "personify-import"
LIBRARY_VERSION = "1"

# The month-first style of the original UCI CSV export ("12/1/2010 8:26"), tried on dates
# written as text after ISO-8601 (see utc_times).
MONTH_FIRST_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")

_SUFFIXES: tuple[tuple[str, TableKind], ...] = (
    (".parquet", "parquet"),
    (".csv.gz", "csv"),
    (".csv", "csv"),
    (".xlsx", "xlsx"),
)


@dataclass(frozen=True)
class ImportProblem:
    """A record the converter could not turn into a message; nothing is silently dropped.

    ``line`` is the 1-based line (CSV, NDJSON) or row (xlsx, parquet) number in the file,
    ``reason`` says what was wrong and how to fix it, ``raw`` is the original record (JSON or
    text) so it can be fixed and replayed.
    """

    line: int
    reason: str
    raw: str


ConverterItem = dict[str, Any] | ImportProblem


@dataclass
class ImportStats:
    """Counters a converter fills in while iterating; the CLI prints them.

    ``extra`` holds converter-specific facts about the file (for example ``invoices``).
    """

    rows_read: int = 0
    messages: int = 0
    problems: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Converter(Protocol):
    """The shape every converter has, so the CLI can drive any of them."""

    stats: ImportStats

    def messages(self) -> Iterator[ConverterItem]:
        """Yield raw Segment messages and problems, in the order they should be ingested."""
        ...

    def total_hint(self) -> int:
        """How many items ``messages()`` will yield (messages plus problems), for progress."""
        ...


def table_kind(path: Path) -> TableKind:
    """The table format of ``path`` judged by its extension.

    >>> table_kind(Path("orders.csv.gz"))
    'csv'
    """
    name = path.name.lower()
    for suffix, kind in _SUFFIXES:
        if name.endswith(suffix):
            return kind
    known = ", ".join(suffix for suffix, _ in _SUFFIXES)
    raise InvalidInput(
        f"cannot read {path.name!r}: unknown file type",
        hint=f"use one of these extensions: {known}",
    )


def first_data_line(path: Path) -> int:
    """The 1-based line/row number of the first record: 2 below a header row, else 1."""
    return 1 if table_kind(path) == "parquet" else 2


def read_table(path: Path, *, required: Collection[str] = (), text: bool = False) -> pd.DataFrame:
    """Read a parquet, CSV (``.csv``, ``.csv.gz``) or xlsx file into a DataFrame.

    With ``text=True`` CSV and xlsx cells are read as the strings written in the file (empty
    cells become ``""``), so no identifier loses leading zeros or turns into a float; callers
    convert types themselves. Parquet is typed already and always read as stored.
    Raises :class:`InvalidInput` for a missing file, an unknown extension, an unreadable file or
    missing ``required`` columns.
    """
    kind = table_kind(path)
    if not path.is_file():
        raise InvalidInput(
            f"file not found: {path}", hint="check the path; it must point to a readable file"
        )
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        elif kind == "csv":
            frame = pd.read_csv(path, dtype=str, na_filter=False) if text else pd.read_csv(path)
        else:
            frame = pd.read_excel(path, dtype=str, na_filter=False) if text else pd.read_excel(path)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InvalidInput(
            f"cannot read {path.name} as {kind}: {exc}",
            hint=f"check that the file is a valid {kind} file",
        ) from exc
    missing = [column for column in required if column not in frame.columns]
    if missing:
        found = ", ".join(str(c) for c in frame.columns) or "none"
        raise InvalidInput(
            f"{path.name} is missing required column(s): {', '.join(missing)}",
            hint=f"columns found: {found}",
        )
    return frame


def import_context() -> dict[str, Any]:
    """A fresh ``context`` for imported messages, naming this importer as the library."""
    return {"library": {"name": LIBRARY_NAME, "version": LIBRARY_VERSION}}


def raw_json(record: Mapping[Any, Any]) -> str:
    """The record as compact JSON for :attr:`ImportProblem.raw`; odd values become strings.

    >>> raw_json({"a": 1, "b": float("nan")})
    '{"a":1,"b":null}'
    """
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(dict(record), default=str, option=option).decode()


def utc_iso(moment: datetime) -> str:
    """Format an aware datetime as UTC ISO-8601 with ``Z`` (microseconds only when present).

    >>> utc_iso(datetime(2011, 6, 1, 9, 30, tzinfo=UTC))
    '2011-06-01T09:30:00Z'
    """
    if moment.tzinfo is None:
        raise ValueError("utc_iso needs a timezone-aware datetime")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def text_column(column: pd.Series) -> pd.Series:
    """Cell values as stripped strings (integral floats lose their ``.0``); blanks become None.

    Cleans each distinct value once, so a column of half a million cells that repeats a few
    thousand values takes milliseconds.

    >>> text_column(pd.Series([" a ", "", None, 17850.0])).tolist()
    ['a', None, None, '17850']
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    cleaned = np.array([*(clean_text(v) for v in uniques.tolist()), None], dtype=object)
    return pd.Series(cleaned[codes], index=column.index, dtype=object)


def clean_text(value: object) -> str | None:
    """One cell as a stripped string (``17850.0`` becomes ``"17850"``); blank or NaN is None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float):
        return None if np.isnan(value) else str(int(value)) if value.is_integer() else str(value)
    return str(value)


def utc_times(column: pd.Series, timezone: str) -> pd.Series:
    """A column of dates as UTC instants (``datetime64[ns, UTC]``); unusable cells become NaT.

    Each cell is read on its own terms, so one odd cell never shifts or breaks the others: a
    time written with a UTC offset (``+05:00``, ``Z``) is that instant, and a time without one
    is a wall-clock time in ``timezone`` (see :func:`localize`). Text is parsed once per
    distinct value, trying ISO-8601, then the month-first style of the original UCI CSV export
    (``12/1/2010 8:26``), then anything dateutil understands (slow, so last). Dates outside
    what pandas can hold (years 1678 to 2261) count as unusable.

    >>> dates = pd.Series(["6/1/2011 9:30", "2011-06-01T09:30+05:00", "?"])
    >>> [str(t) for t in utc_times(dates, "Europe/London")]
    ['2011-06-01 08:30:00+00:00', '2011-06-01 04:30:00+00:00', 'NaT']
    """
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return pd.Series(column.dt.tz_convert("UTC"), index=column.index)
    if pd.api.types.is_datetime64_dtype(column):
        return pd.Series(localize(column.to_numpy(dtype="datetime64[ns]"), timezone), column.index)
    codes, uniques = pd.factorize(text_column(column), use_na_sentinel=True)
    wall, aware = _parse_dates([str(v) for v in uniques.tolist()])
    local = localize(np.where(aware, np.datetime64("NaT", "ns"), wall), timezone)
    instants = np.where(aware, wall, local.tz_localize(None).to_numpy(dtype="datetime64[ns]"))
    values = np.append(instants, np.datetime64("NaT", "ns"))[codes]
    return pd.Series(pd.DatetimeIndex(values).tz_localize("UTC"), index=column.index)


def localize(wall: np.ndarray[Any, Any], timezone: str) -> pd.DatetimeIndex:
    """Naive wall-clock times in ``timezone`` as UTC instants.

    An hour the autumn clock change repeats counts as summer time; an hour the spring change
    skips moves forward to the first time that exists.

    >>> localize(np.array(["2011-10-30T01:30"], dtype="datetime64[ns]"), "Europe/London")[0]
    Timestamp('2011-10-30 00:30:00+0000', tz='UTC')
    """
    every_dst = np.ones(len(wall), dtype=bool)
    local = pd.DatetimeIndex(wall).tz_localize(
        timezone, ambiguous=every_dst, nonexistent="shift_forward"
    )
    return local.tz_convert("UTC")


def _parse_dates(texts: list[str]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Each text as a naive datetime64 (UTC where it had an offset) and whether it had one."""
    wall = np.full(len(texts), np.datetime64("NaT", "ns"))
    aware = np.zeros(len(texts), dtype=bool)

    def keep(i: int, moment: object) -> None:
        if not isinstance(moment, datetime):  # NaT: unparseable
            return
        stamp = pd.Timestamp(moment)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        try:
            wall[i] = stamp.as_unit("ns").to_datetime64()
        except (OverflowError, ValueError):  # outside what datetime64[ns] can hold: unusable
            return
        aware[i] = moment.tzinfo is not None

    pending = []
    for i, text in enumerate(texts):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pending.append(i)
            continue
        keep(i, moment)
    for date_format in MONTH_FIRST_FORMATS:  # no offsets in these, so parse them all at once
        if not pending:
            break
        parsed = pd.to_datetime([texts[i] for i in pending], errors="coerce", format=date_format)
        wall[pending] = parsed.to_numpy(dtype="datetime64[ns]")
        pending = [i for i, missing in zip(pending, parsed.isna(), strict=True) if missing]
    for i in pending:  # anything else dateutil can read, one at a time
        keep(i, pd.to_datetime(texts[i], errors="coerce", format="mixed"))
    return wall, aware
