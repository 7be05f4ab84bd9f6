"""Strict compilation: each kind of malformed condition is refused with a pointed problem."""

from __future__ import annotations

from typing import Any

import pytest

from personify.errors import InvalidInput, Problem
from personify.segments import compile_condition, validate_condition


def only_problem(condition: Any, **options: Any) -> Problem:
    problems = validate_condition(condition, **options)
    assert len(problems) == 1, problems
    return problems[0]


def test_a_well_formed_condition_has_no_problems() -> None:
    condition = {
        "$and": [{"traits.age": {"$gte": 18}}, {"$or": [{"plan": "pro"}, {"vip": True}]}],
        "$not": {"country": {"$in": ["KP"]}},
        "tags": {"$elemMatch": {"$regex": "^sale-"}, "$size": {"$gt": 0}},
        "orders": {"$elemMatch": {"total": {"$gt": 5}}},
        "version": {"$vgte": "2.4.0"},
        "kind": {"$type": "string", "$exists": True},
        "skus": {"$all": ["A", {"$regexi": "^b"}]},
        "id": {"$inGroup": "beta"},
        "geo": {"lat": 1.5, "lon": [2]},
    }
    assert validate_condition(condition, saved_groups={"beta": ["u1"]}) == []
    assert compile_condition(condition, strict=True, saved_groups={"beta": ["u1"]})(
        {
            "traits": {"age": 20},
            "plan": "pro",
            "tags": ["sale-1"],
            "orders": [{"total": 9}],
            "version": "2.4.1",
            "kind": "k",
            "skus": ["A", "Bx"],
            "id": "u1",
            "geo": {"lat": 1.5, "lon": [2]},
        }
    )


def test_a_condition_must_be_an_object() -> None:
    problem = only_problem(["country", "US"])
    assert problem.field == "(condition)"
    assert "must be an object" in problem.message and "got an array" in problem.message


def test_an_unknown_operator_is_named_with_a_suggestion() -> None:
    problem = only_problem({"$and": [{"a": 1}, {"traits.age": {"$gtt": 5}}]})
    assert problem.field == "$and[1].traits.age.$gtt"
    assert problem.message == 'unknown operator "$gtt"; did you mean "$gt"?'


def test_an_unknown_operator_without_a_near_name_lists_the_operators() -> None:
    problem = only_problem({"a": {"$frobnicate": 1}})
    assert "operators are $eq, $ne" in problem.message


@pytest.mark.parametrize("name", ["$in", "$nin", "$ini", "$nini"])
def test_membership_operators_need_an_array(name: str) -> None:
    problem = only_problem({"country": {name: "US"}})
    assert problem.field == f"country.{name}"
    assert problem.message.startswith(f'"{name}" needs an array of values')
    assert 'got a string ("US")' in problem.message


def test_arrays_and_objects_inside_in_never_match() -> None:
    problem = only_problem({"tags": {"$in": ["a", ["b"]]}})
    assert problem.field == "tags.$in[1]"
    assert "never matches" in problem.message and "strict equality" in problem.message


def test_all_needs_an_array_of_conditions() -> None:
    assert only_problem({"t": {"$all": "a"}}).field == "t.$all"
    assert only_problem({"t": {"$alli": ["a", {"$gx": 1}]}}).field == "t.$alli[1].$gx"


@pytest.mark.parametrize("operand", ["3", -1, 2.5, None, [3]])
def test_size_needs_a_whole_number_or_an_operator_object(operand: Any) -> None:
    problem = only_problem({"tags": {"$size": operand}})
    assert problem.field == "tags.$size"
    assert "whole number of elements or an operator object" in problem.message


def test_size_checks_its_nested_condition() -> None:
    assert only_problem({"tags": {"$size": {"$gt": "x", "$lt": None}}}).field == "tags.$size.$lt"


def test_regex_must_be_a_valid_javascript_pattern() -> None:
    problem = only_problem({"name": {"$regex": "/???***[)"}})
    assert problem.field == "name.$regex"
    assert "not a valid JavaScript regular expression (nothing to repeat" in problem.message
    assert "escape special characters" in problem.message
    assert (
        only_problem({"name": {"$regexi": 5}}).message
        == '"$regexi" needs a pattern string; got a number (5)'
    )


def test_python_only_regex_syntax_is_refused() -> None:
    assert only_problem({"name": {"$regex": "(?P<x>a)"}}).field == "name.$regex"


def test_exists_needs_a_boolean() -> None:
    problem = only_problem({"email": {"$exists": "yes"}})
    assert problem.field == "email.$exists"
    assert problem.message == '"$exists" needs true or false; got a string ("yes")'


@pytest.mark.parametrize("name", ["$and", "$or", "$nor"])
def test_combinations_need_an_array_of_objects(name: str) -> None:
    problem = only_problem({name: {"plan": "pro"}})
    assert problem.field == name
    assert problem.message.startswith(f'"{name}" needs an array of condition objects')
    entry = only_problem({name: [{"plan": "pro"}, "vip"]})
    assert entry.field == f"{name}[1]"
    assert entry.message.startswith(f'each entry of "{name}" must be a condition object')


def test_not_needs_a_condition_object() -> None:
    problem = only_problem({"$not": [{"plan": "pro"}]})
    assert problem.field == "$not"
    assert problem.message.startswith('"$not" needs a condition object')


@pytest.mark.parametrize("name", ["$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"])
def test_version_operators_need_a_version_string(name: str) -> None:
    problem = only_problem({"app.version": {name: 2}})
    assert problem.field == f"app.version.{name}"
    assert problem.message == f'"{name}" needs a version string such as "1.2.3"; got a number (2)'


def test_ordering_needs_a_number_or_a_string() -> None:
    problem = only_problem({"age": {"$gt": None}})
    assert (problem.field, problem.message) == (
        "age.$gt",
        '"$gt" needs a number or a string; got null',
    )


def test_eq_with_an_array_never_matches() -> None:
    problem = only_problem({"tags": {"$eq": ["a"]}})
    assert problem.field == "tags.$eq"
    assert "strict equality" in problem.message and '{"tags": ["a", "b"]}' in problem.message


def test_type_must_be_a_javascript_type_name() -> None:
    problem = only_problem({"age": {"$type": "int"}})
    assert problem.field == "age.$type"
    assert problem.message.endswith('got a string ("int"); did you mean "number"?')


def test_elem_match_needs_an_object() -> None:
    problem = only_problem({"tags": {"$elemMatch": "a"}})
    assert problem.field == "tags.$elemMatch"
    assert problem.message.startswith('"$elemMatch" needs an object')


def test_saved_groups_must_be_known_when_given() -> None:
    problem = only_problem({"id": {"$inGroup": "betta"}}, saved_groups={"beta": [1], "qa": [2]})
    assert problem.field == "id.$inGroup"
    assert problem.message == 'unknown saved group "betta"; known groups: beta, qa'
    assert only_problem({"id": {"$notInGroup": 7}}).message.startswith('"$notInGroup" needs the id')
    bad_group = only_problem({"id": {"$inGroup": "g"}}, saved_groups={"g": "u1"})
    assert "must be an array of member values" in bad_group.message


def test_known_paths_rejects_unknown_attributes() -> None:
    known = {"traits.age", "country", "orders"}.__contains__
    condition = {
        "$or": [{"traits.agee": {"$gt": 1}}, {"country": "US"}],
        "orders": {"$elemMatch": {"total": 1}},  # element paths are not checked
    }
    problem = only_problem(condition, known_paths=known)
    assert problem.field == "$or[0].traits.agee"
    assert problem.message.startswith('unknown attribute "traits.agee"')


def test_paths_must_not_have_empty_segments() -> None:
    problem = only_problem({"traits..age": 1})
    assert problem.field == "traits..age"
    assert "empty segment" in problem.message


def test_mixing_operators_and_plain_keys_is_refused() -> None:
    problem = only_problem({"age": {"$gt": 1, "max": 5}})
    assert problem.field == "age"
    assert problem.message.startswith("mixes operators ($gt) with plain keys (max)")


def test_a_value_operator_is_not_an_attribute() -> None:
    problem = only_problem({"$in": ["a"]})
    assert problem.field == "$in"
    assert problem.message.startswith('"$in" is a value operator, not an attribute')


def test_a_combination_inside_a_value_is_misplaced() -> None:
    problem = only_problem({"age": {"$or": [{"$lt": 1}]}})
    assert problem.field == "age.$or"
    assert "belongs beside attribute paths" in problem.message


def test_a_misspelt_logical_operator_is_caught() -> None:
    problem = only_problem({"$andd": [{"a": 1}]})
    assert problem.message == 'unknown logical operator "$andd"; did you mean "$and"?'


def test_attribute_names_starting_with_a_dollar_are_allowed() -> None:
    assert validate_condition({"$groups": {"$elemMatch": {"$eq": "a"}}}) == []


def test_values_must_be_json() -> None:
    assert only_problem({"a": float("nan")}).message.startswith("nan is not a JSON number")
    problem = only_problem({"a": {"$in": [{1, 2}]}})
    assert problem.field == "a.$in[0]"
    assert "a Python set is not a JSON value" in problem.message


def test_every_problem_is_reported() -> None:
    problems = validate_condition(
        {"a": {"$in": 1, "$exists": "x"}, "$or": [{"b": {"$regex": "("}}], "c": {"$type": 1}}
    )
    assert [p.field for p in problems] == ["a.$in", "a.$exists", "$or[0].b.$regex", "c.$type"]


def test_strict_compilation_raises_invalid_input_with_every_problem() -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_condition({"age": {"$gtt": 5}, "tags": {"$size": "2"}}, strict=True)
    error = caught.value
    assert error.status == 400
    assert error.message == (
        'invalid condition: age.$gtt: unknown operator "$gtt"; did you mean "$gt"? '
        "(and 1 more problem)"
    )
    assert error.hint and "fix each listed problem" in error.hint
    assert [p.field for p in error.problems] == ["age.$gtt", "tags.$size"]
    assert error.as_dict()["problems"][1]["field"] == "tags.$size"


def test_strict_compilation_checks_known_paths() -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_condition({"agee": 1}, strict=True, known_paths=lambda path: path == "age")
    assert caught.value.problems == [
        Problem(
            "agee",
            'unknown attribute "agee": no profile attribute has this path; check its '
            "spelling or declare the attribute",
        )
    ]


def test_non_strict_compilation_accepts_what_strict_refuses() -> None:
    condition = {"name": {"$regx": "a"}, "n": {"$in": 1}}
    assert compile_condition(condition)({"name": "a", "n": 1}) is False
    with pytest.raises(InvalidInput):
        compile_condition(condition, strict=True)
