"""Find what is wrong with a condition, precisely enough to fix it.

GrowthBook forgives a lot (an unknown operator or a broken regex is just false, ``$in: 5``
never matches), which hides typos in targeting rules until nobody gets the feature. Strict
compilation runs :func:`validate_condition` first and refuses the condition if it reports any
:class:`~personify.errors.Problem`. Each problem's ``field`` points into the condition, as
``$and[1].traits.age.$gt``, and its message says what is wrong and how to fix it.

>>> [problem] = validate_condition({"$or": [{"age": {"$in": 18}}]})
>>> problem.field
'$or[0].age.$in'
>>> problem.message
'"$in" needs an array of values, e.g. {"$in": ["a", "b"]}; got a number (18)'
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from personify.errors import InvalidInput, Problem
from personify.segments.jsregex import JSRegexError, compile_pattern
from personify.segments.jsvalues import is_number
from personify.segments.operators import OPERATORS, is_operator_object

ROOT: Final = "(condition)"
LOGICAL: Final = ("$and", "$or", "$nor", "$not")
TYPES: Final = ("string", "number", "boolean", "array", "object", "null")
_TYPE_ALIASES: Final = {
    "str": "string",
    "text": "string",
    "int": "number",
    "integer": "number",
    "float": "number",
    "double": "number",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
    "map": "object",
    "none": "null",
    "undefined": "null",
}
_MEMBERSHIP: Final = ("$in", "$nin", "$ini", "$nini")
_ORDERING: Final = ("$lt", "$lte", "$gt", "$gte")
_VERSIONS: Final = ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte")


def describe(value: Any) -> str:
    """A short, JSON-flavoured description of a value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        shown = text if len(text) <= 40 else text[:36] + '..."'
        return f"a string ({shown})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a Python {type(value).__name__}"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    folded = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


class _Validator:
    def __init__(
        self,
        known_paths: Callable[[str], bool] | None,
        saved_groups: Mapping[str, Any] | None,
    ) -> None:
        self.known_paths = known_paths
        self.saved_groups = saved_groups
        self.problems: list[Problem] = []

    def add(self, field: str, message: str) -> None:
        self.problems.append(Problem(field or ROOT, message))

    def document(self, condition: Any, where: str, *, check_paths: bool = True) -> None:
        if not isinstance(condition, Mapping):
            self.add(
                where,
                "a condition must be an object mapping attribute paths to values or "
                f'operators, e.g. {{"country": "US", "age": {{"$gte": 18}}}}; got '
                f"{describe(condition)}",
            )
            return
        for key, value in condition.items():
            if not isinstance(key, str):
                self.add(where, f"attribute paths must be strings; got {describe(key)}")
                continue
            field = _join(where, key)
            if key in ("$and", "$or", "$nor"):
                self.combination(key, value, field, check_paths)
            elif key == "$not":
                if isinstance(value, Mapping):
                    self.document(value, field, check_paths=check_paths)
                else:
                    self.add(
                        field,
                        '"$not" needs a condition object, e.g. {"$not": {"country": "US"}}; '
                        f"got {describe(value)}",
                    )
            elif key in OPERATORS:
                self.add(
                    field,
                    f'"{key}" is a value operator, not an attribute: put it under an attribute '
                    f'path, e.g. {{"country": {{"{key}": ...}}}}',
                )
            elif key.startswith("$") and (hint := _suggest(key, LOGICAL)):
                self.add(field, f'unknown logical operator "{key}"; did you mean "{hint}"?')
            else:
                self.path(key, field, check_paths)
                self.value(value, field, check_paths)

    def combination(self, key: str, value: Any, field: str, check_paths: bool) -> None:
        if not isinstance(value, list | tuple):
            self.add(
                field,
                f'"{key}" needs an array of condition objects, e.g. '
                f'{{"{key}": [{{"country": "US"}}, {{"plan": "pro"}}]}}; got {describe(value)}',
            )
            return
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                self.document(item, f"{field}[{index}]", check_paths=check_paths)
            else:
                self.add(
                    f"{field}[{index}]",
                    f'each entry of "{key}" must be a condition object such as '
                    f'{{"plan": "pro"}}; got {describe(item)}',
                )

    def path(self, path: str, field: str, check_paths: bool) -> None:
        if "" in path.split("."):
            self.add(
                field,
                f'attribute path "{path}" has an empty segment; write dotted paths such as '
                '"traits.age"',
            )
        elif check_paths and self.known_paths is not None and not self.known_paths(path):
            self.add(
                field,
                f'unknown attribute "{path}": no profile attribute has this path; check its '
                "spelling or declare the attribute",
            )

    def value(self, condition: Any, where: str, check_paths: bool) -> None:
        if not isinstance(condition, Mapping):
            self.literal(condition, where)
            return
        operators = [k for k in condition if isinstance(k, str) and k.startswith("$")]
        if operators and len(operators) < len(condition):
            plain = ", ".join(str(k) for k in condition if k not in operators)
            self.add(
                where,
                f"mixes operators ({', '.join(operators)}) with plain keys ({plain}); such an "
                "object is compared literally, so its operators would be ignored: use only "
                'operators (e.g. {"$gte": 18}), or only plain keys to match a whole object',
            )
        elif is_operator_object(condition):
            for name, operand in condition.items():
                self.operator(name, operand, _join(where, name), check_paths)
            return
        self.literal(condition, where)

    def literal(self, value: Any, where: str) -> None:
        """Literals must be JSON: strings, finite numbers, booleans, null, arrays, objects."""
        if value is None or isinstance(value, bool | str | int):
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                self.add(where, f"{value} is not a JSON number; use a finite number")
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                self.literal(item, f"{where}[{index}]")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str):
                    self.literal(item, _join(where, key))
                else:
                    self.add(where, f"object keys must be strings; got {describe(key)}")
        else:
            self.add(
                where,
                f"{describe(value)} is not a JSON value; use a string, number, boolean, null, "
                "array or object",
            )

    def operator(self, name: str, operand: Any, field: str, check_paths: bool) -> None:
        if name not in OPERATORS:
            self.unknown_operator(name, field)
        elif name in ("$eq", "$ne"):
            if isinstance(operand, list | tuple | Mapping):
                self.add(
                    field,
                    f'"{name}" compares with strict equality, so {describe(operand)} never '
                    "equals anything; to match a whole array or object write it directly, e.g. "
                    '{"tags": ["a", "b"]}',
                )
            else:
                self.literal(operand, field)
        elif name in _ORDERING:
            if not (is_number(operand) or isinstance(operand, str)):
                self.add(field, f'"{name}" needs a number or a string; got {describe(operand)}')
            else:
                self.literal(operand, field)
        elif name == "$exists":
            if not isinstance(operand, bool):
                self.add(field, f'"$exists" needs true or false; got {describe(operand)}')
        elif name in _MEMBERSHIP:
            self.membership(name, operand, field)
        elif name in ("$all", "$alli"):
            if not isinstance(operand, list | tuple):
                self.add(
                    field,
                    f'"{name}" needs an array of the values the attribute must all contain, '
                    f'e.g. {{"{name}": ["a", "b"]}}; got {describe(operand)}',
                )
                return
            for index, item in enumerate(operand):
                self.value(item, f"{field}[{index}]", check_paths)
        else:
            self.special(name, operand, field, check_paths)

    def special(self, name: str, operand: Any, field: str, check_paths: bool) -> None:
        if name == "$size":
            whole = is_number(operand) and float(operand).is_integer() and operand >= 0
            if is_operator_object(operand):
                self.value(operand, field, check_paths)
            elif not whole:
                self.add(
                    field,
                    '"$size" needs a whole number of elements or an operator object such as '
                    f'{{"$gte": 2}}; got {describe(operand)}',
                )
        elif name == "$elemMatch":
            if is_operator_object(operand):
                self.value(operand, field, check_paths)
            elif isinstance(operand, Mapping):  # paths inside are relative to the elements
                self.document(operand, field, check_paths=False)
            else:
                self.add(
                    field,
                    '"$elemMatch" needs an object: operators for arrays of values (e.g. '
                    '{"$gt": 10}) or a condition for arrays of objects (e.g. {"name": "x"}); '
                    f"got {describe(operand)}",
                )
        elif name == "$not":
            self.value(operand, field, check_paths)
        elif name in ("$regex", "$regexi"):
            self.regex(name, operand, field)
        elif name == "$type":
            self.type_name(operand, field)
        elif name in _VERSIONS:
            if not isinstance(operand, str) or not operand.strip():
                self.add(
                    field,
                    f'"{name}" needs a version string such as "1.2.3"; got {describe(operand)}',
                )
        else:
            self.group(name, operand, field)

    def membership(self, name: str, operand: Any, field: str) -> None:
        if not isinstance(operand, list | tuple):
            self.add(
                field,
                f'"{name}" needs an array of values, e.g. {{"{name}": ["a", "b"]}}; got '
                f"{describe(operand)}",
            )
            return
        for index, item in enumerate(operand):
            if isinstance(item, list | tuple | Mapping):
                self.add(
                    f"{field}[{index}]",
                    f'{describe(item)} inside "{name}" never matches (values are compared with '
                    "strict equality); list only strings, numbers, booleans or null",
                )
            else:
                self.literal(item, f"{field}[{index}]")

    def regex(self, name: str, operand: Any, field: str) -> None:
        if not isinstance(operand, str):
            self.add(field, f'"{name}" needs a pattern string; got {describe(operand)}')
            return
        try:
            compile_pattern(operand, name == "$regexi")
        except JSRegexError as exc:
            self.add(
                field,
                f"{json.dumps(operand, ensure_ascii=False)} is not a valid JavaScript regular "
                f"expression ({exc}); escape special characters such as ( [ * + ? with a "
                "backslash to match them literally",
            )

    def type_name(self, operand: Any, field: str) -> None:
        if isinstance(operand, str) and operand in TYPES:
            return
        names = ", ".join(f'"{t}"' for t in TYPES)
        alias = _TYPE_ALIASES.get(operand.lower()) if isinstance(operand, str) else None
        hint = f'; did you mean "{alias}"?' if alias else ""
        self.add(field, f'"$type" must be one of {names}; got {describe(operand)}{hint}')

    def group(self, name: str, operand: Any, field: str) -> None:
        if not isinstance(operand, str):
            self.add(field, f'"{name}" needs the id of a saved group; got {describe(operand)}')
        elif self.saved_groups is not None:
            if operand not in self.saved_groups:
                known = ", ".join(sorted(self.saved_groups)[:10]) or "none"
                self.add(field, f'unknown saved group "{operand}"; known groups: {known}')
            elif not isinstance(self.saved_groups[operand], list | tuple):
                self.add(
                    field,
                    f'saved group "{operand}" must be an array of member values; it is '
                    f"{describe(self.saved_groups[operand])}",
                )

    def unknown_operator(self, name: str, field: str) -> None:
        if name in LOGICAL:  # "$not" is also a value operator, so only $and $or $nor get here
            self.add(
                field,
                f'"{name}" combines whole conditions, so it belongs beside attribute paths, '
                f'e.g. {{"{name}": [{{"age": {{"$lt": 18}}}}, {{"age": {{"$gt": 65}}}}]}}',
            )
            return
        hint = _suggest(name, list(OPERATORS))
        tail = f'did you mean "{hint}"?' if hint else "operators are " + ", ".join(OPERATORS)
        self.add(field, f'unknown operator "{name}"; {tail}')


def validate_condition(
    condition: Any,
    *,
    known_paths: Callable[[str], bool] | None = None,
    saved_groups: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """Every problem with ``condition``; an empty list means it is well-formed.

    ``known_paths`` (optional) says whether an attribute path exists; paths inside
    ``$elemMatch`` are relative to array elements and are not checked. With ``saved_groups``,
    ``$inGroup`` ids must name one of them.
    """
    validator = _Validator(known_paths, saved_groups)
    validator.document(condition, "")
    return validator.problems


def invalid_condition(problems: list[Problem]) -> InvalidInput:
    """The error strict compilation raises: the first problem in the message, all attached."""
    first = problems[0]
    more = len(problems) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return InvalidInput(
        f"invalid condition: {first.field}: {first.message}{tail}",
        hint="fix each listed problem; the condition language is GrowthBook's "
        "(see personify.segments)",
        problems=problems,
    )
