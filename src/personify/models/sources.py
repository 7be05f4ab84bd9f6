"""Event sources for the feature queries: any frame or file shaped like the event store.

The feature SQL reads a relation with the event-store columns (``profile_id``, ``type``,
``event``, ``timestamp`` TIMESTAMPTZ, ``session_id``, ``payload`` JSON text). These helpers
register such a relation on a DuckDB connection, so features, labels and training run on a
pandas frame or the Online Retail file without a running server.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from personify.errors import InvalidInput, NotFound, Problem

REQUIRED = ("profile_id", "type", "event", "timestamp", "session_id", "payload")


def connect() -> Any:
    """An in-memory DuckDB connection in UTC (feature arithmetic is in UTC days)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def register_frame(con: Any, frame: pd.DataFrame, name: str = "events") -> str:
    """Expose a pandas frame of event rows as view ``name``; returns the name."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"the event frame lacks column(s) {', '.join(missing)}",
            hint=f"event rows need the columns {', '.join(REQUIRED)}",
            problems=[Problem(c, "missing") for c in missing],
        )
    con.register(f"{name}_raw", frame)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT profile_id, type, event, "
        f'CAST("timestamp" AS TIMESTAMPTZ) AS "timestamp", session_id, '
        f"CAST(payload AS VARCHAR) AS payload FROM {name}_raw"
    )
    return name


def online_retail_events(con: Any, path: Path, name: str = "events") -> str:
    """The UCI Online Retail file as event rows: one order (or refund) per invoice.

    Mirrors the importer (``events/importers/online_retail.py``) for the lines a customer
    model can use: customer-less lines are dropped (guests are not profiles), invoices are
    grouped, UK local times become UTC, ``C`` invoices are refunds with a positive revenue.
    Profile ids are the CustomerID as text. No sessions exist in this file.
    """
    if not path.is_file():
        raise NotFound(
            f"no Online Retail file at {path}",
            hint="point at online_retail.parquet (set PERSONIFY_DATASETS_DIR for the tests)",
        )
    quoted = "'" + str(path).replace("'", "''") + "'"  # a view cannot take a bound parameter
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {name} AS
        WITH lines AS (
          SELECT * FROM read_parquet({quoted}) WHERE CustomerID IS NOT NULL
            AND InvoiceNo IS NOT NULL
        ),
        inv AS (
          SELECT InvoiceNo, CAST(CAST(MIN(CustomerID) AS BIGINT) AS VARCHAR) AS profile_id,
                 MIN(InvoiceDate) AS local_time, ROUND(SUM(Quantity * UnitPrice), 2) AS revenue,
                 list(struct_pack(product_id := StockCode, quantity := Quantity,
                                  price := UnitPrice)) AS products
          FROM lines GROUP BY InvoiceNo
        )
        SELECT 'online-retail:' || InvoiceNo AS message_id, profile_id, 'track' AS type,
               CASE WHEN InvoiceNo LIKE 'C%' THEN 'Order Refunded' ELSE 'Order Completed' END
                 AS event,
               timezone('Europe/London', CAST(local_time AS TIMESTAMP)) AS "timestamp",
               CAST(NULL AS VARCHAR) AS session_id,
               CAST(to_json(struct_pack(properties := struct_pack(
                   order_id := InvoiceNo, revenue := ABS(revenue), products := products)))
                 AS VARCHAR) AS payload
        FROM inv
        """
    )
    return name


def cdnow_events(con: Any, path: Path, name: str = "events") -> str:
    """The CDNOW purchase file (fixed width: customer, sample id, YYYYMMDD, CDs, dollars).

    Each line becomes an ``Order Completed`` at noon UTC of its date with ``revenue`` = the
    dollar value; the profile id is the customer number.
    """
    if not path.is_file():
        raise NotFound(
            f"no CDNOW file at {path}",
            hint="point at CDNOW_sample.txt or CDNOW_master.txt (see the datasets README)",
        )
    frame = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=["customer", "sample", "date", "cds", "dollars"],
        dtype={"customer": str, "sample": str, "date": str},
    )
    when = pd.to_datetime(frame["date"], format="%Y%m%d", utc=True) + pd.Timedelta(hours=12)
    events = pd.DataFrame(
        {
            "profile_id": frame["customer"].str.lstrip("0"),
            "type": "track",
            "event": "Order Completed",
            "timestamp": when,
            "session_id": None,
            "payload": [
                f'{{"properties": {{"revenue": {float(v)}, "quantity": {int(n)}}}}}'
                for v, n in zip(frame["dollars"], frame["cds"], strict=True)
            ],
        }
    )
    return register_frame(con, events, name)


def open_event_store(path: Path) -> Any:
    """A read-only connection to an ``events.duckdb`` file (its ``events`` table is the source).

    DuckDB lets one process hold the file for writing; while ``personify serve`` runs, batch
    jobs must run in its worker or through the API instead.
    """
    if not path.is_file():
        raise NotFound(
            f"no event store at {path}",
            hint="collect or import events first (personify demo, personify import ...)",
        )
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        from personify.errors import Unavailable

        raise Unavailable(
            f"the event store {path} is locked by another process ({exc})",
            hint="stop `personify serve` before training from the command line",
        ) from exc
    con.execute("SET TimeZone = 'UTC'")
    return con


def with_survivors(
    con: Any, source: str, survivors: Mapping[str, str], name: str = "events_live"
) -> str:
    """A view of ``source`` whose merged-away profile ids read as their survivors.

    Event rows keep the profile id they were processed under; after identity merges a
    person's history is spread over several ids. Features, labels and scores must see one
    person as one profile, so batch jobs read this view. ``survivors`` maps each merged-away
    id to the live profile that absorbed it. Returns the view's name (``source`` itself when
    nothing was merged).
    """
    if not survivors:
        return source
    table = pd.DataFrame({"alias": list(survivors), "survivor": list(survivors.values())})
    con.register(f"{name}_aliases", table)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT "
        f"COALESCE(a.survivor, s.profile_id) AS profile_id, s.type, s.event, "
        f's."timestamp", s.session_id, s.payload FROM {source} AS s '
        f"LEFT JOIN {name}_aliases AS a ON a.alias = s.profile_id"
    )
    return name


def survivors_of(documents: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``{merged-away id: live survivor}`` from profile documents (following ``merged_into``)."""
    out: dict[str, str] = {}
    for pid, doc in documents.items():
        target, seen = doc.get("merged_into"), {pid}
        while target and target not in seen:
            seen.add(target)
            nxt = documents.get(target, {}).get("merged_into")
            if not nxt:
                break
            target = nxt
        if target:
            out[pid] = str(target)
    return out
