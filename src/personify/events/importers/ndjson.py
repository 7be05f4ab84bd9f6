"""Read newline-delimited Segment JSON (one message per line, optionally gzipped).

Lines are passed through as they are; validation happens when the engine ingests them. A line
that is not JSON, or is JSON but not an object, becomes an :class:`ImportProblem` carrying the
line itself so it can be fixed and replayed. Blank lines are skipped and counted.

>>> conv = NdjsonConverter(Path("export.ndjson.gz"))  # doctest: +SKIP
>>> [item for item in conv.messages() if isinstance(item, ImportProblem)]  # doctest: +SKIP
[ImportProblem(line=7, reason='not valid JSON: ...', raw='{"type": "track",')]
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from io import BufferedReader
from pathlib import Path

import orjson

from personify.errors import InvalidInput
from personify.events.importers.base import ConverterItem, ImportProblem, ImportStats

_BOM = b"\xef\xbb\xbf"
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number"}


class NdjsonConverter:
    """Yields each non-blank line of an NDJSON file as a message dict, or a problem."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stats = ImportStats()
        self._total: int | None = None
        self.line = 0  # the file line of the message last yielded (problems carry their own)

    def total_hint(self) -> int:
        """Items ``messages()`` will yield: one per non-blank line (counted with one pass)."""
        if self._total is None:
            self._total = sum(1 for _, line in self._lines() if line.strip())
        return self._total

    def messages(self) -> Iterator[ConverterItem]:
        self.stats = ImportStats(extra={"blank_lines": 0})
        for number, line in self._lines():
            text = line.strip()
            if not text:
                self.stats.extra["blank_lines"] += 1
                continue
            self.stats.rows_read += 1
            raw = text.decode("utf-8", errors="replace")
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                self.stats.problems += 1
                yield ImportProblem(line=number, reason=f"not valid JSON: {exc}", raw=raw)
                continue
            if not isinstance(value, dict):
                self.stats.problems += 1
                kind = _JSON_TYPES.get(type(value), "null" if value is None else "a boolean")
                reason = f"expected a JSON object (one Segment message per line), got {kind}"
                yield ImportProblem(line=number, reason=reason, raw=raw)
                continue
            self.stats.messages += 1
            self.line = number
            yield value

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """(1-based line number, line bytes), with a UTF-8 byte order mark removed."""
        if not self.path.is_file():
            raise InvalidInput(
                f"file not found: {self.path}", hint="check the path; it must be a readable file"
            )
        try:
            with _open(self.path) as handle:
                for number, line in enumerate(handle, start=1):
                    yield number, line.removeprefix(_BOM) if number == 1 else line
        except (OSError, EOFError) as exc:  # e.g. a truncated or corrupt .gz
            raise InvalidInput(
                f"cannot read {self.path.name}: {exc}",
                hint="check that the file is complete (and really gzip if it ends in .gz)",
            ) from exc


def _open(path: Path) -> gzip.GzipFile | BufferedReader:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")
