"""Converters turn small files into raw Segment messages, and problems, never silent drops."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from personify.errors import InvalidInput
from personify.events.importers import (
    ConverterItem,
    CustomerCsvConverter,
    ImportProblem,
    NdjsonConverter,
    OnlineRetailConverter,
    read_table,
)
from personify.events.importers.online_retail import COLUMNS

UK = "United Kingdom"
WINTER = datetime(2010, 12, 1, 8, 26)
LINES: list[tuple[Any, ...]] = [
    ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, WINTER, 2.55, 17850.0, UK),
    ("536365", "71053", "WHITE METAL LANTERN", 6, WINTER, 3.39, 17850.0, UK),
    ("536365", "71053", "WHITE METAL LANTERN", 6, WINTER, 3.39, 17850.0, UK),
    ("C536379", "D", "Discount", -1, datetime(2010, 12, 1, 9, 41), 27.5, 14527.0, UK),
    ("536414", "22139", "nan", 56, datetime(2010, 12, 1, 11, 52), 0.0, float("nan"), UK),
    (
        "560000",
        "22423",
        "REGENCY CAKESTAND",
        2,
        datetime(2011, 6, 1, 9, 30),
        12.75,
        14527.0,
        "EIRE",
    ),
    (
        "536500",
        "22086",
        "PAPER CHAIN KIT",
        3,
        datetime(2010, 12, 1, 9, 41),
        2.95,
        12583.0,
        "France",
    ),
]


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture(params=["retail.parquet", "retail.csv", "retail.csv.gz", "retail.xlsx"])
def retail_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return _write(pd.DataFrame(LINES, columns=COLUMNS), tmp_path / request.param)


def _messages(items: list[ConverterItem]) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict)]


def _by_id(items: list[ConverterItem]) -> dict[str, dict[str, Any]]:
    return {m["messageId"]: m for m in _messages(items)}


def test_each_invoice_becomes_one_order_or_one_refund(retail_file: Path) -> None:
    items = list(OnlineRetailConverter(retail_file).messages())
    orders = [m for m in _messages(items) if m["type"] == "track"]
    events = {m["properties"]["order_id"]: m["event"] for m in orders}
    assert events == {
        "536365": "Order Completed",
        "C536379": "Order Refunded",
        "536414": "Order Completed",
        "560000": "Order Completed",
        "536500": "Order Completed",
    }


def test_every_line_is_kept_as_a_product_in_file_order(retail_file: Path) -> None:
    order = _by_id(list(OnlineRetailConverter(retail_file).messages()))["online-retail:536365"]
    products = order["properties"]["products"]
    assert [p["product_id"] for p in products] == ["85123A", "71053", "71053"]
    assert products[1] == {
        "product_id": "71053",
        "sku": "71053",
        "name": "WHITE METAL LANTERN",
        "quantity": 6,
        "price": 3.39,
    }
    assert order["properties"]["revenue"] == 55.98
    assert order["properties"]["currency"] == "GBP"
    assert order["properties"]["country"] == UK


def test_refund_revenue_is_positive_and_quantity_keeps_its_sign(retail_file: Path) -> None:
    refund = _by_id(list(OnlineRetailConverter(retail_file).messages()))["online-retail:C536379"]
    assert refund["properties"]["revenue"] == 27.5
    assert refund["properties"]["products"][0]["quantity"] == -1
    assert refund["userId"] == "14527"


def test_guest_invoice_is_anonymous_per_invoice_and_nan_name_is_none(retail_file: Path) -> None:
    guest = _by_id(list(OnlineRetailConverter(retail_file).messages()))["online-retail:536414"]
    assert guest["anonymousId"] == "guest-536414"
    assert "userId" not in guest
    assert guest["properties"]["products"][0]["name"] is None
    assert guest["properties"]["products"][0]["price"] == 0.0


def test_uk_local_times_are_sent_as_utc(retail_file: Path) -> None:
    by_id = _by_id(list(OnlineRetailConverter(retail_file).messages()))
    assert by_id["online-retail:536365"]["timestamp"] == "2010-12-01T08:26:00Z"  # GMT
    assert by_id["online-retail:560000"]["timestamp"] == "2011-06-01T08:30:00Z"  # BST


def test_clock_change_hours_still_get_a_utc_time(tmp_path: Path) -> None:
    lines = [
        ("570001", "A", "x", 1, datetime(2011, 10, 30, 1, 30), 1.0, 1.0, UK),  # happens twice
        ("570002", "A", "x", 1, datetime(2011, 3, 27, 1, 30), 1.0, 1.0, UK),  # never happens
    ]
    path = _write(pd.DataFrame(lines, columns=COLUMNS), tmp_path / "retail.parquet")
    by_id = _by_id(list(OnlineRetailConverter(path).messages()))
    assert by_id["online-retail:570001"]["timestamp"] == "2011-10-30T00:30:00Z"  # read as BST
    assert by_id["online-retail:570002"]["timestamp"] == "2011-03-27T01:00:00Z"  # moved to 02:00


def test_each_customer_is_identified_once_before_their_first_order(retail_file: Path) -> None:
    messages = _messages(list(OnlineRetailConverter(retail_file).messages()))
    identifies = [m for m in messages if m["type"] == "identify"]
    assert sorted(m["userId"] for m in identifies) == ["12583", "14527", "17850"]
    for identify in identifies:
        first_order = next(
            i
            for i, m in enumerate(messages)
            if m["type"] == "track" and m.get("userId") == identify["userId"]
        )
        assert messages.index(identify) < first_order
        assert identify["timestamp"] == messages[first_order]["timestamp"]
    customer = next(m for m in identifies if m["userId"] == "14527")
    assert customer["traits"] == {"country": UK}  # first invoice, not the later EIRE one
    assert customer["messageId"] == "online-retail:customer:14527"


def test_orders_come_in_time_order_with_ties_broken_by_invoice_number(retail_file: Path) -> None:
    messages = _messages(list(OnlineRetailConverter(retail_file).messages()))
    order_ids = [m["properties"]["order_id"] for m in messages if m["type"] == "track"]
    assert order_ids == ["536365", "536500", "C536379", "536414", "560000"]


def test_messages_carry_the_importer_library_context(retail_file: Path) -> None:
    for message in _messages(list(OnlineRetailConverter(retail_file).messages())):
        assert message["context"] == {"library": {"name": "personify-import", "version": "1"}}


def test_reimporting_the_same_file_yields_identical_messages(retail_file: Path) -> None:
    first = list(OnlineRetailConverter(retail_file).messages())
    second = list(OnlineRetailConverter(retail_file).messages())
    assert first == second
    assert len({m["messageId"] for m in _messages(first)}) == len(first)


def test_stats_count_the_facts_of_the_file(retail_file: Path) -> None:
    converter = OnlineRetailConverter(retail_file)
    items = list(converter.messages())
    assert converter.total_hint() == len(items) == converter.stats.messages == 8
    assert converter.stats.rows_read == 7
    assert converter.stats.problems == 0
    assert converter.stats.extra == {
        "lines": 7,
        "invoices": 5,
        "customers": 3,
        "stock_codes": 6,
        "countries": 3,
        "guest_lines": 1,
        "duplicate_lines": 1,
        "cancellation_lines": 1,
        "nonpositive_quantity_lines": 1,
        "nonpositive_price_lines": 1,
        "missing_descriptions": 1,
        "orders": 4,
        "refunds": 1,
        "max_lines_per_invoice": 3,
        "invoices_with_several_times": 0,
    }


def test_unusable_line_is_a_problem_and_holds_back_the_rest_of_its_invoice(
    tmp_path: Path,
) -> None:
    frame = pd.DataFrame(LINES, columns=COLUMNS).astype({"InvoiceDate": str, "Quantity": str})
    frame.loc[1, "InvoiceDate"] = "not a date"
    frame.loc[6, "Quantity"] = "lots"
    path = _write(frame, tmp_path / "retail.csv")
    converter = OnlineRetailConverter(path)
    items = list(converter.messages())
    problems = [item for item in items if isinstance(item, ImportProblem)]
    assert [p.line for p in problems] == [2, 3, 4, 8]  # CSV lines: the header is line 1
    assert "InvoiceDate" in problems[1].reason
    assert "held back" in problems[0].reason
    assert "[3]" in problems[0].reason
    assert "Quantity" in problems[3].reason
    assert orjson.loads(problems[1].raw)["InvoiceDate"] == "not a date"
    orders = {m["properties"]["order_id"] for m in _messages(items) if m["type"] == "track"}
    assert orders == {"C536379", "536414", "560000"}
    assert converter.stats.problems == 4
    assert converter.total_hint() == len(items)


def test_wrongly_named_columns_are_reported_before_anything_is_converted(
    tmp_path: Path,
) -> None:
    frame = pd.DataFrame(LINES, columns=COLUMNS).rename(columns={"CustomerID": "Customer ID"})
    path = _write(frame, tmp_path / "retail.parquet")
    with pytest.raises(InvalidInput, match="CustomerID"):
        list(OnlineRetailConverter(path).messages())


@pytest.mark.parametrize(
    ("name", "match"),
    [("missing.csv", "file not found"), ("data.json", "unknown file type")],
)
def test_read_table_rejects_missing_or_unknown_files(tmp_path: Path, name: str, match: str) -> None:
    if name.endswith(".json"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(InvalidInput, match=match):
        read_table(tmp_path / name)


def test_read_table_reports_a_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip file")
    with pytest.raises(InvalidInput, match=r"cannot read broken\.xlsx"):
        read_table(tmp_path / "broken.xlsx")


def test_read_table_names_missing_and_found_columns(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput) as caught:
        read_table(tmp_path / "t.csv", required=["a", "c"])
    assert caught.value.message == "t.csv is missing required column(s): c"
    assert caught.value.hint == "columns found: a, b"


def test_read_table_as_text_keeps_cells_exactly_as_written(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("zip,n\n007,\n")
    assert read_table(tmp_path / "t.csv", text=True).to_dict("records") == [{"zip": "007", "n": ""}]


# --- customer tables ---------------------------------------------------------------------------

CustomerFile = Callable[[str], Path]


@pytest.fixture
def customer_file(tmp_path: Path) -> CustomerFile:
    def write(text: str, name: str = "crm.csv") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.mark.parametrize("id_column", ["user_id", "userId", "customer_id", "CustomerID", "id"])
def test_customer_id_column_is_detected(customer_file: CustomerFile, id_column: str) -> None:
    path = customer_file(f"email,{id_column}\nada@example.com,u1\n")
    [message] = list(CustomerCsvConverter(path).messages())
    assert isinstance(message, dict)
    assert message["userId"] == "u1"
    assert message["traits"] == {"email": "ada@example.com"}


def test_explicit_id_column_wins_over_detection(customer_file: CustomerFile) -> None:
    path = customer_file("id,account\n1,acc-9\n")
    [message] = list(CustomerCsvConverter(path, id_column="account").messages())
    assert isinstance(message, dict)
    assert message["userId"] == "acc-9"
    assert message["traits"] == {"id": 1}


def test_table_without_id_column_names_the_columns_found(customer_file: CustomerFile) -> None:
    path = customer_file("email,name\nada@example.com,Ada\n")
    with pytest.raises(InvalidInput, match="found: email, name"):
        list(CustomerCsvConverter(path).messages())


def test_traits_keep_numbers_as_numbers_and_omit_empty_cells(customer_file: CustomerFile) -> None:
    path = customer_file("user_id,orders,ltv,zip,plan,note\nu1,3,120.50,007,gold, \n")
    [message] = list(CustomerCsvConverter(path).messages())
    assert isinstance(message, dict)
    assert message["traits"] == {"orders": 3, "ltv": 120.5, "zip": "007", "plan": "gold"}
    assert message["type"] == "identify"
    assert message["context"]["library"]["name"] == "personify-import"


def test_updated_at_becomes_the_utc_timestamp_not_a_trait(customer_file: CustomerFile) -> None:
    path = customer_file("user_id,updated_at\nu1,2024-05-01T14:00:00+02:00\nu2,\n")
    first, second = list(CustomerCsvConverter(path).messages())
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert first["timestamp"] == "2024-05-01T12:00:00Z"
    assert first["traits"] == {}
    assert "timestamp" not in second


def test_rows_without_id_or_with_a_bad_date_are_problems(customer_file: CustomerFile) -> None:
    path = customer_file("user_id,email,timestamp\nu1,a@x.io,\n,b@x.io,\nu3,c@x.io,yesterday\n")
    converter = CustomerCsvConverter(path)
    items = list(converter.messages())
    problems = [item for item in items if isinstance(item, ImportProblem)]
    assert [(p.line, "user_id" in p.reason) for p in problems] == [(3, True), (4, False)]
    assert "ISO-8601" in problems[1].reason
    assert orjson.loads(problems[0].raw) == {"user_id": "", "email": "b@x.io", "timestamp": ""}
    assert (converter.stats.messages, converter.stats.problems) == (1, 2)
    assert converter.stats.extra == {"missing_ids": 1, "bad_timestamps": 1}
    assert converter.total_hint() == len(items) == 3


def test_message_id_is_stable_and_changes_with_the_row(customer_file: CustomerFile) -> None:
    def message_id(text: str) -> str:
        [message] = list(CustomerCsvConverter(customer_file(text), source_name="crm").messages())
        assert isinstance(message, dict)
        return str(message["messageId"])

    first = message_id("user_id,plan\nu1,gold\n")
    assert first == message_id("user_id,plan\nu1,gold\n")
    assert first.startswith("crm:crm.csv:2:")
    assert message_id("user_id,plan\nu1,silver\n") != first


def test_customer_xlsx_is_read_like_csv(tmp_path: Path) -> None:
    path = tmp_path / "crm.xlsx"
    pd.DataFrame({"customer_id": [17850], "orders": [3], "city": ["Leeds"]}).to_excel(
        path, index=False
    )
    [message] = list(CustomerCsvConverter(path).messages())
    assert isinstance(message, dict)
    assert message["userId"] == "17850"
    assert message["traits"] == {"orders": 3, "city": "Leeds"}


@pytest.mark.parametrize("name", ["crm.csv", "crm.csv.gz", "crm.xlsx"])
def test_a_customer_table_with_a_repeated_column_name_is_refused(tmp_path: Path, name: str) -> None:
    frame = pd.DataFrame(
        [["u1", "a@x.io", "Ada", "b@x.io", "ada"]],
        columns=["user_id", "email", "name", "email", "name"],
    )
    path = _write(frame, tmp_path / name)
    with pytest.raises(InvalidInput, match="email, name") as info:
        list(CustomerCsvConverter(path).messages())
    assert "more than once" in info.value.message
    assert info.value.hint is not None and "rename or remove" in info.value.hint


def test_a_column_named_like_a_renamed_duplicate_is_kept(customer_file: CustomerFile) -> None:
    path = customer_file("user_id,email,email.1\nu1,a@x.io,b@x.io\n")
    [message] = list(CustomerCsvConverter(path).messages())
    assert isinstance(message, dict)
    assert message["traits"] == {"email": "a@x.io", "email.1": "b@x.io"}


# --- NDJSON ------------------------------------------------------------------------------------

TRACK = {"type": "track", "event": "Signed Up", "userId": "u1", "properties": {"plan": "pro"}}
NDJSON_LINES = [orjson.dumps(TRACK), b"", b'{"type": "identify",', b"[1, 2]", b'{"type":"page"}']


@pytest.mark.parametrize("name", ["events.ndjson", "events.ndjson.gz"])
def test_ndjson_passes_objects_through_and_reports_bad_lines(tmp_path: Path, name: str) -> None:
    body = b"\n".join(NDJSON_LINES) + b"\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
    converter = NdjsonConverter(path)
    items = list(converter.messages())
    assert items[0] == TRACK
    assert items[3] == {"type": "page"}
    bad_json, not_object = items[1], items[2]
    assert isinstance(bad_json, ImportProblem)
    assert isinstance(not_object, ImportProblem)
    assert (bad_json.line, bad_json.raw) == (3, '{"type": "identify",')
    assert bad_json.reason.startswith("not valid JSON: ")
    assert (not_object.line, not_object.reason.endswith("got an array")) == (4, True)
    assert converter.total_hint() == len(items) == 4
    assert (converter.stats.messages, converter.stats.problems) == (2, 2)
    assert converter.stats.extra == {"blank_lines": 1}


def test_ndjson_ignores_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(TRACK) + b"\r\n")
    assert list(NdjsonConverter(path).messages()) == [TRACK]


def test_ndjson_reports_a_missing_or_corrupt_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="file not found"):
        list(NdjsonConverter(tmp_path / "nope.ndjson").messages())
    (tmp_path / "cut.ndjson.gz").write_bytes(gzip.compress(orjson.dumps(TRACK))[:-8])
    with pytest.raises(InvalidInput, match=r"cannot read cut\.ndjson\.gz"):
        list(NdjsonConverter(tmp_path / "cut.ndjson.gz").messages())
