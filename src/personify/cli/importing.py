"""``personify import``: load files through the same validation and identity path."""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from personify.cli.common import console, friendly_errors, progress

app = typer.Typer(help="Import files: Online Retail, customer CSV, newline-delimited Segment JSON.")


def run_import(converter: Any, source: str, *, check_size: bool = False) -> dict[str, Any]:
    """Feed a converter's messages to the engine with progress bars; return a summary.

    ``check_size`` applies the HTTP per-message size limit, for files whose messages come
    as written by someone else (NDJSON); the table converters build their own messages.
    """
    from personify.events.importers.base import ImportProblem
    from personify.platform import build

    started = time.perf_counter()
    p = build()
    problems: list[dict[str, Any]] = []
    # The file line of each message, for converters that know it (``line``), or where it
    # comes from (``where``, for messages built from several lines): problems then name that
    # rather than a position inside an internal batch.
    lines = array("q")
    places: list[str] = []
    labelled = hasattr(converter, "where")
    try:
        with progress() as bars:
            task = bars.add_task("validating + storing", total=converter.total_hint())

            def items() -> Iterator[object]:
                for item in converter.messages():
                    bars.advance(task)
                    if isinstance(item, ImportProblem):
                        problems.append(
                            {
                                "payload": {"_line": item.line, "_raw": item.raw},
                                "reason": f"line {item.line}: {item.reason}",
                            }
                        )
                        continue
                    if labelled:
                        places.append(converter.where)
                    else:
                        lines.append(getattr(converter, "line", 0))
                    yield item

            try:
                result = p.ingest(
                    items(),
                    source,
                    check_size=check_size,
                    locate=places.__getitem__ if labelled else _locator(converter, lines),
                )
            finally:  # the lines set aside are kept even if ingestion fails
                if problems:
                    p.collector.quarantine_raw(problems, source)
            head = p.stores.log.head()
            ptask = bars.add_task("profiles + event store", total=head)
            while p.processor.position < head:
                p.processor.step()
                bars.update(ptask, completed=p.processor.position)
        summary = {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "quarantined": len(result.quarantined) + len(problems),
            "profiles": p.stores.profiles.count(),
            "seconds": round(time.perf_counter() - started, 2),
            **{f"file.{k}": v for k, v in converter.stats.extra.items()},
        }
    finally:
        p.close()
    table = Table(title=f"import from {source}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    return summary


def _locator(converter: Any, lines: array[int]) -> Callable[[int], str] | None:
    """``position -> "line N"`` for converters that record each message's line."""
    if not hasattr(converter, "line"):
        return None
    return lambda i: f"line {lines[i]}"


@app.command("online-retail")
@friendly_errors
def online_retail(path: Path = typer.Argument(..., help="The UCI Online Retail file.")) -> None:
    """Invoices become Order Completed, cancellations Order Refunded; guests stay anonymous."""
    from personify.events.importers.online_retail import OnlineRetailConverter
    from personify.facade import ONLINE_RETAIL_SOURCE

    run_import(OnlineRetailConverter(path), ONLINE_RETAIL_SOURCE)


@app.command("customers")
@friendly_errors
def customers(
    path: Path = typer.Argument(..., help="A CSV with one customer per row."),
    id_column: str | None = typer.Option(None, help="Column holding the userId."),
) -> None:
    """Each row becomes an identify call with the other columns as traits."""
    from personify.events.importers.customers_csv import CustomerCsvConverter
    from personify.facade import CUSTOMER_CSV_SOURCE

    run_import(CustomerCsvConverter(path, id_column=id_column), CUSTOMER_CSV_SOURCE)


@app.command("ndjson")
@friendly_errors
def ndjson(path: Path = typer.Argument(..., help="Newline-delimited Segment messages.")) -> None:
    """Each line is one Segment message; bad lines go to the quarantine with their number.

    A message over the HTTP size limit (32 KB by default) is quarantined, as /v1/batch does.
    """
    from personify.events.importers.ndjson import NdjsonConverter

    run_import(NdjsonConverter(path), "import:ndjson", check_size=True)
