"""The value operators (``$eq``, ``$in``, ``$regex``, ``$vgt``, ...), each compiled once.

Every operator is a factory: given its operand (the JSON on the condition side) it returns a
predicate over the attribute value, doing all the work that depends only on the operand up
front (regexes compiled, versions padded, ``$in`` lists turned into hash sets). Values follow
JavaScript semantics (:mod:`personify.segments.jsvalues`), as GrowthBook's SDKs do.

A malformed operand (``$in`` given a number, an invalid ``$regex``) makes the operator false
rather than failing: strict compilation rejects such conditions before they get here.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from personify.segments.jsregex import JSRegexError, compile_pattern
from personify.segments.jsvalues import (
    NAN_KEY,
    compare,
    identity_key,
    is_number,
    js_type,
    lower,
    strict_equal,
    string_compare,
    to_number,
    to_string,
    truthy,
)
from personify.segments.versions import padded

Predicate = Callable[[Any], bool]


class Compiler(Protocol):
    """What operators need from the compiler to compile their nested conditions."""

    saved_groups: Mapping[str, Any]

    def value(self, condition: Any) -> Predicate:
        """Compile a condition on one value (a literal or an operator object)."""
        ...

    def document(self, condition: Any, *, nested: bool = False) -> Predicate:
        """Compile a condition on a document (attribute paths to conditions)."""
        ...


Factory = Callable[[Any, Compiler], Predicate]


def never(_: Any) -> bool:
    return False


def always(_: Any) -> bool:
    return True


def _ordering(compare_op: Callable[[Any, Any], bool]) -> Factory:
    """``$lt``-style operators: numbers fast, then JavaScript's relational comparison."""

    def factory(operand: Any, _: Compiler) -> Predicate:
        if is_number(operand):
            number = to_number(operand)

            def versus_number(value: Any) -> bool:
                kind = type(value)
                if kind is int or kind is float:
                    return compare_op(value, number)
                order = compare(value, number)
                return order is not None and compare_op(order, 0)

            return versus_number
        if isinstance(operand, str):
            text, ascii_text = operand, operand.isascii()

            def versus_string(value: Any) -> bool:
                if type(value) is str:
                    if ascii_text or value.isascii():
                        return compare_op(value, text)
                    return compare_op(string_compare(value, text), 0)
                order = compare(value, text)
                return order is not None and compare_op(order, 0)

            return versus_string

        def versus_other(value: Any) -> bool:
            order = compare(value, operand)
            return order is not None and compare_op(order, 0)

        return versus_other

    return factory


def _version(compare_op: Callable[[int, int], bool]) -> Factory:
    def factory(operand: Any, _: Compiler) -> Predicate:
        expected = padded(operand)
        return lambda value: compare_op(string_compare(padded(value), expected), 0)

    return factory


def _eq(operand: Any, _: Compiler) -> Predicate:
    if isinstance(operand, str):
        return lambda value: isinstance(value, str) and value == operand
    if is_number(operand):
        number = to_number(operand)

        def equals_number(value: Any) -> bool:
            kind = type(value)
            if kind is int or kind is float:
                return bool(value == number)
            return is_number(value) and to_number(value) == number

        return equals_number
    if operand is None or isinstance(operand, bool):
        return lambda value: strict_equal(value, operand)
    return never  # === compares arrays and objects by reference: a literal never matches


def _ne(operand: Any, compiler: Compiler) -> Predicate:
    if isinstance(operand, str):
        return lambda value: not (isinstance(value, str) and value == operand)
    equal = _eq(operand, compiler)
    if equal is never:
        return always
    return lambda value: not equal(value)


def _membership(values: Any, *, fold: bool) -> Predicate:
    """``isIn``: the value (or, for an array, any of its elements) is one of ``values``."""
    keys = frozenset(identity_key(lower(v) if fold else v) for v in values)
    has_nan = NAN_KEY in keys

    def key(value: Any) -> object:
        return identity_key(lower(value) if fold else value)

    def is_in(value: Any) -> bool:
        kind = type(value)
        if kind is str:
            return (value.lower() if fold else value) in keys
        if kind is int or kind is float:
            return value in keys or (has_nan and value != value)
        if isinstance(value, list | tuple):
            return any(key(item) in keys for item in value)
        return key(value) in keys

    return is_in


def _in(*, fold: bool = False, negate: bool = False) -> Factory:
    def factory(operand: Any, _: Compiler) -> Predicate:
        if not isinstance(operand, list | tuple):
            return never
        is_in = _membership(operand, fold=fold)
        return (lambda value: not is_in(value)) if negate else is_in

    return factory


def _group(*, negate: bool) -> Factory:
    def factory(operand: Any, compiler: Compiler) -> Predicate:
        members = compiler.saved_groups.get(to_string(operand))
        is_in = _membership(members if isinstance(members, list | tuple) else [], fold=False)
        return (lambda value: not is_in(value)) if negate else is_in

    return factory


def _all(*, fold: bool) -> Factory:
    def factory(operand: Any, compiler: Compiler) -> Predicate:
        if not isinstance(operand, list | tuple):
            return never
        wanted = [compiler.value(lower(item) if fold else item) for item in operand]

        def has_all(value: Any) -> bool:
            if not isinstance(value, list | tuple):
                return False
            items = [lower(item) for item in value] if fold else value
            return all(any(test(item) for item in items) for test in wanted)

        return has_all

    return factory


def _size(operand: Any, compiler: Compiler) -> Predicate:
    test = compiler.value(operand)
    return lambda value: isinstance(value, list | tuple) and test(len(value))


def is_operator_object(condition: Any) -> bool:
    """A non-empty object whose keys all start with ``$`` (anything else is a literal)."""
    return (
        isinstance(condition, Mapping)
        and len(condition) > 0
        and all(isinstance(k, str) and k.startswith("$") for k in condition)
    )


def _elem_match(operand: Any, compiler: Compiler) -> Predicate:
    if not isinstance(operand, Mapping):
        return never
    if is_operator_object(operand):
        check = compiler.value(operand)  # an array of values: {"$gt": 10}
    else:
        check = compiler.document(operand, nested=True)  # an array of objects: {"name": "x"}

    def any_element(value: Any) -> bool:
        if not isinstance(value, list | tuple):
            return False
        # As in GrowthBook, falsy elements (0, "", false, null) are skipped.
        return any(truthy(item) and check(item) for item in value)

    return any_element


def _exists(operand: Any, _: Compiler) -> Predicate:
    if truthy(operand):
        return lambda value: value is not None
    return lambda value: value is None


def _type(operand: Any, _: Compiler) -> Predicate:
    if not isinstance(operand, str):
        return never
    return lambda value: js_type(value) == operand


def _not(operand: Any, compiler: Compiler) -> Predicate:
    test = compiler.value(operand)
    return lambda value: not test(value)


def _regex(*, ignore_case: bool) -> Factory:
    def factory(operand: Any, _: Compiler) -> Predicate:
        try:
            regex = compile_pattern(to_string(operand), ignore_case)
        except JSRegexError:
            return never  # GrowthBook: an invalid pattern matches nothing
        return regex.test

    return factory


OPERATORS: Final[Mapping[str, Factory]] = {
    "$eq": _eq,
    "$ne": _ne,
    "$lt": _ordering(operator.lt),
    "$lte": _ordering(operator.le),
    "$gt": _ordering(operator.gt),
    "$gte": _ordering(operator.ge),
    "$exists": _exists,
    "$in": _in(),
    "$nin": _in(negate=True),
    "$ini": _in(fold=True),
    "$nini": _in(fold=True, negate=True),
    "$all": _all(fold=False),
    "$alli": _all(fold=True),
    "$size": _size,
    "$elemMatch": _elem_match,
    "$not": _not,
    "$regex": _regex(ignore_case=False),
    "$regexi": _regex(ignore_case=True),
    "$type": _type,
    "$veq": _version(operator.eq),
    "$vne": _version(operator.ne),
    "$vgt": _version(operator.gt),
    "$vgte": _version(operator.ge),
    "$vlt": _version(operator.lt),
    "$vlte": _version(operator.le),
    "$inGroup": _group(negate=False),
    "$notInGroup": _group(negate=True),
}
"""Every value operator, by name. An operator not listed here is false (as in GrowthBook)."""
