"""Convert the UCI Online Retail file (one row per invoice line) into Segment messages.

Each invoice becomes one ``track``: ``Order Completed``, or ``Order Refunded`` when its number
starts with ``C`` (a cancellation). Every line is kept as a product, in file order, including
exact duplicates and non-positive quantities or prices: the file is the record of what happened
and cleaning it is a downstream decision. Each customer also gets one ``identify`` (traits from
their first invoice) just before their first order. Guests (no CustomerID) stay anonymous, one
anonymous id per invoice, because nothing links two guest invoices to the same person.

Invoice times are UK wall-clock times; they are read as Europe/London and sent as UTC.
Message ids are derived from invoice and customer numbers, so re-importing is idempotent.

>>> conv = OnlineRetailConverter(Path("online_retail.parquet"))  # doctest: +SKIP
>>> first = next(iter(conv.messages()))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personify.events.importers.base import (
    ConverterItem,
    ImportProblem,
    ImportStats,
    first_data_line,
    import_context,
    naive_times,
    raw_json,
    read_table,
    text_column,
    utc_iso,
)

COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
SOURCE = "online-retail"
SHOP_TIMEZONE = "Europe/London"
CURRENCY = "GBP"


@dataclass
class _Invoices:
    """Valid lines grouped by invoice (lines of invoice ``i`` are ``starts[i]:ends[i]``)."""

    number: list[str]
    timestamp: list[str]
    customer: list[str | None]
    country: list[str | None]
    revenue: list[float]
    starts: list[int]
    ends: list[int]
    order: list[int]  # invoice indices sorted by (time, number)
    stock: list[str]
    name: list[str | None]
    quantity: list[int]
    price: list[float]


class OnlineRetailConverter:
    """Yields identifies and orders/refunds from an Online Retail parquet, CSV or xlsx file.

    Problems (lines with an unusable value, and the other lines of their invoice, held back so
    no order is sent half-complete) are yielded first, then messages in time order.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stats = ImportStats()
        self._plan: tuple[list[ImportProblem], _Invoices] | None = None

    def total_hint(self) -> int:
        """Items ``messages()`` will yield: problems + identifies + invoices."""
        problems, invoices = self._prepare()
        customers = {c for c in invoices.customer if c is not None}
        return len(problems) + len(customers) + len(invoices.number)

    def messages(self) -> Iterator[ConverterItem]:
        problems, inv = self._prepare()
        self.stats.messages = self.stats.problems = 0
        for problem in problems:
            self.stats.problems += 1
            yield problem
        identified: set[str] = set()
        for i in inv.order:
            user = inv.customer[i]
            if user is not None and user not in identified:
                identified.add(user)
                self.stats.messages += 1
                yield _identify(user, inv.country[i], inv.timestamp[i])
            self.stats.messages += 1
            yield _invoice_message(inv, i)

    def _prepare(self) -> tuple[list[ImportProblem], _Invoices]:
        if self._plan is None:
            frame = read_table(self.path, required=COLUMNS, text=True)[list(COLUMNS)]
            lines = _clean_lines(frame)
            problems, good = _find_problems(frame, lines, first_data_line(self.path))
            invoices = _group(lines, good)
            self.stats.rows_read = len(frame)
            self.stats.extra = _facts(frame, lines, invoices)
            self._plan = problems, invoices
        return self._plan


def _identify(user: str, country: str | None, timestamp: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": f"{SOURCE}:customer:{user}",
        "userId": user,
        "timestamp": timestamp,
        "traits": {} if country is None else {"country": country},
        "context": import_context(),
    }


def _invoice_message(inv: _Invoices, i: int) -> dict[str, Any]:
    number, start, end = inv.number[i], inv.starts[i], inv.ends[i]
    refund = number.startswith("C")
    products = [
        {"product_id": code, "sku": code, "name": name, "quantity": qty, "price": price}
        for code, name, qty, price in zip(
            inv.stock[start:end],
            inv.name[start:end],
            inv.quantity[start:end],
            inv.price[start:end],
            strict=True,
        )
    ]
    revenue = inv.revenue[i]
    message: dict[str, Any] = {
        "type": "track",
        "event": "Order Refunded" if refund else "Order Completed",
        "messageId": f"{SOURCE}:{number}",
        "timestamp": inv.timestamp[i],
        "properties": {
            "order_id": number,
            "products": products,
            "revenue": abs(revenue) if refund else revenue,
            "currency": CURRENCY,
            "country": inv.country[i],
        },
        "context": import_context(),
    }
    user = inv.customer[i]
    if user is None:
        message["anonymousId"] = f"guest-{number}"
    else:
        message["userId"] = user
    return message


def _starts_with_c(column: pd.Series) -> np.ndarray[Any, np.dtype[np.bool_]]:
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    flags = np.array([*(str(v).startswith("C") for v in uniques.tolist()), False], dtype=bool)
    return flags[codes]


@dataclass
class _Lines:
    """The file's columns, cleaned to plain values (None/NaN/NaT where unusable)."""

    invoice: pd.Series
    stock: pd.Series
    name: pd.Series
    missing_name: pd.Series
    quantity: pd.Series
    price: pd.Series
    customer: pd.Series
    guest: pd.Series
    country: pd.Series
    when: pd.Series
    is_utc: bool


def _clean_lines(frame: pd.DataFrame) -> _Lines:
    name = text_column(frame["Description"])
    missing_name = (name.isna() | (name == "nan")).astype(bool)
    when, is_utc = naive_times(frame["InvoiceDate"])
    return _Lines(
        invoice=text_column(frame["InvoiceNo"]),
        stock=text_column(frame["StockCode"]),
        name=name.where(~missing_name, None),
        missing_name=missing_name,
        quantity=pd.to_numeric(frame["Quantity"], errors="coerce"),
        price=pd.to_numeric(frame["UnitPrice"], errors="coerce"),
        customer=pd.to_numeric(frame["CustomerID"], errors="coerce"),
        guest=text_column(frame["CustomerID"]).isna(),
        country=text_column(frame["Country"]),
        when=when,
        is_utc=is_utc,
    )


def _find_problems(
    frame: pd.DataFrame, lines: _Lines, first_line: int
) -> tuple[list[ImportProblem], np.ndarray[Any, np.dtype[np.intp]]]:
    """Problems in line order, and the rows that are safe to convert."""
    checks = [
        (lines.invoice.isna(), "InvoiceNo is empty"),
        (lines.stock.isna(), "StockCode is empty"),
        (lines.quantity % 1 != 0, "Quantity must be a whole number"),
        (lines.when.isna(), "InvoiceDate is missing or not a date (write e.g. 2011-06-01 09:30)"),
        (~np.isfinite(lines.price), "UnitPrice must be a number"),
        (~lines.guest & (lines.customer % 1 != 0), "CustomerID must be a whole number or empty"),
    ]
    masks = [mask.to_numpy(dtype=bool) for mask, _ in checks]
    bad = np.logical_or.reduce(masks)
    invoice = lines.invoice.to_numpy(dtype=object)
    reasons: dict[int, str] = {}
    bad_lines: dict[str, list[int]] = {}
    for row in np.flatnonzero(bad).tolist():
        reasons[row] = "; ".join(r for m, (_, r) in zip(masks, checks, strict=True) if m[row])
        if invoice[row] is not None:
            bad_lines.setdefault(invoice[row], []).append(first_line + row)
    held = lines.invoice.isin(list(bad_lines)).to_numpy(dtype=bool) & ~bad
    for row in np.flatnonzero(held).tolist():
        reasons[row] = (
            f"invoice {invoice[row]} is held back because line(s) {bad_lines[invoice[row]]} "
            "are unusable; fix them and re-import the whole invoice"
        )
    rows = sorted(reasons)
    records = frame.iloc[rows].to_dict("records")
    problems = [
        ImportProblem(line=first_line + row, reason=reasons[row], raw=raw_json(record))
        for row, record in zip(rows, records, strict=True)
    ]
    return problems, np.flatnonzero(~bad & ~held)


def _group(lines: _Lines, good: np.ndarray[Any, np.dtype[np.intp]]) -> _Invoices:
    """Group the good rows by invoice, keeping file order inside each invoice."""
    if len(good) == 0:
        return _Invoices([], [], [], [], [], [], [], [], [], [], [], [])
    codes, numbers = pd.factorize(lines.invoice.to_numpy(dtype=object)[good])
    order = np.argsort(codes, kind="stable")
    rows, codes = good[order], codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    first = np.minimum.reduceat(lines.when.to_numpy(dtype="datetime64[ns]")[rows], starts)
    utc = pd.DatetimeIndex(first)
    if not lines.is_utc:
        every_dst = np.ones(len(utc), dtype=bool)  # an ambiguous autumn hour counts as BST
        utc = utc.tz_localize(SHOP_TIMEZONE, ambiguous=every_dst, nonexistent="shift_forward")
    utc = utc.tz_localize("UTC") if utc.tz is None else utc.tz_convert("UTC")
    amount = (lines.quantity * lines.price).to_numpy(dtype=float)[rows]
    buyer = pd.Series(lines.customer.to_numpy()[rows]).groupby(codes).first()
    keys = utc.asi8.tolist()
    number = [str(n) for n in numbers]
    return _Invoices(
        number=number,
        timestamp=[utc_iso(t) for t in utc.to_pydatetime()],
        customer=[None if pd.isna(c) else str(int(c)) for c in buyer.tolist()],
        country=lines.country.to_numpy(dtype=object)[rows][starts].tolist(),
        revenue=[round(r, 2) for r in np.add.reduceat(amount, starts).tolist()],
        starts=starts.tolist(),
        ends=[*starts[1:].tolist(), len(rows)],
        order=sorted(range(len(number)), key=lambda i: (keys[i], number[i])),
        stock=lines.stock.to_numpy(dtype=object)[rows].tolist(),
        name=lines.name.to_numpy(dtype=object)[rows].tolist(),
        quantity=lines.quantity.to_numpy()[rows].astype(np.int64).tolist(),
        price=lines.price.to_numpy(dtype=float)[rows].tolist(),
    )


def _facts(frame: pd.DataFrame, lines: _Lines, inv: _Invoices) -> dict[str, int]:
    """What the file holds, counted over every line as read (before any problem is set aside)."""
    refunds = sum(n.startswith("C") for n in inv.number)
    sizes = np.subtract(inv.ends, inv.starts)
    times = lines.when.groupby(lines.invoice.to_numpy(dtype=object)).nunique()
    return {
        "lines": len(frame),
        "invoices": int(lines.invoice.nunique()),
        "customers": int(lines.customer[~lines.guest].nunique()),
        "stock_codes": int(lines.stock.nunique()),
        "countries": int(lines.country.nunique()),
        "guest_lines": int(lines.guest.sum()),
        "duplicate_lines": int(frame.duplicated().sum()),
        "cancellation_lines": int(_starts_with_c(lines.invoice).sum()),
        "nonpositive_quantity_lines": int((lines.quantity <= 0).sum()),
        "nonpositive_price_lines": int((lines.price <= 0).sum()),
        "missing_descriptions": int(lines.missing_name.sum()),
        "orders": len(inv.number) - refunds,
        "refunds": refunds,
        "max_lines_per_invoice": int(sizes.max()) if len(sizes) else 0,
        "invoices_with_several_times": int((times > 1).sum()),
    }
