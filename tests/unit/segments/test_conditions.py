"""The condition language: each operator, paths, JavaScript quirks, and compiled conditions."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from personify.errors import InvalidInput
from personify.segments import Condition, compile_condition, evaluate


def matches(condition: Mapping[str, Any], attributes: Mapping[str, Any]) -> bool:
    return compile_condition(condition)(attributes)


# --- logical operators -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"plan": "pro", "country": "US"}, True),
        ({"plan": "pro", "country": "FR"}, False),
        ({"plan": "free", "country": "US"}, False),
    ],
)
def test_several_top_level_keys_must_all_hold(attributes: dict[str, Any], expected: bool) -> None:
    assert matches({"plan": "pro", "country": "US"}, attributes) is expected


def test_and_needs_every_condition() -> None:
    condition = {"$and": [{"age": {"$gte": 18}}, {"age": {"$lt": 65}}]}
    assert matches(condition, {"age": 30})
    assert not matches(condition, {"age": 70})


def test_or_needs_one_condition() -> None:
    condition = {"$or": [{"plan": "pro"}, {"orders": {"$gte": 10}}]}
    assert matches(condition, {"plan": "free", "orders": 12})
    assert not matches(condition, {"plan": "free", "orders": 2})


def test_nor_needs_no_condition() -> None:
    condition = {"$nor": [{"plan": "pro"}, {"banned": True}]}
    assert matches(condition, {"plan": "free"})
    assert not matches(condition, {"plan": "free", "banned": True})


def test_not_inverts_a_whole_condition() -> None:
    assert matches({"$not": {"country": "US", "plan": "pro"}}, {"country": "US", "plan": "free"})
    assert not matches({"$not": {"country": "US"}}, {"country": "US"})


def test_empty_combinations_follow_growthbook() -> None:
    assert matches({}, {"anything": 1})
    assert matches({"$and": []}, {})
    assert matches({"$or": []}, {})  # an empty $or is true in GrowthBook
    assert not matches({"$nor": []}, {})  # ... so an empty $nor is false


def test_malformed_combinations_are_false_when_not_strict() -> None:
    assert not matches({"$and": {"a": 1}}, {"a": 1})
    assert not matches({"$or": [5]}, {})
    assert not matches({"$not": "a"}, {})


# --- paths -----------------------------------------------------------------------------


def test_dotted_paths_reach_into_nested_objects() -> None:
    attributes = {"traits": {"address": {"city": "Lyon"}}}
    assert matches({"traits.address.city": "Lyon"}, attributes)
    assert not matches({"traits.address.zip": {"$exists": True}}, attributes)


def test_dotted_paths_index_into_arrays() -> None:
    attributes = {"cart": {"items": [{"sku": "A1"}, {"sku": "B2"}]}}
    assert matches({"cart.items.1.sku": "B2"}, attributes)
    assert matches({"cart.items.2.sku": {"$exists": False}}, attributes)
    assert matches({"cart.items.length": 2}, attributes)
    assert matches({"cart.items.01.sku": {"$exists": False}}, attributes)  # not an index


def test_a_path_through_a_scalar_or_null_is_missing() -> None:
    assert matches({"address.state": None}, {"address": "12 Main St"})
    assert matches({"address.state": None}, {"address": None})
    assert not matches({"address.state": "CA"}, {"address": 123})


def test_a_key_containing_dots_is_not_found_by_its_dotted_path() -> None:
    assert not matches({"a.b": 1}, {"a.b": 1})


def test_any_mapping_can_be_evaluated() -> None:
    condition = compile_condition({"traits.tier": "gold", "country": "FR"})
    assert condition(
        MappingProxyType({"traits": MappingProxyType({"tier": "gold"}), "country": "FR"})
    )


# --- literal equality (JavaScript coercions) -------------------------------------------


def test_a_string_literal_compares_with_the_value_as_text() -> None:
    assert matches({"zip": "75001"}, {"zip": 75001})
    assert matches({"flag": "true"}, {"flag": True})
    assert matches({"tags": "a,b"}, {"tags": ["a", "b"]})
    assert matches({"name": "null"}, {})  # a missing value is null, which reads "null"


def test_a_number_literal_compares_with_the_value_as_a_number() -> None:
    assert matches({"age": 30}, {"age": "30"})
    assert matches({"age": 30}, {"age": 30.0})
    assert matches({"age": 1}, {"age": True})
    assert matches({"age": 0}, {})  # null is 0 as a number
    assert not matches({"age": 30}, {"age": "thirty"})


def test_a_boolean_literal_tests_truthiness_but_never_matches_null() -> None:
    assert matches({"vip": True}, {"vip": "yes"})
    assert matches({"vip": False}, {"vip": 0})
    assert matches({"vip": False}, {"vip": ""})
    assert not matches({"vip": False}, {})
    assert not matches({"vip": True}, {"vip": 0})


def test_null_literal_matches_null_or_missing_only() -> None:
    assert matches({"email": None}, {})
    assert matches({"email": None}, {"email": None})
    assert not matches({"email": None}, {"email": ""})


def test_arrays_and_objects_compare_as_json_text() -> None:
    assert matches({"tags": ["a", 1]}, {"tags": ["a", 1.0]})
    assert not matches({"tags": ["a", "b"]}, {"tags": ["b", "a"]})
    assert matches({"geo": {"lat": 1, "lon": 2}}, {"geo": {"lat": 1, "lon": 2}})
    assert not matches({"geo": {"lat": 1, "lon": 2}}, {"geo": {"lon": 2, "lat": 1}})
    assert matches({"geo": {"10": 1, "2": 2}}, {"geo": {"2": 2, "10": 1}})  # index keys sort
    assert not matches({"geo": {}}, {})


def test_an_object_mixing_operators_and_plain_keys_is_a_literal() -> None:
    assert matches({"x": {"$gt": 1, "y": 2}}, {"x": {"$gt": 1, "y": 2}})
    assert not matches({"x": {"$gt": 1, "y": 2}}, {"x": 5})


# --- $eq $ne -------------------------------------------------------------------------------


def test_eq_and_ne_are_strict() -> None:
    assert matches({"n": {"$eq": 1}}, {"n": 1.0})
    assert not matches({"n": {"$eq": 1}}, {"n": "1"})
    assert not matches({"n": {"$eq": 1}}, {"n": True})
    assert not matches({"n": {"$eq": True}}, {"n": 1})
    assert matches({"n": {"$eq": None}}, {})
    assert matches({"n": {"$ne": "x"}}, {})
    assert not matches({"tags": {"$eq": ["a"]}}, {"tags": ["a"]})  # arrays: by reference
    assert matches({"tags": {"$ne": ["a"]}}, {"tags": ["a"]})


# --- ordering ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ({"$gt": 5}, 6, True),
        ({"$gte": 5}, 5, True),
        ({"$lt": 5}, 5, False),
        ({"$lte": 5}, 5.0, True),
        ({"$gt": 5}, "6", True),  # a numeric string is converted
        ({"$gt": "5"}, 6, True),
        ({"$gt": "5"}, "10", False),  # two strings compare as text: "10" < "5"
        ({"$lt": "5"}, "10", True),
        ({"$gt": 5}, "six", False),  # NaN compares false both ways
        ({"$lte": 5}, "six", False),
        ({"$gt": -1}, None, True),  # null is 0
        ({"$lt": 1}, False, True),
        ({"$gt": 0}, True, True),
        ({"$gt": 3}, [5], True),  # [5] reads "5", then 5
        ({"$gt": 3}, [5, 6], False),  # "5,6" is NaN
        ({"$gt": "Z"}, "a", True),
        ({"$gt": "alpha"}, "Alpha", False),
        ({"$gt": " 7 "}, 8, True),  # whitespace is trimmed
        ({"$gt": "0x10"}, 17, True),  # hex strings convert
        ({"$gte": ""}, 0, True),  # "" is 0
    ],
)
def test_ordering_follows_javascript(condition: dict[str, Any], value: Any, expected: bool) -> None:
    assert matches({"v": condition}, {"v": value}) is expected


def test_strings_order_by_utf16_code_units() -> None:
    # U+FFFD sorts after an emoji by code point, but before it in UTF-16 (surrogates first).
    assert matches({"v": {"$lt": "\ufffd"}}, {"v": "\U0001f600"})
    assert matches({"v": {"$lt": "b"}}, {"v": "a\U0001f600"})


def test_missing_attribute_compares_as_zero() -> None:
    condition = {"age": {"$gt": -10, "$lt": 10, "$gte": 0, "$lte": 0, "$ne": 10}}
    assert matches(condition, {})


# --- $exists $type ---------------------------------------------------------------------------


def test_exists_distinguishes_null_from_present_values() -> None:
    assert matches({"a": {"$exists": True}}, {"a": 0})
    assert matches({"a": {"$exists": True}}, {"a": False})
    assert not matches({"a": {"$exists": True}}, {"a": None})
    assert matches({"a": {"$exists": False}}, {"a": None})
    assert matches({"a": {"$exists": 0}}, {})  # a falsy operand means false


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ("x", "string"),
        (1, "number"),
        (1.5, "number"),
        (True, "boolean"),
        (None, "null"),
        ([1], "array"),
        ((1,), "array"),
        ({"a": 1}, "object"),
    ],
)
def test_type_names_are_javascript_names(value: Any, type_name: str) -> None:
    assert matches({"a": {"$type": type_name}}, {"a": value})
    other = "string" if type_name != "string" else "number"
    assert not matches({"a": {"$type": other}}, {"a": value})


def test_type_of_a_missing_attribute_is_null() -> None:
    assert matches({"a": {"$type": "null"}}, {})


# --- membership ------------------------------------------------------------------------------


def test_in_and_nin_with_scalars() -> None:
    assert matches({"c": {"$in": ["US", "CA"]}}, {"c": "CA"})
    assert not matches({"c": {"$in": ["US", "CA"]}}, {"c": "ca"})
    assert matches({"c": {"$nin": ["US", "CA"]}}, {"c": "FR"})
    assert matches({"c": {"$nin": ["US", "CA"]}}, {})
    assert matches({"c": {"$in": [None]}}, {})


def test_in_uses_strict_equality() -> None:
    assert matches({"n": {"$in": [1, 2]}}, {"n": 2.0})
    assert not matches({"n": {"$in": [1, 2]}}, {"n": "2"})
    assert not matches({"n": {"$in": [1]}}, {"n": True})
    assert not matches({"n": {"$in": [True]}}, {"n": 1})
    assert not matches({"n": {"$in": [[1]]}}, {"n": [1]})


def test_in_with_an_array_attribute_intersects() -> None:
    assert matches({"tags": {"$in": ["a", "z"]}}, {"tags": ["x", "a"]})
    assert not matches({"tags": {"$in": ["a", "z"]}}, {"tags": []})
    assert matches({"tags": {"$nin": ["a", "z"]}}, {"tags": ["x", "y"]})
    assert not matches({"tags": {"$nin": ["a", "z"]}}, {"tags": ["x", "a"]})


def test_in_operators_need_an_array_operand() -> None:
    for name in ("$in", "$nin", "$ini", "$nini"):
        assert not matches({"n": {name: 1}}, {"n": 1})


def test_ini_and_nini_ignore_case() -> None:
    assert matches({"c": {"$ini": ["us", "ca"]}}, {"c": "US"})
    assert matches({"tags": {"$ini": ["VIP"]}}, {"tags": ["new", "vip"]})
    assert not matches({"c": {"$nini": ["us"]}}, {"c": "Us"})
    assert matches({"n": {"$ini": [1]}}, {"n": 1})


def test_all_and_alli() -> None:
    assert matches({"t": {"$all": ["a", "b"]}}, {"t": ["b", "c", "a"]})
    assert not matches({"t": {"$all": ["a", "b"]}}, {"t": ["a"]})
    assert not matches({"t": {"$all": ["a"]}}, {"t": "a"})
    assert matches({"t": {"$all": []}}, {"t": []})
    assert matches({"t": {"$all": [{"$gt": 5}, 1]}}, {"t": [1, 9]})  # items are conditions
    assert matches({"t": {"$alli": ["A", "b"]}}, {"t": ["B", "a"]})
    assert not matches({"t": {"$all": 5}}, {"t": [5]})


# --- arrays: $size $elemMatch ---------------------------------------------------------------


def test_size_with_a_number_or_a_condition() -> None:
    assert matches({"t": {"$size": 2}}, {"t": ["a", "b"]})
    assert not matches({"t": {"$size": 2}}, {"t": "ab"})
    assert matches({"t": {"$size": {"$gte": 2, "$lt": 4}}}, {"t": [1, 2, 3]})
    assert not matches({"t": {"$size": {"$gte": 2}}}, {"t": [1]})
    assert matches({"t": {"$size": "0"}}, {"t": []})  # a string literal: "0" == String(0)


def test_elem_match_on_values_and_on_objects() -> None:
    assert matches({"n": {"$elemMatch": {"$gt": 10, "$lt": 20}}}, {"n": [5, 15]})
    assert not matches({"n": {"$elemMatch": {"$gt": 10, "$lt": 20}}}, {"n": [5, 25]})
    orders = {"orders": [{"total": 20, "status": "paid"}, {"total": 90, "status": "refunded"}]}
    assert matches({"orders": {"$elemMatch": {"total": {"$gt": 50}}}}, orders)
    both = {"orders": {"$elemMatch": {"total": {"$gt": 50}, "status": "paid"}}}
    assert not matches(both, orders)
    assert not matches({"orders": {"$elemMatch": {"total": 20}}}, {"orders": {"total": 20}})


def test_elem_match_skips_falsy_elements_like_growthbook() -> None:
    assert not matches({"n": {"$elemMatch": {"$eq": 0}}}, {"n": [0, 1]})
    assert not matches({"n": {"$elemMatch": {"$exists": False}}}, {"n": [None]})
    assert matches({"n": {"$elemMatch": {"$eq": 1}}}, {"n": [0, 1]})


def test_not_inverts_a_value_condition() -> None:
    assert matches({"ua": {"$not": {"$regex": "bot"}}}, {"ua": "Firefox"})
    assert matches({"tags": {"$not": {"$elemMatch": {"$eq": "spam"}}}}, {"tags": ["ok"]})
    assert matches({"plan": {"$not": "free"}}, {"plan": "pro"})


# --- $regex ---------------------------------------------------------------------------------


def test_regex_uses_javascript_rules() -> None:
    assert matches({"ua": {"$regex": "Mobile"}}, {"ua": "Android Mobile Safari"})
    assert not matches({"ua": {"$regex": "^mobile"}}, {"ua": "Mobile"})
    assert matches({"ua": {"$regexi": "^mobile"}}, {"ua": "Mobile"})
    assert not matches({"s": {"$regex": "end$"}}, {"s": "the end\n"})  # $ is the very end
    assert not matches({"s": {"$regex": "^\\d+$"}}, {"s": "١٢"})  # \d is ASCII
    assert matches({"s": {"$regex": "^\\d+$"}}, {"s": 2024})  # the value is read as text
    assert matches({"s": {"$regex": "^null$"}}, {})
    assert matches({"s": {"$regex": "(?<y>\\d{4})-\\k<y>"}}, {"s": "2024-2024"})


def test_an_invalid_regex_matches_nothing() -> None:
    assert not matches({"s": {"$regex": "(unclosed"}}, {"s": "(unclosed"})
    assert not matches({"s": {"$regex": "(?P<py>x)"}}, {"s": "x"})  # Python-only syntax


# --- versions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "operator", "operand", "expected"),
    [
        ("2.10.0", "$vgt", "2.9.0", True),
        ("v2.0.0", "$veq", "2.0.0", True),
        ("2.0.0+build.5", "$veq", "2.0.0", True),
        ("2.0.0-beta", "$vlt", "2.0.0", True),
        ("2.0.0-beta.2", "$vlt", "2.0.0-beta.11", True),
        ("2.0.0-alpha", "$vlt", "2.0.0-beta", True),
        ("1.2", "$vlt", "1.2.0", True),  # no "~" part: "    1-    2" is a prefix, so smaller
        ("1.2.0.1", "$vgt", "1.2.0", False),  # four parts are not a release: "    1" < "~"
        ("3", "$vgte", "3", True),
        ("10.0.0", "$vne", "9.0.0", True),
        ("100000.0.0", "$vgt", "99999.0.0", False),  # more than five digits: not padded
    ],
)
def test_version_operators(version: str, operator: str, operand: str, expected: bool) -> None:
    assert matches({"v": {operator: operand}}, {"v": version}) is expected


def test_versions_accept_numbers_and_read_anything_else_as_zero() -> None:
    assert matches({"v": {"$vgt": "2.0.0"}}, {"v": 3})
    assert matches({"v": {"$veq": "0"}}, {})
    assert matches({"v": {"$veq": "0"}}, {"v": ["1"]})


# --- saved groups ---------------------------------------------------------------------------


def test_saved_groups_are_read_at_compile_time() -> None:
    groups = {"beta": ["u1", "u2"]}
    in_beta = compile_condition({"id": {"$inGroup": "beta"}}, saved_groups=groups)
    not_beta = compile_condition({"id": {"$notInGroup": "beta"}}, saved_groups=groups)
    groups["beta"].append("u3")
    assert in_beta({"id": "u1"}) and not in_beta({"id": "u3"})
    assert not_beta({"id": "u9"}) and not not_beta({"id": "u2"})


def test_an_unknown_saved_group_is_empty() -> None:
    assert not matches({"id": {"$inGroup": "nope"}}, {"id": 1})
    assert matches({"id": {"$notInGroup": "nope"}}, {"id": 1})


def test_saved_group_membership_is_strict_and_intersects_arrays() -> None:
    groups = {"g": [1, "2"]}
    assert evaluate({"id": {"$inGroup": "g"}}, {"id": "2"}, groups)
    assert not evaluate({"id": {"$inGroup": "g"}}, {"id": "1"}, groups)
    assert evaluate({"ids": {"$inGroup": "g"}}, {"ids": [7, 1]}, groups)


# --- unknown operators ----------------------------------------------------------------------


def test_an_unknown_operator_is_false() -> None:
    assert not matches({"name": {"$regx": "a"}}, {"name": "a"})
    assert not matches({"name": {"$eq": "a", "$bogus": 1}}, {"name": "a"})


# --- the compiled condition -----------------------------------------------------------------


def test_a_compiled_condition_is_reusable() -> None:
    adult = compile_condition({"age": {"$gte": 18}})
    results = [adult({"age": age}) for age in (10, 18, 40, 17)]
    assert results == [False, True, True, False]
    assert [adult.matches({"age": 20}), adult.predicate({"age": 2})] == [True, False]


def test_a_compiled_condition_ignores_later_changes_to_its_source() -> None:
    source: dict[str, Any] = {"tags": {"$in": ["a"]}, "geo": ["x"]}
    condition = compile_condition(source)
    source["tags"]["$in"].append("b")
    source["geo"].append("y")
    assert not condition({"tags": "b", "geo": ["x"]})
    assert condition({"tags": "a", "geo": ["x"]})
    assert condition.source == {"tags": {"$in": ["a"]}, "geo": ["x"]}


def test_paths_lists_the_attributes_read_outside_elem_match() -> None:
    condition = compile_condition(
        {
            "$or": [{"traits.age": {"$gt": 1}}, {"$not": {"country": "US"}}],
            "orders": {"$elemMatch": {"total": {"$gt": 5}}},
        }
    )
    assert condition.paths == frozenset({"traits.age", "country", "orders"})


def test_repr_shows_the_condition() -> None:
    assert repr(compile_condition({"a": 1})) == 'Condition({"a": 1})'
    assert repr(compile_condition({"a": "x" * 100})).endswith("...)")


def test_a_condition_that_is_not_an_object_is_refused_even_when_not_strict() -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_condition(["a"])  # type: ignore[arg-type]
    assert caught.value.problems[0].field == "(condition)"


def test_evaluate_compiles_and_runs_in_one_call() -> None:
    assert evaluate({"plan": {"$in": ["pro"]}}, {"plan": "pro"})
    assert not evaluate({"plan": {"$in": ["pro"]}}, {"plan": "free"})


def _shoppers(count: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(7)
    for _ in range(count):
        yield {
            "country": rng.choice(["US", "CA", "FR", "DE"]),
            "traits": {"age": rng.randint(12, 80)},
            "plan": rng.choice(["free", "pro", "team"]),
        }


def test_one_compiled_condition_evaluates_a_hundred_thousand_documents() -> None:
    condition: Condition = compile_condition(
        {"country": {"$in": ["US", "CA"]}, "traits.age": {"$gte": 18}, "plan": {"$ne": "free"}}
    )
    docs = list(_shoppers(100_000))

    selected = [doc for doc in docs if condition(doc)]

    expected = [
        doc
        for doc in docs
        if doc["country"] in ("US", "CA") and doc["traits"]["age"] >= 18 and doc["plan"] != "free"
    ]
    assert selected == expected
    assert 20_000 < len(selected) < 40_000
