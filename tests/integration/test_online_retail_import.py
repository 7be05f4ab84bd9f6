"""The full UCI Online Retail file imports through validation and identity resolution, and
segments over it agree with an independent pandas computation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from personify.clock import FixedClock
from personify.config import Settings
from personify.events.collector import BatchResult
from personify.events.importers.base import ImportProblem
from personify.events.importers.online_retail import OnlineRetailConverter
from personify.facade import Personify
from personify.platform import build
from personify.segments.service import Segments
from personify.segments.templates import template

pytestmark = [pytest.mark.datasets, pytest.mark.slow]
# The last invoice in the file is 2011-12-09 12:50 (UK time, GMT in December).
DATA_END = datetime(2011, 12, 9, 12, 50, tzinfo=UTC)


@dataclass
class Imported:
    p: Personify
    converter: OnlineRetailConverter
    items: list[Any]
    path: Path
    result: BatchResult


@pytest.fixture(scope="module")
def imported(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imported]:
    path = datasets_dir / "online_retail" / "online_retail.parquet"
    p = build(
        Settings(data_dir=tmp_path_factory.mktemp("retail"), write_keys="k"), FixedClock(DATA_END)
    )
    converter = OnlineRetailConverter(path)
    items = list(converter.messages())
    result = p.ingest(items, "import:online_retail")
    p.drain()
    try:
        yield Imported(p, converter, items, path, result)
    finally:
        p.close()


def test_online_retail_import_matches_the_published_facts(
    imported: Imported,
) -> None:
    p, converter, items, path, result = (
        imported.p,
        imported.converter,
        imported.items,
        imported.path,
        imported.result,
    )
    assert not [i for i in items if isinstance(i, ImportProblem)]
    assert result.accepted == 4_372 + 25_900 and not result.quarantined
    # Known customers plus one anonymous profile per guest invoice.
    guests = converter.stats.extra["invoices"] - len(
        {
            m["properties"]["order_id"]
            for m in items
            if isinstance(m, dict) and m.get("userId") and m["type"] == "track"
        }
    )
    assert p.stores.profiles.count() == 4_372 + guests
    assert p.stores.events.count() == p.stores.events.count_distinct_messages() == 30_272
    profile = p.profile_by("user_id", "12346")  # one order of 74,215 units, then refunded
    assert profile["computed"]["orders"] == 1 and profile["computed"]["refunds"] == 1
    assert profile["computed"]["revenue"] == pytest.approx(0.0)
    assert profile["traits"]["country"]["value"] == "United Kingdom"
    # Re-importing the same file is idempotent: every message id is already known.
    again = p.ingest(OnlineRetailConverter(path).messages(), "import:online_retail")
    assert again.accepted == 0 and again.duplicates == 30_272


def _invoices_by_pandas(path: Path) -> pd.DataFrame:
    """One row per invoice straight from the file: customer, UTC time, amount, refund."""
    lines = pd.read_parquet(path)
    lines["amount"] = lines["Quantity"] * lines["UnitPrice"]
    invoices = lines.groupby("InvoiceNo").agg(
        customer=("CustomerID", "first"), when=("InvoiceDate", "min"), amount=("amount", "sum")
    )
    invoices["amount"] = invoices["amount"].round(2)
    invoices["refund"] = invoices.index.astype(str).str.startswith("C")
    # Invoice times are UK wall-clock times.
    invoices["when"] = (
        pd.DatetimeIndex(invoices["when"])
        .tz_localize("Europe/London", ambiguous=True, nonexistent="shift_forward")
        .tz_convert("UTC")
    )
    return invoices


def _customers_by_pandas(invoices: pd.DataFrame) -> pd.DataFrame:
    """Orders, net revenue and last order per known customer."""
    invoices = invoices[invoices["customer"].notna()]
    orders = invoices[~invoices["refund"]]
    refunds = invoices[invoices["refund"]]
    out = pd.DataFrame(
        {
            "orders": orders.groupby("customer").size(),
            "bought": orders.groupby("customer")["amount"].sum(),
            "last_order": orders.groupby("customer")["when"].max(),
        }
    )
    refunded = refunds.groupby("customer")["amount"].apply(lambda a: a.abs().sum())
    out["revenue"] = out["bought"].sub(refunded, fill_value=0.0).reindex(out.index)
    out.index = [str(int(c)) for c in out.index]
    return out


def _member_users(p: Personify, key: str) -> set[str]:
    ids = [m["profile_id"] for m in p.stores.segments.members(key, None)]
    docs = p.stores.profiles.get_many(ids)
    return {docs[i]["identities"]["user_id"][0] for i in ids if docs[i]["identities"]["user_id"]}


def test_rfm_high_value_and_lapsed_segments_match_pandas(
    imported: Imported,
) -> None:
    p, path = imported.p, imported.path
    segments = Segments(p)
    segments.save(
        template("high_value", min_orders=10, min_revenue=5000, active_within="90d"), "test"
    )
    segments.save(template("lapsing_customer", key="lapsed", inactive_for="90d"), "test")
    invoices = _invoices_by_pandas(path)
    expected = _customers_by_pandas(invoices)
    cutoff = pd.Timestamp(DATA_END - timedelta(days=90))
    high = expected[
        (expected["orders"] >= 10)
        & (expected["revenue"] >= 5000)
        & (expected["last_order"] > cutoff)
    ]
    lapsed = expected[(expected["orders"] >= 1) & (expected["last_order"] <= cutoff)]
    assert len(high) > 100 and len(lapsed) > 1000  # both are real, sizeable groups
    assert _member_users(p, "high_value") == set(high.index)
    assert _member_users(p, "lapsed") == set(lapsed.index)
    # Guests are one anonymous profile per invoice: one order each, so never high-value, and
    # lapsed when that order is older than 90 days.
    guests = invoices[invoices["customer"].isna() & ~invoices["refund"]]
    lapsed_guests = int((guests["when"] <= cutoff).sum())
    assert p.stores.segments.sizes() == {
        "high_value": len(high),
        "lapsed": len(lapsed) + lapsed_guests,
    }
