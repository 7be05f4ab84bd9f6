"""JavaScript regular expressions (what ``$regex`` means in GrowthBook) run on Python's ``re``.

A pattern is read with JavaScript's grammar (web-compatible, non-unicode mode, as
``new RegExp(pattern)`` reads it) and rewritten for Python, so a pattern means the same in both:

- ``$`` is the end of the input (Python's ``$`` also matches before a final newline);
- ``.`` excludes every JavaScript line terminator; ``\\d``, ``\\w``, ``\\b`` are ASCII and
  ``\\s`` is JavaScript's whitespace set;
- JavaScript-only syntax is translated (``(?<name>``, ``\\k<name>``, ``[^]``, ``[]``, ``\\cX``,
  legacy octal escapes, identity escapes such as ``\\a`` or ``\\z`` meaning the letter), and a
  backreference to a group that has not matched matches the empty string;
- Python-only syntax is rejected (``(?P<..>``, ``(?i)``, ``(?>..)``, possessive ``a*+``),
  as is what JavaScript rejects (``*a``, ``a**``, unbalanced brackets, ``x{2,1}``);
- text is matched as UTF-16 code units, so ``.`` matches half of an emoji as in JavaScript;
- ``$regexi`` uses JavaScript's case-insensitivity (both sides upper-cased, where Python would
  fold the long s "\\u017f" to "s" and the Kelvin sign to "k").

Known difference: Python needs a lookbehind of fixed width; ``(?<=a+)b`` is rejected.

>>> compile_pattern("^ping$", False).test("ping\\n")
False
>>> compile_pattern("\\\\d+", False).test(12), compile_pattern("^NULL", True).test(None)
(True, True)
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Final

from personify.segments.jsvalues import to_string

_WORD: Final = "A-Za-z0-9_"
_SPACE: Final = (
    "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
)
_SETS: Final = {"d": "0-9", "w": _WORD, "s": _SPACE}
_BOUNDARY: Final = f"(?:(?<=[{_WORD}])(?![{_WORD}])|(?<![{_WORD}])(?=[{_WORD}]))"
_NOT_BOUNDARY: Final = f"(?:(?<=[{_WORD}])(?=[{_WORD}])|(?<![{_WORD}])(?![{_WORD}]))"
_DOT: Final = "[^\\n\\r\\u2028\\u2029]"
_CONTROL: Final = {"f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_SPECIAL: Final = frozenset(".^$*+?{}[]\\|()")
_CLASS_SPECIAL: Final = frozenset("\\]^-[&~|")
_BRACES: Final = re.compile(r"\{([0-9]+)(?:(,)([0-9]*))?\}")
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_OCTAL: Final = frozenset("01234567")
_DECIMAL: Final = re.compile(r"[1-9][0-9]*")
_ASTRAL: Final = re.compile("[\U00010000-\U0010ffff]")


class JSRegexError(ValueError):
    """A pattern JavaScript would reject (or one Python cannot run the same way)."""


def _surrogates(match: re.Match[str]) -> str:
    point = ord(match.group()) - 0x10000
    return chr(0xD800 + (point >> 10)) + chr(0xDC00 + (point & 0x3FF))


def code_units(text: str) -> str:
    """The text as JavaScript sees it: characters beyond U+FFFF become surrogate pairs."""
    return text if text.isascii() else _ASTRAL.sub(_surrogates, text)


@cache
def _upper_table() -> dict[int, str]:
    """JavaScript's case-insensitive canonical form of each code unit that has another one:
    its upper case, unless that is several characters or turns non-ASCII into ASCII."""
    table = {}
    for point in range(0x10000):
        upper = chr(point).upper()
        if len(upper) == 1 and ord(upper) != point and (point < 128 or ord(upper) >= 128):
            table[point] = upper
    return table


def _canonical(text: str) -> str:
    return text.upper() if text.isascii() else text.translate(_upper_table())


def _literal(char: str) -> str:
    return "\\" + char if char in _SPECIAL else char


def _class_literal(char: str) -> str:
    return "\\" + char if char in _CLASS_SPECIAL else char


class JSRegex:
    """A compiled pattern with JavaScript's ``test``."""

    __slots__ = ("ignore_case", "regex")

    def __init__(self, regex: re.Pattern[str], ignore_case: bool) -> None:
        self.regex = regex
        self.ignore_case = ignore_case

    def test(self, value: object) -> bool:
        """``regex.test(value)``: the value is first turned into a string, as in JavaScript."""
        text = code_units(value if isinstance(value, str) else to_string(value))
        return self.regex.search(_canonical(text) if self.ignore_case else text) is not None


class _Translator:
    def __init__(self, pattern: str, ignore_case: bool) -> None:
        self.src = code_units(pattern)
        self.ignore_case = ignore_case
        self.pos = 0
        self.out: list[str] = []
        self.opened = 0  # capturing groups opened so far
        self.open_groups: list[int] = []
        self.group_count, self.names = self._prescan()

    def _error(self, what: str) -> JSRegexError:
        return JSRegexError(f"{what} at position {self.pos}")

    def _prescan(self) -> tuple[int, dict[str, int]]:
        src, count, names, i, in_class = self.src, 0, {}, 0, False
        while i < len(src):
            char = src[i]
            if char == "\\":
                i += 1
            elif in_class:
                in_class = char != "]"
            elif char == "[":
                in_class = True
            elif char == "(" and not src.startswith("?", i + 1):
                count += 1
            elif char == "(" and src.startswith("?<", i + 1) and src[i + 3 : i + 4] not in "=!":
                count += 1
                name = src[i + 3 : src.find(">", i)] if ">" in src[i:] else ""
                if name in names:
                    raise JSRegexError(f"duplicate capture group name {name!r}")
                names[name] = count
            i += 1
        return count, names

    def translate(self) -> str:
        src, stack = self.src, []
        quantifiable = False
        while self.pos < len(src):
            char = src[self.pos]
            if char == "\\":
                quantifiable = self._escape()
            elif char == "[":
                self.out.append(self._class())
                quantifiable = True
            elif char in "*+?" or (char == "{" and _BRACES.match(src, self.pos)):
                if not quantifiable:
                    raise self._error("nothing to repeat")
                self._quantifier()
                quantifiable = False
            elif char == "(":
                self.pos += 1
                stack.append(self._group_open())
                quantifiable = False
            elif char == ")":
                if not stack:
                    raise self._error("unmatched ')'")
                kind, number = stack.pop()
                if number:
                    self.open_groups.remove(number)
                self.out.append(")")
                self.pos += 1
                quantifiable = kind != "lookbehind"  # web JavaScript may repeat a lookahead
            else:
                self.pos += 1
                quantifiable = char not in "|^$"
                if char in "|^$":
                    self.out.append("\\Z" if char == "$" else char)
                elif char == ".":
                    self.out.append(_DOT)
                else:
                    self.out.append(_literal(_canonical(char) if self.ignore_case else char))
        if stack:
            raise self._error("unterminated group")
        return "".join(self.out)

    def _quantifier(self) -> None:
        src = self.src
        braces = _BRACES.match(src, self.pos)
        if braces:
            low, comma, high = braces.groups()
            if comma and high and int(high) < int(low):
                raise self._error("numbers out of order in {} quantifier")
            self.out.append(braces.group())
            self.pos = braces.end()
        else:
            self.out.append(src[self.pos])
            self.pos += 1
        if src.startswith("?", self.pos):
            self.out.append("?")
            self.pos += 1

    def _group_open(self) -> tuple[str, int]:
        """Open a group: its kind, and its number if it captures (else 0)."""
        src, pos = self.src, self.pos
        for opener, kind in (("?:", "group"), ("?=", "lookahead"), ("?!", "lookahead")):
            if src.startswith(opener, pos):
                self.out.append("(" + opener)
                self.pos += 2
                return kind, 0
        if src.startswith("?<=", pos) or src.startswith("?<!", pos):
            self.out.append("(" + src[pos : pos + 3])
            self.pos += 3
            return "lookbehind", 0
        if src.startswith("?<", pos):
            end = src.find(">", pos)
            name = src[pos + 2 : end] if end > 0 else ""
            if not name.replace("$", "_").isidentifier():
                raise self._error("invalid capture group name")
            self.out.append(f"(?P<g{self.names[name]}>")
            self.pos = end + 1
        elif src.startswith("?", pos):
            raise self._error("invalid group")
        else:
            self.out.append("(")
        self.opened += 1
        self.open_groups.append(self.opened)
        return "group", self.opened

    def _backreference(self, number: int) -> None:
        if number > self.opened or number in self.open_groups:
            self.out.append("(?:)")  # JavaScript: a group that cannot have matched yet is empty
        else:
            self.out.append(f"(?({number})\\{number})")  # and so is one that did not match

    def _escape(self) -> bool:
        """Translate an escape outside a class; returns whether it can be quantified."""
        src, pos = self.src, self.pos
        if pos + 1 >= len(src):
            raise self._error("\\ at end of pattern")
        char = src[pos + 1]
        if char in "bB":
            self.out.append(_BOUNDARY if char == "b" else _NOT_BOUNDARY)
            self.pos += 2
            return False
        if char in "dwsDWS":
            self.out.append(f"[{'^' if char.isupper() else ''}{_SETS[char.lower()]}]")
            self.pos += 2
            return True
        digits = _DECIMAL.match(src, pos + 1)
        if digits and int(digits.group()) <= self.group_count:
            if int(digits.group()) > 99:
                raise self._error("backreference beyond group 99")
            self._backreference(int(digits.group()))
            self.pos += 1 + len(digits.group())
            return True
        if char == "k" and self.names:
            end = src.find(">", pos)
            name = src[pos + 3 : end] if src.startswith("k<", pos + 1) and end > 0 else ""
            if name not in self.names:
                raise self._error("invalid named reference")
            self._backreference(self.names[name])
            self.pos = end + 1
            return True
        char = self._character_escape(in_class=False)
        self.out.append(_literal(_canonical(char) if self.ignore_case else char))
        return True

    def _character_escape(self, *, in_class: bool) -> str:
        """Read an escape that stands for one character; ``self.pos`` is at the backslash."""
        src, pos = self.src, self.pos
        char = src[pos + 1]
        self.pos += 2
        if char in _CONTROL:
            return _CONTROL[char]
        if char == "c":
            letter = src[pos + 2 : pos + 3]
            if (
                letter
                and letter.isascii()
                and (letter.isalpha() or (in_class and letter in "0123456789_"))
            ):
                self.pos += 1
                return chr(ord(letter) % 32)
            self.pos -= 1  # "\c" without a control letter is a backslash, then a "c"
            return "\\"
        if char in _OCTAL:  # legacy octal escape, at most \377
            digits = char
            while (
                len(digits) < (3 if char <= "3" else 2) and src[self.pos : self.pos + 1] in _OCTAL
            ):
                digits += src[self.pos]
                self.pos += 1
            return chr(int(digits, 8))
        width = {"x": 2, "u": 4}.get(char, 0)
        code = src[pos + 2 : pos + 2 + width]
        if width and len(code) == width and all(c in _HEX for c in code):
            self.pos += width
            return chr(int(code, 16))
        if in_class and char == "b":
            return "\b"
        if char == "k" and self.names:
            raise self._error("invalid escape \\k")
        return char  # an identity escape: "\a" is "a", "\/" is "/"

    def _class_item(self) -> str | tuple[str, bool]:
        """One character, or (contents, negated) for the escapes \\d \\D \\w \\W \\s \\S."""
        src, pos = self.src, self.pos
        if src[pos] != "\\":
            self.pos += 1
            return src[pos]
        if pos + 1 >= len(src):
            raise self._error("\\ at end of pattern")
        char = src[pos + 1]
        if char in "dwsDWS":
            self.pos += 2
            return (_SETS[char.lower()], char.isupper())
        return self._character_escape(in_class=True)

    def _class(self) -> str:
        src = self.src
        self.pos += 1
        negated = src.startswith("^", self.pos)
        self.pos += negated
        ranges: list[tuple[str, str]] = []
        sets: list[str] = []
        excluded: list[str] = []  # contents of \D \W \S: "anything not in these"
        while True:
            if self.pos >= len(src):
                raise self._error("unterminated character class")
            if src[self.pos] == "]":
                self.pos += 1
                break
            items = [self._class_item()]
            if src.startswith("-", self.pos) and src[self.pos + 1 : self.pos + 2] not in "]":
                self.pos += 1
                items += ["-", self._class_item()]
                first, last = items[0], items[2]
                if isinstance(first, str) and isinstance(last, str):
                    if first > last:
                        raise self._error("range out of order in character class")
                    ranges.append((first, last))
                    continue  # otherwise (\d at an end) web JavaScript reads "-" literally
            for item in items:
                if isinstance(item, str):
                    ranges.append((item, item))
                else:
                    (excluded if item[1] else sets).append(item[0])
        if self.ignore_case:  # match the canonical (upper-case) form the input is turned into
            table = _upper_table()
            ranges += [
                (upper, upper)
                for point, upper in table.items()
                if any(low <= chr(point) <= high for low, high in ranges)
            ]
        content = "".join(
            _class_literal(low) if low == high else f"{_class_literal(low)}-{_class_literal(high)}"
            for low, high in ranges
        ) + "".join(sets)
        return _class_regex(content, excluded, negated)


def _class_regex(content: str, excluded: list[str], negated: bool) -> str:
    if not excluded:
        if not content:
            return "[\\s\\S]" if negated else "(?!)"
        return f"[{'^' if negated else ''}{content}]"
    if not negated:  # in content, or outside one of the excluded sets
        options = ([f"[{content}]"] if content else []) + [f"[^{e}]" for e in excluded]
        return "(?:" + "|".join(options) + ")"
    # Not in content, and inside every excluded set.
    guards = ([f"(?![{content}])"] if content else []) + [f"(?=[{e}])" for e in excluded[1:]]
    return "(?:" + "".join(guards) + f"[{excluded[0]}])"


def translate(pattern: str, ignore_case: bool = False) -> str:
    """The Python ``re`` pattern equivalent to a JavaScript pattern (raises JSRegexError).

    With ``ignore_case`` the result expects input in canonical form (see :class:`JSRegex`).
    """
    return _Translator(pattern, ignore_case).translate()


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str, ignore_case: bool) -> JSRegex:
    """Compile a JavaScript pattern once (cached); raises :class:`JSRegexError` if invalid."""
    try:
        return JSRegex(re.compile(translate(pattern, ignore_case)), ignore_case)
    except (re.error, OverflowError, RecursionError) as exc:
        raise JSRegexError(str(exc)) from None
