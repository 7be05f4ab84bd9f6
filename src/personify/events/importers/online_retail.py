"""Convert the UCI Online Retail file (one row per invoice line) into Segment messages.

Each invoice becomes one ``track``: ``Order Completed``, or ``Order Refunded`` when its number
starts with ``C`` (a cancellation). Every line is kept as a product, in file order, including
exact duplicates and non-positive quantities or prices: the file is the record of what happened
and cleaning it is a downstream decision. Each customer also gets one ``identify`` (traits from
their first invoice) just before their first order. Guests (no CustomerID) stay anonymous, one
anonymous id per invoice, because nothing links two guest invoices to the same person.

Invoice times are UK wall-clock times; they are read as Europe/London and sent as UTC (a time
written with a UTC offset is taken as that instant). Values that cannot be taken exactly are
problems, never quietly changed: a CustomerID must be written as plain digits (``17850``, or
``17850.0`` as spreadsheets store it), Quantity and UnitPrice must be below 2**53 in size, and an
invoice must belong to one customer. Message ids are derived from invoice and customer numbers,
so re-importing is idempotent.

>>> conv = OnlineRetailConverter(Path("online_retail.parquet"))  # doctest: +SKIP
>>> first = next(iter(conv.messages()))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
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
    clean_text,
    first_data_line,
    import_context,
    raw_json,
    read_table,
    text_column,
    utc_iso,
    utc_times,
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
# Numbers at or beyond 2**53 are no longer exact as floats: such a quantity or price is refused.
EXACT_LIMIT = 2**53
# A CustomerID as the file stores it: digits, or digits with a ".0" that a spreadsheet float adds.
# Anything else (leading zeros, signs, exponents) would be a different id once read as a number.
_PLAIN_ID = re.compile(r"(0|[1-9][0-9]*)(\.0+)?")


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
        # Where the message last yielded comes from, as a person finds it in the file (its
        # lines are grouped by invoice): problems found on collection are named by it.
        self.where = ""

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
                self.where = f"InvoiceNo {inv.number[i]} (identify of CustomerID {user})"
                yield _identify(user, inv.country[i], inv.timestamp[i])
            self.stats.messages += 1
            self.where = f"InvoiceNo {inv.number[i]}"
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
    customer: pd.Series  # the exact id as text; None for guests and unusable ids
    customer_problem: pd.Series  # why the id is unusable, else None
    guest: pd.Series
    country: pd.Series
    when: pd.Series  # UTC instants


def _clean_lines(frame: pd.DataFrame) -> _Lines:
    name = text_column(frame["Description"])
    missing_name = (name.isna() | (name == "nan")).astype(bool)
    customer, customer_problem = _customer_ids(frame["CustomerID"])
    return _Lines(
        invoice=text_column(frame["InvoiceNo"]),
        stock=text_column(frame["StockCode"]),
        name=name.where(~missing_name, None),
        missing_name=missing_name,
        quantity=pd.to_numeric(frame["Quantity"], errors="coerce"),
        price=pd.to_numeric(frame["UnitPrice"], errors="coerce"),
        customer=customer,
        customer_problem=customer_problem,
        guest=customer.isna() & customer_problem.isna(),
        country=text_column(frame["Country"]),
        when=utc_times(frame["InvoiceDate"], SHOP_TIMEZONE),
    )


def _customer_ids(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Each CustomerID as its exact text, and why it is unusable; checks each distinct id once."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    checked = [*(_customer_id(v) for v in uniques.tolist()), (None, None)]
    ids = np.array([c[0] for c in checked], dtype=object)[codes]
    problems = np.array([c[1] for c in checked], dtype=object)[codes]
    return pd.Series(ids, index=column.index), pd.Series(problems, index=column.index)


def _customer_id(value: object) -> tuple[str | None, str | None]:
    """``(id, None)``, ``(None, None)`` for a guest, or ``(None, why)`` for an unusable id.

    >>> _customer_id(17850.0), _customer_id("17850.0"), _customer_id(" ")
    (('17850', None), ('17850', None), (None, None))
    >>> _customer_id("00123")[1].split(" (")[0]
    "CustomerID '00123' is not plain digits"
    """
    if isinstance(value, float) and math.isfinite(value) and abs(value) >= EXACT_LIMIT:
        return None, (
            f"CustomerID {value!r} is stored as a floating-point number too large to hold an id "
            "exactly; store CustomerID as text or as whole numbers"
        )
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0:
        return str(value), None
    text = clean_text(str(value) if isinstance(value, float) and math.isfinite(value) else value)
    if text is None:
        return None, None
    match = _PLAIN_ID.fullmatch(text)
    if match is None:
        return None, (
            f"CustomerID {text!r} is not plain digits (read as a number, leading zeros, signs, "
            "exponents or fractions would change the id); write it as digits only, e.g. 17850"
        )
    return match.group(1), None


def _customer_conflicts(lines: _Lines) -> pd.Series:
    """For each line of an invoice credited to more than one customer, the reason; else None.

    A guest line counts as a customer of its own: crediting it to the named one would be a guess.
    """
    party = lines.customer.where(~lines.guest, "")
    pairs = pd.DataFrame({"invoice": lines.invoice, "party": party}).dropna().drop_duplicates()
    several = pairs[pairs["invoice"].duplicated(keep=False)]
    reasons = {
        invoice: (
            f"invoice {invoice} has lines for more than one customer ("
            + ", ".join(p or "no CustomerID" for p in parties)
            + "); an invoice belongs to one customer: correct the CustomerID of its lines, or "
            "give each customer's lines their own invoice number"
        )
        for invoice, parties in several.groupby("invoice", sort=False)["party"]
    }
    return lines.invoice.map(reasons).astype(object).where(lambda r: r.notna(), None)


def _find_problems(
    frame: pd.DataFrame, lines: _Lines, first_line: int
) -> tuple[list[ImportProblem], np.ndarray[Any, np.dtype[np.intp]]]:
    """Problems in line order, and the rows that are safe to convert."""
    checks = [
        (lines.invoice.isna(), "InvoiceNo is empty"),
        (lines.stock.isna(), "StockCode is empty"),
        (lines.quantity % 1 != 0, "Quantity must be a whole number"),
        (lines.quantity.abs() >= EXACT_LIMIT, f"Quantity is too large (limit {EXACT_LIMIT:,})"),
        (lines.when.isna(), "InvoiceDate is missing or not a date (write e.g. 2011-06-01 09:30)"),
        (~np.isfinite(lines.price), "UnitPrice must be a number"),
        (lines.price.abs() >= EXACT_LIMIT, f"UnitPrice is too large (limit {EXACT_LIMIT:,})"),
    ]
    masks = [mask.to_numpy(dtype=bool) for mask, _ in checks]
    # Reasons that name the offending value, one per line or None.
    named = [lines.customer_problem.to_numpy(), _customer_conflicts(lines).to_numpy()]
    bad = np.logical_or.reduce([*masks, *(pd.notna(n) for n in named)])
    invoice = lines.invoice.to_numpy(dtype=object)
    reasons: dict[int, str] = {}
    bad_lines: dict[str, list[int]] = {}
    for row in np.flatnonzero(bad).tolist():
        fixed = [r for m, (_, r) in zip(masks, checks, strict=True) if m[row]]
        reasons[row] = "; ".join([*fixed, *(n[row] for n in named if n[row] is not None)])
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
    when = lines.when.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    utc = pd.DatetimeIndex(np.minimum.reduceat(when[rows], starts)).tz_localize("UTC")
    amount = (lines.quantity * lines.price).to_numpy(dtype=float)[rows]
    keys = utc.asi8.tolist()
    number = [str(n) for n in numbers]
    return _Invoices(
        number=number,
        timestamp=[utc_iso(t) for t in utc.to_pydatetime()],
        customer=lines.customer.to_numpy(dtype=object)[rows][starts].tolist(),  # one per invoice
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
