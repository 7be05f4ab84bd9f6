"""JavaScript coercions over Python JSON values (answers checked in Node)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from personify.segments.jsvalues import (
    compare,
    identity_key,
    js_type,
    strict_equal,
    to_json,
    to_number,
    to_string,
    truthy,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (1.0, "1"),
        (-0.0, "0"),
        (1.5, "1.5"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (2.5e-7, "2.5e-7"),
        (0.1 + 0.2, "0.30000000000000004"),
        (math.inf, "Infinity"),
        ([1, None, [2, 3]], "1,,2,3"),
        ({"a": 1}, "[object Object]"),
    ],
)
def test_to_string(value: Any, text: str) -> None:
    assert to_string(value) == text


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (None, 0),
        (True, 1),
        ("", 0),
        ("  12\n", 12),
        ("1e3", 1000),
        ("5.", 5),
        (".5", 0.5),
        ("0x1F", 31),
        ("0b101", 5),
        ("-Infinity", -math.inf),
        ([], 0),
        (["7"], 7),
    ],
)
def test_to_number(value: Any, number: float) -> None:
    assert to_number(value) == number


@pytest.mark.parametrize("value", ["12px", "1_000", "inf", "nan", "-0x10", ".", [1, 2], {}])
def test_to_number_not_a_number(value: Any) -> None:
    assert math.isnan(to_number(value))


def test_compare_strings_as_text_and_the_rest_as_numbers() -> None:
    assert compare("10", "9") == -1
    assert compare("10", 9) == 1
    assert compare(None, 0) == 0
    assert compare("x", 1) is None
    assert compare("\ufffd", "\U0001f600") == 1  # UTF-16 code units, not code points


def test_truthiness() -> None:
    falsy: list[Any] = [0, 0.0, "", None, False, math.nan]
    truthy_values: list[Any] = ["0", [], {}, -1]
    assert [truthy(v) for v in falsy] == [False] * 6
    assert [truthy(v) for v in truthy_values] == [True] * 4


def test_type_names() -> None:
    values: list[Any] = [None, True, 1, "a", [1], {}]
    assert [js_type(v) for v in values] == [
        "null",
        "boolean",
        "number",
        "string",
        "array",
        "object",
    ]


def test_strict_equality_keeps_booleans_apart_from_numbers() -> None:
    assert strict_equal(1, 1.0)
    assert not strict_equal(True, 1)
    assert not strict_equal([1], [1])
    assert identity_key(True) != identity_key(1)
    assert identity_key(math.nan) == identity_key(float("nan"))


def test_to_json_is_javascript_json_stringify() -> None:
    assert to_json({"b": [1.0, None], "a": "x"}) == '{"b":[1,null],"a":"x"}'
    assert to_json({"b": 1, "10": 2, "2": 3}) == '{"2":3,"10":2,"b":1}'
    assert to_json([math.nan]) == "[null]"
