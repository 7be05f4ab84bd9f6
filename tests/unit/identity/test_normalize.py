"""Identifier normalization: e-mails, phone numbers and junk placeholder ids."""

from __future__ import annotations

import pytest

from personify.identity.normalize import JunkFilter, normalize_email, normalize_phone

JUNK = ["", "null", "none", "undefined", "anonymous", "0", "-1", "nan"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ana@example.com", "ana@example.com"),
        ("  Ana@Example.COM \n", "ana@example.com"),
        ("First.Last+promo@mail.example.co.uk", "first.last+promo@mail.example.co.uk"),
        ("ÜSER@Beispiel.de", "üser@beispiel.de"),
        ("josé@exämple.com", "josé@exämple.com"),
    ],
)
def test_email_is_trimmed_and_lower_cased(value: str, expected: str) -> None:
    assert normalize_email(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        b"ana@example.com",
        "",
        "   ",
        "null",
        "ana",
        "ana@",
        "@example.com",
        "ana@example",
        "ana@@example.com",
        "ana@b@example.com",
        "ana smith@example.com",
        "ana@exa\u00a0mple.com",
        "ana@.example.com",
        "ana@example.com.",
        "ana@example..com",
    ],
)
def test_value_that_is_not_an_email_is_rejected(value: object) -> None:
    assert normalize_email(value) is None


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("+14155552671", "US", "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        (" 415.555.2671 ", "US", "+14155552671"),
        ("1-800-FLOWERS", "US", "+18003569377"),
        (4155552671, "US", "+14155552671"),
        (14155552671, "US", "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("07911 123456", "gb", "+447911123456"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("+1 415 555 2671", "GB", "+14155552671"),
        ("٤١٥٥٥٥٢٦٧١", "US", "+14155552671"),
    ],
)
def test_valid_phone_number_becomes_e164(value: object, region: str, expected: str) -> None:
    assert normalize_phone(value, region) == expected


def test_phone_region_defaults_to_us() -> None:
    assert normalize_phone("415 555 2671") == "+14155552671"


@pytest.mark.parametrize(
    ("value", "region"),
    [
        (None, "US"),
        (True, "US"),
        (4155552671.0, "US"),
        (["4155552671"], "US"),
        ("", "US"),
        ("   ", "US"),
        ("12345", "US"),
        ("not a phone", "US"),
        ("☎☎☎", "US"),
        ("+999 123 456", "US"),
        ("020 7946 0958", "US"),
        ("(415) 555-2671", "XX"),
        ("4" * 500, "US"),
        (-4155552671, "US"),
    ],
)
def test_invalid_phone_number_is_rejected(value: object, region: str) -> None:
    assert normalize_phone(value, region) is None


@pytest.mark.parametrize(
    "value",
    ["null", " NULL ", "Undefined", "anonymous", "0", 0, -1, "NaN", "", " \t\n", None],
)
def test_listed_and_empty_values_are_junk(value: object) -> None:
    junk = JunkFilter(JUNK)

    assert junk.is_junk(value)
    assert junk.clean(value) is None


@pytest.mark.parametrize("value", [True, False, 1.5, b"user-1", ["user-1"], {"id": 1}])
def test_values_that_are_neither_str_nor_int_are_junk(value: object) -> None:
    assert JunkFilter([]).is_junk(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("user-42", "user-42"),
        ("  user-42\n", "user-42"),
        ("User-42", "User-42"),
        (42, "42"),
        ("José", "José"),
        ("null-user", "null-user"),
    ],
)
def test_real_identifier_is_cleaned_to_its_stripped_string(value: object, expected: str) -> None:
    junk = JunkFilter(JUNK)

    assert junk.clean(value) == expected
    assert not junk.is_junk(value)


def test_junk_list_entries_are_compared_stripped_and_lower_cased() -> None:
    junk = JunkFilter([" N/A ", "GUEST"])

    assert (junk.is_junk("n/a"), junk.is_junk("Guest"), junk.is_junk("guest-1")) == (
        True,
        True,
        False,
    )
