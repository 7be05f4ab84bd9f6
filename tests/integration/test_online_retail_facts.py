"""The Online Retail converter reproduces the published facts of the real UCI file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from personify.events.importers import ImportProblem, OnlineRetailConverter

pytestmark = [pytest.mark.datasets]

FACTS = {
    "lines": 541_909,
    "invoices": 25_900,
    "customers": 4_372,
    "stock_codes": 4_070,
    "countries": 38,
    "guest_lines": 135_080,
    "duplicate_lines": 5_268,
    "cancellation_lines": 9_288,
    "nonpositive_quantity_lines": 10_624,
    "nonpositive_price_lines": 2_517,
    "missing_descriptions": 1_454,
}


@pytest.fixture(scope="module")
def converted(datasets_dir: Path) -> tuple[OnlineRetailConverter, list[dict[str, Any]], float]:
    converter = OnlineRetailConverter(datasets_dir / "online_retail" / "online_retail.parquet")
    started = time.perf_counter()
    items = list(converter.messages())
    elapsed = time.perf_counter() - started
    assert not [item for item in items if isinstance(item, ImportProblem)]
    return converter, [item for item in items if isinstance(item, dict)], elapsed


def test_file_facts_match_the_published_numbers(
    converted: tuple[OnlineRetailConverter, list[dict[str, Any]], float],
) -> None:
    converter, _, _ = converted
    assert {key: converter.stats.extra[key] for key in FACTS} == FACTS
    assert converter.stats.rows_read == FACTS["lines"]
    assert converter.stats.extra["orders"] + converter.stats.extra["refunds"] == 25_900


def test_one_message_per_customer_and_per_invoice(
    converted: tuple[OnlineRetailConverter, list[dict[str, Any]], float],
) -> None:
    converter, messages, _ = converted
    identifies = [m for m in messages if m["type"] == "identify"]
    orders = [m for m in messages if m["type"] == "track"]
    assert len(identifies) == FACTS["customers"]
    assert len(orders) == FACTS["invoices"]
    assert len(messages) == converter.stats.messages == converter.total_hint() == 30_272
    refunds = sum(m["event"] == "Order Refunded" for m in orders)
    assert refunds == converter.stats.extra["refunds"]


def test_every_line_ends_up_as_a_product(
    converted: tuple[OnlineRetailConverter, list[dict[str, Any]], float],
) -> None:
    _, messages, _ = converted
    orders = [m for m in messages if m["type"] == "track"]
    assert sum(len(m["properties"]["products"]) for m in orders) == FACTS["lines"]
    guest_lines = sum(len(m["properties"]["products"]) for m in orders if "anonymousId" in m)
    assert guest_lines == FACTS["guest_lines"]
    cancelled = sum(
        len(m["properties"]["products"]) for m in orders if m["event"] == "Order Refunded"
    )
    assert cancelled == FACTS["cancellation_lines"]


def test_whole_file_converts_in_a_few_seconds(
    converted: tuple[OnlineRetailConverter, list[dict[str, Any]], float],
) -> None:
    _, _, elapsed = converted
    assert elapsed < 15, f"converting the full file took {elapsed:.1f}s"
