"""JavaScript value semantics for Python JSON values.

GrowthBook conditions are defined by what a JavaScript SDK does with JSON data, so comparing
``"8"`` with ``5``, matching a regex against ``null`` or checking ``[1, 2]`` for equality
must follow JavaScript's coercion rules, not Python's. This module holds those rules, each as
a small function over plain Python JSON values:

=================  =========================================================================
Python             JavaScript
=================  =========================================================================
``None``           ``null`` (a missing attribute is ``null`` too)
``bool``           boolean (never a number: ``True`` is not ``1`` here)
``int``/``float``  number
``str``            string (compared by UTF-16 code units, like JavaScript)
``list``/``tuple`` array
``Mapping``        object; any other Python type is treated as an opaque object
=================  =========================================================================

>>> to_string([1, None, "a"]), to_number(" 0x1F "), to_number("1e3"), to_number("12px")
('1,,a', 31, 1000.0, nan)
>>> compare("8", 10), compare("8", "10")
(-1, 1)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

NAN: Final = float("nan")
_MAX_SAFE: Final = 2**53
# JavaScript's WhiteSpace and LineTerminator code points (what String.prototype.trim removes).
JS_WHITESPACE: Final = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RADIX = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}
_RADIX_DIGITS = {
    16: re.compile(r"[0-9a-fA-F]+"),
    8: re.compile(r"[0-7]+"),
    2: re.compile(r"[01]+"),
}


def is_number(value: object) -> bool:
    """True for ``int`` and ``float`` but not ``bool`` (JavaScript's ``typeof x == "number"``)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def js_type(value: object) -> str:
    """The type name GrowthBook's ``$type`` compares against."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def truthy(value: object) -> bool:
    """JavaScript truthiness: ``0``, ``NaN``, ``""``, ``false`` and ``null`` are false;
    every array and object (even empty) is true."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return value == value and value != 0
    if isinstance(value, str):
        return value != ""
    return True


def number_to_string(number: float) -> str:
    """``String(number)``: shortest round-trip digits, exponent only below 1e-6 or from 1e21."""
    if number != number:
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    if isinstance(number, int) and abs(number) <= _MAX_SAFE:
        return str(number)
    sign = "-" if number < 0 else ""
    mantissa, _, exponent = repr(abs(float(number))).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        return sign + digits + "0" * (point - count)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    exp = point - 1
    exp_text = f"e+{exp}" if exp >= 0 else f"e-{-exp}"
    head = digits[0] if count == 1 else digits[0] + "." + digits[1:]
    return sign + head + exp_text


def to_string(value: object) -> str:
    """``String(value)``, with ``null`` as ``"null"`` and arrays joined by commas."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_to_string(value)
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else to_string(item) for item in value)
    return "[object Object]"


def string_to_number(text: str) -> float:
    """``Number(text)``: trimmed; empty is 0; decimal, ``0x``/``0o``/``0b`` or Infinity."""
    text = text.strip(JS_WHITESPACE)
    if not text:
        return 0
    if _DECIMAL.fullmatch(text):
        return float(text)
    if text in ("Infinity", "+Infinity"):
        return math.inf
    if text == "-Infinity":
        return -math.inf
    radix = _RADIX.get(text[:2])
    if radix is not None and _RADIX_DIGITS[radix].fullmatch(text[2:]):
        return int(text[2:], radix)
    return NAN


def to_number(value: object) -> float:
    """``Number(value)``: ``null`` is 0, booleans 1/0, arrays via their string form."""
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        if -_MAX_SAFE <= value <= _MAX_SAFE:
            return value
        try:
            return float(value)  # JavaScript numbers are doubles
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return value
    if value is None:
        return 0
    if isinstance(value, str):
        return string_to_number(value)
    if isinstance(value, list | tuple):
        return string_to_number(to_string(value))
    return NAN


def string_compare(a: str, b: str) -> int:
    """Order two strings by UTF-16 code units, as JavaScript's ``<`` does."""
    if not (a.isascii() or b.isascii()):
        # Code-point order differs from code-unit order only between astral characters
        # (surrogate pairs) and U+E000..U+FFFF, so compare the UTF-16 encodings.
        a_units = a.encode("utf-16-be", "surrogatepass")
        b_units = b.encode("utf-16-be", "surrogatepass")
        return (a_units > b_units) - (a_units < b_units)
    return (a > b) - (a < b)


def to_primitive(value: object) -> object:
    """``ToPrimitive`` for comparisons: arrays and objects become their string forms."""
    if value is None or isinstance(value, str | int | float):
        return value
    return to_string(value)


def compare(a: object, b: object) -> int | None:
    """JavaScript's relational comparison: -1, 0 or 1, or ``None`` when undefined (NaN).

    Two strings compare as strings; anything else compares as numbers.
    """
    a, b = to_primitive(a), to_primitive(b)
    if isinstance(a, str) and isinstance(b, str):
        return string_compare(a, b)
    x, y = to_number(a), to_number(b)
    if x != x or y != y:
        return None
    return (x > y) - (x < y)


_BOOL_KEYS: Final = {True: ("boolean", True), False: ("boolean", False)}
NAN_KEY: Final = ("number", "NaN")


class _Unmatchable:
    """A key no other key equals: arrays and objects are compared by reference in JS."""

    __slots__ = ()


def identity_key(value: object) -> object:
    """A hashable key equal for values that are ``SameValueZero`` in JavaScript
    (``Array.prototype.includes``): booleans never equal numbers, NaN equals NaN, and
    arrays or objects equal nothing."""
    if isinstance(value, bool):
        return _BOOL_KEYS[value]
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, int | float):
        number = to_number(value)
        return NAN_KEY if number != number else number
    return _Unmatchable()


def strict_equal(a: object, b: object) -> bool:
    """JavaScript's ``===`` over JSON values (arrays and objects never equal a literal)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    if is_number(a):
        return is_number(b) and to_number(a) == to_number(b)
    if a is None:
        return b is None
    return False


def _key_order(keys: Mapping[str, Any]) -> list[str]:
    # JavaScript objects list array-index keys first (ascending), then the rest in order.
    indices = [
        k for k in keys if k.isascii() and k.isdigit() and str(int(k)) == k and int(k) < 2**32 - 1
    ]
    if not indices:
        return list(keys)
    index_set = set(indices)
    return sorted(indices, key=int) + [k for k in keys if k not in index_set]


def to_json(value: object) -> str:
    """``JSON.stringify(value)``: what GrowthBook compares for literal arrays and objects.

    Key order matters (as in JavaScript) and ``1.0`` prints as ``1``.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        number = to_number(value)
        return number_to_string(number) if math.isfinite(number) else "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    if isinstance(value, Mapping):
        keyed = {to_string(k): v for k, v in value.items()}
        parts = (
            f"{json.dumps(k, ensure_ascii=False)}:{to_json(keyed[k])}" for k in _key_order(keyed)
        )
        return "{" + ",".join(parts) + "}"
    return "{}"


def lower(value: Any) -> Any:
    """Lower-case strings (for the case-insensitive operators); other values unchanged."""
    return value.lower() if isinstance(value, str) else value
