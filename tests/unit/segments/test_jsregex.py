"""JavaScript patterns run on Python's re with JavaScript's meaning (answers checked in Node)."""

from __future__ import annotations

import pytest

from personify.segments.jsregex import JSRegexError, compile_pattern, translate


@pytest.mark.parametrize(
    ("pattern", "ignore_case", "text", "expected"),
    [
        ("end$", False, "the end\n", False),  # $ is the end of the input only
        ("^a.c$", False, "a\nc", False),
        ("^a.c$", False, "a\u2028c", False),  # . excludes every JS line terminator
        ("^a.c$", False, "abc", True),
        ("^\\d+$", False, "١٢", False),  # \d, \w and \b are ASCII
        ("^\\w+$", False, "café", False),
        ("\\bcafé\\b", False, "café!", False),
        ("^\\s$", False, "\ufeff", True),  # \s is JavaScript's whitespace
        ("^[^]$", False, "\n", True),  # [^] is any character, [] none
        ("[]", False, "anything", False),
        ("^\\a\\z$", False, "az", True),  # identity escapes are the letter itself
        ("^\\/$", False, "/", True),
        ("^\\cJ$", False, "\n", True),
        ("^\\101$", False, "A", True),  # legacy octal escape
        ("^\\8$", False, "8", True),
        ("^a{$", False, "a{", True),  # a brace that is not a quantifier is literal
        ("^x{2}$", False, "xx", True),
        ("^\\u{2}$", False, "uu", True),  # no unicode flag: "u" twice
        ("^(?<w>a)\\k<w>$", False, "aa", True),
        ("^\\1(a)$", False, "a", True),  # a group that has not matched matches empty
        ("^(a)?b\\1$", False, "b", True),
        ("^.$", False, "\U0001f600", False),  # UTF-16: an emoji is two code units
        ("^..$", False, "\U0001f600", True),
        ("^[\\W_]+$", False, "_-", True),  # negated escapes inside classes
        ("^[^\\D]$", False, "7", True),
        ("^s$", True, "\u017f", False),  # JS case folding, not Python's
        ("^k$", True, "\u212a", False),
        ("^STRASSE$", True, "straße", False),
        ("^é$", True, "É", True),
        ("^[a-z]+$", True, "ABC", True),
        ("^\\u03c3$", True, "\u03c2", True),  # sigma matches final sigma
        ("^\\w$", True, "\u017f", False),
        ("^[^a]$", True, "A", False),
    ],
)
def test_patterns_mean_what_they_mean_in_javascript(
    pattern: str, ignore_case: bool, text: str, expected: bool
) -> None:
    assert compile_pattern(pattern, ignore_case).test(text) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "(",
        ")",
        "[a",
        "a**",
        "a*+",  # Python reads a possessive quantifier; JavaScript has none
        "*a",
        "x{2,1}",
        "(?P<n>a)",
        "(?i)a",
        "(?>a)",
        "\\",
        "[z-a]",
        "(?<n>a)(?<n>b)",
        "(?<n>a)\\k<m>",
        "a{2}{3}",
        "^*",
        "(?<=a)*",
        "\\b+",
    ],
)
def test_patterns_javascript_rejects_are_rejected(pattern: str) -> None:
    with pytest.raises(JSRegexError):
        compile_pattern(pattern, False)


def test_a_variable_width_lookbehind_is_a_known_limit() -> None:
    with pytest.raises(JSRegexError, match="fixed-width"):
        compile_pattern("(?<=a+)b", False)


def test_values_are_tested_as_text() -> None:
    assert compile_pattern("^12$", False).test(12)
    assert compile_pattern("^null$", False).test(None)
    assert compile_pattern("^a,b$", False).test(["a", "b"])
    assert compile_pattern("^true$", True).test(True)


def test_compiled_patterns_are_cached() -> None:
    assert compile_pattern("^cached$", False) is compile_pattern("^cached$", False)


def test_translation_is_plain_python_syntax() -> None:
    assert translate("a$") == "a\\Z"
    assert translate("(?<year>\\d{4})") == "(?P<g1>[0-9]{4})"
