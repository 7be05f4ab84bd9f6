"""Where interactions come from: the event store (Segment messages) or the Online Retail file.

Both produce the same *event frame* (``user_id``, ``item_id``, ``kind``, ``timestamp``,
``order_id``) plus catalogue rows, so every recommender trains the same way on either.

Segment e-commerce events map to kinds as follows: ``Product Viewed`` is a view,
``Product Added`` an add-to-cart (both name one product in ``properties``), and
``Order Completed`` a purchase of every entry of ``properties.products``. A product is
identified by ``product_id``, else ``sku``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from personify.errors import InvalidInput, NotFound, Unavailable
from personify.recs.data import Catalogue

EVENT_KIND = {
    "Product Viewed": "view",
    "Product Clicked": "view",
    "Product Added": "add_to_cart",
    "Order Completed": "purchase",
}
RETAIL_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)


# -- the event store -------------------------------------------------------------------------
def product_events(rows: Iterable[Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Event-store or timeline rows -> (event frame, catalogue rows seen in the events).

    A row needs ``profile_id``, ``event``, ``timestamp`` and either ``payload`` (the stored
    message JSON) or ``properties`` (timeline rows). Rows of other events are skipped.
    """
    items: dict[str, dict[str, Any]] = {}
    events = list(product_event_tuples(rows, items))
    frame = pd.DataFrame(events, columns=["user_id", "item_id", "kind", "timestamp", "order_id"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    catalogue = pd.DataFrame(
        list(items.values()), columns=["item_id", "title", "category", "price"]
    )
    return frame, catalogue


def product_event_tuples(
    rows: Iterable[Mapping[str, Any]], items: dict[str, dict[str, Any]] | None = None
) -> Iterator[tuple[str, str, str, str, str]]:
    """``(user, item, kind, timestamp, order)`` per product in each row (no pandas: serving
    calls this per request). ``items`` collects what the events say about each product."""
    for n, row in enumerate(rows):
        kind = EVENT_KIND.get(str(row.get("event")))
        if kind is None:
            continue
        props = _properties(row)
        # an order without an id counts once per message (each row is its own order)
        order = str(props.get("order_id") or row.get("message_id") or f"row-{n}")
        products = props.get("products") if kind == "purchase" else [props]
        if not isinstance(products, list):
            continue
        for product in products:
            if not isinstance(product, Mapping):
                continue
            item = product.get("product_id") or product.get("sku")
            if item is None or item == "":
                continue
            if items is not None:
                _remember(items, str(item), product)
            yield str(row["profile_id"]), str(item), kind, str(row["timestamp"]), order


def _properties(row: Mapping[str, Any]) -> Mapping[str, Any]:
    if "properties" in row and isinstance(row["properties"], Mapping):
        return row["properties"]
    payload = row.get("payload")
    if isinstance(payload, str | bytes):
        payload = orjson.loads(payload)
    props = payload.get("properties") if isinstance(payload, Mapping) else None
    return props if isinstance(props, Mapping) else {}


def _remember(items: dict[str, dict[str, Any]], item: str, product: Mapping[str, Any]) -> None:
    """Keep the latest non-empty title, category and price seen for an item."""
    known = items.setdefault(
        item, {"item_id": item, "title": None, "category": None, "price": None}
    )
    name = product.get("name")
    if isinstance(name, str) and name:
        known["title"] = name
    category = product.get("category")
    if isinstance(category, str) and category:
        known["category"] = category
    price = product.get("price")
    if isinstance(price, int | float) and not isinstance(price, bool) and price >= 0:
        known["price"] = float(price)


def read_event_store(path: Path) -> list[dict[str, Any]]:
    """The product events stored in an ``events.duckdb`` file (no server may hold it)."""
    import duckdb

    if not path.is_file():
        raise NotFound(
            f"no event store at {path}",
            hint="import or collect events first, or train from a file (--online-retail PATH)",
        )
    names = ", ".join(f"'{e}'" for e in EVENT_KIND)
    sql = (
        "SELECT profile_id, event, strftime(\"timestamp\", '%Y-%m-%dT%H:%M:%S.%fZ') AS "
        f'"timestamp", message_id, payload FROM events WHERE event IN ({names})'
    )
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        raise Unavailable(
            f"the event store {path} is locked by another process ({exc})",
            hint="stop `personify serve` while training, or train from a file",
        ) from exc
    try:
        con.execute("SET TimeZone = 'UTC'")
        rel = con.execute(sql)
        columns = [d[0] for d in rel.description]
        return [dict(zip(columns, r, strict=True)) for r in rel.fetchall()]
    finally:
        con.close()


def follow_merges(
    frame: pd.DataFrame, survivors: Callable[[list[str]], Mapping[str, str]]
) -> pd.DataFrame:
    """Attribute events of merged-away profiles to the profile that absorbed them."""
    if frame.empty:
        return frame
    mapping = survivors(sorted(set(frame["user_id"])))
    out = frame.copy()
    out["user_id"] = out["user_id"].map(lambda u: mapping.get(u, u))
    return out


# -- UCI Online Retail -----------------------------------------------------------------------
def read_online_retail(path: Path) -> pd.DataFrame:
    """The file's lines that are purchases by a known customer (the reference protocol).

    Dropped: lines without CustomerID, cancellations (InvoiceNo starting with ``C``),
    Quantity <= 0 and UnitPrice <= 0. InvoiceDate stays UK local time, as in the file.
    """
    from personify.events.importers.base import read_table

    if not path.exists():
        raise NotFound(
            f"no Online Retail file at {path}",
            hint="point at online_retail.parquet (or its CSV/xlsx); PERSONIFY_DATASETS_DIR "
            "holds it for tests and benchmarks",
        )
    raw = read_table(path, required=RETAIL_COLUMNS)
    lines = pd.DataFrame(
        {
            "invoice": raw["InvoiceNo"].astype(str),
            "item_id": raw["StockCode"].astype(str).str.strip(),
            "title": raw["Description"].astype(str),
            "quantity": pd.to_numeric(raw["Quantity"], errors="coerce"),
            "timestamp": pd.to_datetime(raw["InvoiceDate"], errors="coerce"),
            "price": pd.to_numeric(raw["UnitPrice"], errors="coerce"),
            "customer": pd.to_numeric(raw["CustomerID"], errors="coerce"),
            "country": raw["Country"].astype(str),
        }
    )
    keep = (
        lines["customer"].notna()
        & ~lines["invoice"].str.startswith("C")
        & (lines["quantity"] > 0)
        & (lines["price"] > 0)
        & lines["timestamp"].notna()
    )
    lines = lines[keep].reset_index(drop=True)
    if lines.empty:
        raise InvalidInput(
            f"{path.name} has no usable purchase lines",
            hint="it needs lines with a CustomerID, Quantity > 0 and UnitPrice > 0",
        )
    lines["user_id"] = lines["customer"].astype(np.int64).astype(str)
    return lines


def retail_events(lines: pd.DataFrame) -> pd.DataFrame:
    """Online Retail lines as an event frame: one purchase per line, orders are invoices."""
    return pd.DataFrame(
        {
            "user_id": lines["user_id"],
            "item_id": lines["item_id"],
            "kind": "purchase",
            "timestamp": lines["timestamp"],
            "order_id": lines["invoice"],
        }
    )


def retail_catalogue(lines: pd.DataFrame) -> Catalogue:
    """One row per stock code: most frequent description, median price, a rough category.

    The file has no categories; the last word of the description ("... T-LIGHT HOLDER",
    "... MUG") names the kind of object and serves as one, which is enough for diversity.
    """
    named = lines[lines["title"].ne("nan")]
    counts = named.groupby(["item_id", "title"]).size().reset_index(name="n")
    counts = counts.sort_values(["item_id", "n", "title"], ascending=[True, False, True])
    titles = counts.drop_duplicates("item_id").set_index("item_id")["title"]
    prices = lines.groupby("item_id")["price"].median()
    frame = pd.DataFrame({"price": prices})
    frame["title"] = titles.reindex(frame.index)
    frame["category"] = frame["title"].map(_last_word)
    frame["text"] = frame["title"].fillna("")
    frame["in_stock"] = True
    return Catalogue.from_frame(frame.rename_axis("item_id").reset_index())


def retail_segments(lines: pd.DataFrame) -> dict[str, str]:
    """Each customer's country (the most frequent one on their lines)."""
    counts = lines.groupby(["user_id", "country"]).size().reset_index(name="n")
    counts = counts.sort_values(["user_id", "n", "country"], ascending=[True, False, True])
    first = counts.drop_duplicates("user_id")
    return dict(zip(first["user_id"], first["country"], strict=True))


def _last_word(title: object) -> str | None:
    if not isinstance(title, str) or not title.strip():
        return None
    return title.strip().split()[-1].upper()
