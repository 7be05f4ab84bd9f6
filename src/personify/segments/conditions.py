"""Targeting conditions: GrowthBook's condition language, compiled once into a predicate.

A condition is a JSON object in the MongoDB style GrowthBook uses for targeting: keys are
attribute paths (``"traits.age"``, ``"cart.items.0.sku"``) or the logical operators ``$and``,
``$or``, ``$nor`` and ``$not``; values are literals (equality, JavaScript-style) or operator
objects (``{"$gte": 18}``). :func:`compile_condition` turns it into a :class:`Condition`: a
tree of small closures built once, with paths split, regexes compiled, versions padded and
``$in`` lists hashed, so evaluating it re-parses nothing.

Semantics are GrowthBook's, which are JavaScript's: a missing attribute is ``null``,
``{"age": {"$gt": 5}}`` accepts ``"8"``, ``{"plan": "10"}`` accepts ``10``, an unknown operator
or an invalid regex is simply false. The rules are in :mod:`.operators` and
:mod:`.jsvalues`. Pass ``strict=True`` to reject such mistakes instead, with a precise
message per problem (see :mod:`.validation`).

>>> adult_in_eu = compile_condition({"traits.age": {"$gte": 18}, "country": {"$in": ["FR", "DE"]}})
>>> adult_in_eu({"traits": {"age": 30}, "country": "FR"}), adult_in_eu({"country": "FR"})
(True, False)
>>> sorted(adult_in_eu.paths)
['country', 'traits.age']
>>> evaluate({"plan": {"$ne": "free"}}, {})
True
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from personify.segments.jsvalues import to_json, to_number, to_string, truthy
from personify.segments.operators import (
    OPERATORS,
    Compiler,
    Predicate,
    always,
    is_operator_object,
    never,
)
from personify.segments.validation import invalid_condition, validate_condition

_MISSING: Final = object()
_LENGTH: Final = -1  # the step for "length" on an array, as JavaScript's `"length" in array`
_Steps = tuple[tuple[str, int | None], ...]


def _step(part: str) -> tuple[str, int | None]:
    """A path segment, with its array index when it is one (canonical, like JavaScript)."""
    if part == "length":
        return part, _LENGTH
    if part.isascii() and part.isdigit() and (part == "0" or part[0] != "0"):
        return part, int(part)
    return part, None


def _lookup(document: Any, steps: _Steps) -> Any:
    """GrowthBook's ``getPath``: follow the path through objects and arrays, else ``None``."""
    current = document
    for key, index in steps:
        if isinstance(current, Mapping):
            current = current.get(key, _MISSING)
            if current is _MISSING:
                return None
        elif index is not None and isinstance(current, list | tuple):
            if index == _LENGTH:
                current = len(current)
            elif index < len(current):
                current = current[index]
            else:
                return None
        else:
            return None
    return current


def _negate(test: Predicate) -> Predicate:
    if test is always:
        return never
    if test is never:
        return always
    return lambda value: not test(value)


def _all_of(tests: list[Predicate]) -> Predicate:
    if never in tests:
        return never
    tests = [t for t in tests if t is not always]
    if not tests:
        return always
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda value: first(value) and second(value)
    if len(tests) == 3:
        first, second, third = tests
        return lambda value: first(value) and second(value) and third(value)
    return lambda value: all(test(value) for test in tests)


def _any_of(tests: list[Predicate]) -> Predicate:
    if not tests or always in tests:
        return always  # as in GrowthBook, an empty $or is true
    tests = [t for t in tests if t is not never]
    if not tests:
        return never
    if len(tests) == 1:
        return tests[0]
    # Spelled out for the common small cases: a generator per call costs more than the tests.
    if len(tests) == 2:
        first, second = tests
        return lambda value: first(value) or second(value)
    if len(tests) == 3:
        first, second, third = tests
        return lambda value: first(value) or second(value) or third(value)
    return lambda value: any(test(value) for test in tests)


class _Compiler(Compiler):
    def __init__(self, saved_groups: Mapping[str, Any]) -> None:
        self.saved_groups = saved_groups
        self.paths: set[str] = set()
        self._nesting = 0  # > 0 inside $elemMatch, where paths are relative to elements

    def document(self, condition: Any, *, nested: bool = False) -> Predicate:
        if not isinstance(condition, Mapping):
            return never
        self._nesting += nested
        try:
            return _all_of([self._clause(key, value) for key, value in condition.items()])
        finally:
            self._nesting -= nested

    def _clause(self, key: Any, condition: Any) -> Predicate:
        if key in ("$and", "$or", "$nor"):
            if not isinstance(condition, list | tuple):
                return never
            tests = [self.document(item) for item in condition]
            if key == "$and":
                return _all_of(tests)
            return _any_of(tests) if key == "$or" else _negate(_any_of(tests))
        if key == "$not":
            return _negate(self.document(condition)) if isinstance(condition, Mapping) else never
        return self._field(key if isinstance(key, str) else to_string(key), condition)

    def _field(self, path: str, condition: Any) -> Predicate:
        if not self._nesting:
            self.paths.add(path)
        test = self.value(condition)
        if test is always or test is never:
            return test  # reading the attribute cannot change the answer
        steps = tuple(_step(part) for part in path.split("."))
        if len(steps) == 1:

            def top_level(document: Any) -> bool:
                if type(document) is dict:
                    return test(document.get(path))
                return test(_lookup(document, steps))

            return top_level
        if len(steps) == 2:
            (outer, _), (inner, _) = steps

            def nested(document: Any) -> bool:
                if type(document) is dict:
                    parent = document.get(outer)
                    if type(parent) is dict:
                        return test(parent.get(inner))
                return test(_lookup(document, steps))

            return nested
        return lambda document: test(_lookup(document, steps))

    def value(self, condition: Any) -> Predicate:
        """GrowthBook's ``evalConditionValue``: a literal, or an object of operators."""
        if isinstance(condition, str):
            text = condition
            return lambda value: value == text if type(value) is str else to_string(value) == text
        if isinstance(condition, bool):  # any truthy value, but never null
            wanted = condition
            return lambda value: value is not None and truthy(value) is wanted
        if isinstance(condition, int | float):
            number = to_number(condition)

            def number_equals(value: Any) -> bool:
                kind = type(value)
                if kind is int or kind is float:
                    return bool(value == number)
                return to_number(value) == number

            return number_equals
        if condition is None:
            return lambda value: value is None
        if is_operator_object(condition):
            return _all_of(
                [
                    OPERATORS.get(name, _unknown)(operand, self)
                    for name, operand in condition.items()
                ]
            )
        literal = to_json(condition)  # arrays and other objects: equal JSON text
        return lambda value: to_json(value) == literal


def _unknown(_operand: Any, _compiler: Compiler) -> Predicate:
    return never  # as in GrowthBook, an unknown operator is false


class Condition:
    """A compiled condition: call it (or :meth:`matches`) with a document's attributes.

    Reusable and thread-safe; :attr:`paths` lists the attribute paths the condition reads
    (outside ``$elemMatch``), so callers know which changes can affect the result.
    """

    __slots__ = ("_source", "_test", "paths")

    def __init__(self, test: Predicate, source: Mapping[str, Any], paths: frozenset[str]) -> None:
        self._test = test
        self._source = source
        self.paths = paths

    def __call__(self, attributes: Mapping[str, Any]) -> bool:
        return self._test(attributes)

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        """Whether the attributes satisfy the condition (same as calling it)."""
        return self._test(attributes)

    @property
    def predicate(self) -> Callable[[Mapping[str, Any]], bool]:
        """The bare compiled function, for the tightest loops (``filter(c.predicate, docs)``)."""
        return self._test

    @property
    def source(self) -> dict[str, Any]:
        """A copy of the condition this was compiled from."""
        return copy.deepcopy(dict(self._source))

    def __repr__(self) -> str:
        text = json.dumps(self._source, default=str)
        return f"Condition({text if len(text) <= 80 else text[:77] + '...'})"


def compile_condition(
    condition: Mapping[str, Any],
    *,
    saved_groups: Mapping[str, list[Any]] | None = None,
    strict: bool = False,
    known_paths: Callable[[str], bool] | None = None,
) -> Condition:
    """Compile a condition once; the result is a reusable predicate over attribute documents.

    ``saved_groups`` maps group ids to their member lists (for ``$inGroup``); they are read
    now, so recompile when they change. Non-strict compilation reproduces GrowthBook exactly,
    including its forgiving parts (an unknown operator or invalid regex is false); with
    ``strict=True`` any problem :func:`validate_condition` finds raises
    :class:`~personify.errors.InvalidInput` listing every problem (``known_paths`` and the
    saved group ids are checked too).

    >>> vip = compile_condition({"$or": [{"plan": "pro"}, {"orders": {"$gte": 10}}]})
    >>> [vip(doc) for doc in ({"plan": "pro"}, {"orders": 12}, {"orders": "3"})]
    [True, True, False]
    >>> compile_condition({"age": {"$gtt": 5}}, strict=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    personify.errors.InvalidInput: invalid condition: age.$gtt: unknown operator "$gtt"; did ...
    """
    if strict:
        problems = validate_condition(condition, known_paths=known_paths, saved_groups=saved_groups)
        if problems:
            raise invalid_condition(problems)
    elif not isinstance(condition, Mapping):
        raise invalid_condition(validate_condition(condition))
    compiler = _Compiler(saved_groups or {})
    test = compiler.document(condition)
    return Condition(test, copy.deepcopy(condition), frozenset(compiler.paths))


def evaluate(
    condition: Mapping[str, Any],
    attributes: Mapping[str, Any],
    saved_groups: Mapping[str, list[Any]] | None = None,
) -> bool:
    """Compile and evaluate in one go (compile once with :func:`compile_condition` to reuse).

    >>> evaluate({"version": {"$vgte": "2.0.0"}}, {"version": "v2.1.0-beta"})
    True
    """
    return compile_condition(condition, saved_groups=saved_groups)(attributes)


__all__ = ["Condition", "compile_condition", "evaluate"]
