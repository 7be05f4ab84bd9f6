"""Online Retail values that cannot be taken exactly are problems, never silently changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from personify.events.importers import ConverterItem, ImportProblem, OnlineRetailConverter
from personify.events.importers.online_retail import COLUMNS

HEADER = ",".join(COLUMNS)
UK = "United Kingdom"


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "retail.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def _split(path: Path) -> tuple[list[ImportProblem], dict[str, dict[str, Any]]]:
    converter = OnlineRetailConverter(path)
    items: list[ConverterItem] = list(converter.messages())
    assert converter.total_hint() == len(items)
    problems = [i for i in items if isinstance(i, ImportProblem)]
    messages = {i["messageId"]: i for i in items if isinstance(i, dict)}
    return problems, messages


# --- quantities and prices ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "price", "reason"),
    [
        ("99999999999999999999", "2.55", "Quantity is too large"),
        ("9007199254740993", "2.55", "Quantity is too large"),
        ("-99999999999999999999", "2.55", "Quantity is too large"),
        ("6", "1e300", "UnitPrice is too large"),
        ("6", "inf", "UnitPrice must be a number"),
    ],
)
def test_out_of_range_quantity_or_price_holds_back_its_invoice(
    tmp_path: Path, quantity: str, price: str, reason: str
) -> None:
    path = _csv(
        tmp_path,
        f"536365,85123A,HEART,{quantity},2010-12-01 08:26,{price},17850,{UK}",
        f"536365,71053,LANTERN,6,2010-12-01 08:26,3.39,17850,{UK}",
        f"536366,22633,WARMER,6,2010-12-01 08:28,1.85,17850,{UK}",
    )
    problems, messages = _split(path)
    assert [p.line for p in problems] == [2, 3]
    assert reason in problems[0].reason
    assert "held back" in problems[1].reason
    assert str(orjson.loads(problems[0].raw)["Quantity"]) == quantity
    assert "online-retail:536365" not in messages
    assert messages["online-retail:536366"]["properties"]["products"][0]["quantity"] == 6


def test_largest_exact_quantity_is_kept_exactly(tmp_path: Path) -> None:
    path = _csv(tmp_path, f"536365,85123A,HEART,9007199254740991,2010-12-01 08:26,1,1,{UK}")
    problems, messages = _split(path)
    assert not problems
    product = messages["online-retail:536365"]["properties"]["products"][0]
    assert product["quantity"] == 9007199254740991


# --- customer ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "user_id"),
    [("17850", "17850"), ("17850.0", "17850"), ("12345678901234567890", "12345678901234567890")],
)
def test_customer_id_written_as_plain_digits_is_kept_exactly(
    tmp_path: Path, written: str, user_id: str
) -> None:
    path = _csv(
        tmp_path,
        f"536365,85123A,HEART,6,2010-12-01 08:26,2.55,{written},{UK}",
        f"536366,85123A,HEART,6,2010-12-01 08:26,2.55,,{UK}",  # a guest makes the column float
    )
    problems, messages = _split(path)
    assert not problems
    assert messages["online-retail:536365"]["userId"] == user_id
    assert f"online-retail:customer:{user_id}" in messages


@pytest.mark.parametrize("written", ["00123", "1e3", "17850.5", "ABC", "+17850"])
def test_customer_id_that_would_change_when_read_as_a_number_is_a_problem(
    tmp_path: Path, written: str
) -> None:
    path = _csv(
        tmp_path,
        f"536365,85123A,HEART,6,2010-12-01 08:26,2.55,{written},{UK}",
        f"536365,71053,LANTERN,6,2010-12-01 08:26,3.39,{written},{UK}",
    )
    problems, messages = _split(path)
    assert [p.line for p in problems] == [2, 3]
    assert all("CustomerID" in p.reason and repr(written) in p.reason for p in problems)
    assert not messages


def test_float_customer_id_too_large_to_be_exact_is_a_problem(tmp_path: Path) -> None:
    line = ("536365", "85123A", "HEART", 6, pd.Timestamp("2010-12-01 08:26"), 2.55, 1.0, UK)
    frame = pd.DataFrame([line, line], columns=COLUMNS)
    frame["CustomerID"] = [12345678901234567890.0, 17850.0]
    frame.loc[1, "InvoiceNo"] = "536366"
    path = tmp_path / "retail.parquet"
    frame.to_parquet(path)
    problems, messages = _split(path)
    assert [p.line for p in problems] == [1]
    assert "too large" in problems[0].reason
    assert messages["online-retail:536366"]["userId"] == "17850"


# --- invoices with several customers ---------------------------------------------------------


@pytest.mark.parametrize(("second", "named"), [("15000", "15000"), ("", "no CustomerID")])
def test_invoice_with_lines_for_several_customers_is_held_back_whole(
    tmp_path: Path, second: str, named: str
) -> None:
    path = _csv(
        tmp_path,
        f"536374,85123A,HEART,6,2010-12-01 08:26,2.55,14000,{UK}",
        f"536374,71053,LANTERN,6,2010-12-01 08:26,3.39,{second},France",
        f"536375,22633,WARMER,6,2010-12-01 08:28,1.85,14000,{UK}",
    )
    problems, messages = _split(path)
    assert [p.line for p in problems] == [2, 3]
    for problem in problems:
        assert "536374" in problem.reason
        assert "14000" in problem.reason and named in problem.reason
    assert "online-retail:536374" not in messages
    assert messages["online-retail:536375"]["userId"] == "14000"


# --- invoice dates --------------------------------------------------------------------------------


def test_dates_with_and_without_offsets_are_each_read_on_their_own_terms(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        f"536365,85123A,HEART,6,2010-12-01T08:38:00+05:00,2.55,17850,{UK}",
        f"536366,71053,LANTERN,6,2010-12-01 08:38:00,3.39,17850,{UK}",
        f"536367,71053,LANTERN,6,2011-06-01 09:30:00,3.39,17850,{UK}",
        f"536368,71053,LANTERN,6,2011-06-01T09:30:00Z,3.39,17850,{UK}",
        f"536369,71053,LANTERN,6,6/1/2011 9:30,3.39,17850,{UK}",
    )
    problems, messages = _split(path)
    assert not problems
    times = {key[-6:]: m["timestamp"] for key, m in messages.items() if m["type"] == "track"}
    assert times == {
        "536365": "2010-12-01T03:38:00Z",  # the offset is honoured
        "536366": "2010-12-01T08:38:00Z",  # UK wall clock, GMT: not shifted by the other line
        "536367": "2011-06-01T08:30:00Z",  # UK wall clock, BST
        "536368": "2011-06-01T09:30:00Z",
        "536369": "2011-06-01T08:30:00Z",
    }


def test_unparseable_date_beside_an_offset_date_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        f"536365,85123A,HEART,6,not a date,2.55,17850,{UK}",
        f"536366,71053,LANTERN,6,2010-12-01T08:38:00+05:00,3.39,17850,{UK}",
        f"536367,71053,LANTERN,6,9999-01-01 00:00,3.39,17850,{UK}",
    )
    problems, messages = _split(path)
    assert [p.line for p in problems] == [2, 4]
    assert all("InvoiceDate" in p.reason for p in problems)
    assert messages["online-retail:536366"]["timestamp"] == "2010-12-01T03:38:00Z"


def test_an_invoice_takes_its_earliest_instant_across_offset_and_local_lines(
    tmp_path: Path,
) -> None:
    path = _csv(
        tmp_path,
        f"536365,85123A,HEART,6,2010-12-01 08:38:00,2.55,17850,{UK}",
        f"536365,71053,LANTERN,6,2010-12-01T10:00:00+05:00,3.39,17850,{UK}",
    )
    problems, messages = _split(path)
    assert not problems
    assert messages["online-retail:536365"]["timestamp"] == "2010-12-01T05:00:00Z"
