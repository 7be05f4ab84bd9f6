"""Normalize identifiers before they are used as identity keys.

Two events name the same person only if their keys compare equal, so e-mails are trimmed and
lower-cased, phone numbers are rewritten in E.164, and placeholder ids that clients send when
they know nobody (``"null"``, ``"undefined"``, ``0``...) are filtered out rather than merging
every anonymous visitor into one profile.

>>> normalize_email("  Ana@Example.COM "), normalize_phone("(415) 555-2671")
('ana@example.com', '+14155552671')
>>> JunkFilter(["null", "undefined"]).clean(" undefined ") is None
True
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Final

import phonenumbers

PHONE_CACHE_SIZE: Final = 10_000
# Longer than any formatted number with an extension: not worth parsing or caching.
MAX_PHONE_LENGTH: Final = 100


def normalize_email(value: object) -> str | None:
    """Return the trimmed, lower-cased e-mail, or None if ``value`` does not look like one.

    The check is deliberately shallow (one ``@``, a local part, a dotted domain, no spaces):
    it rejects placeholders and typos in the wrong field without refusing unusual but real
    addresses, including non-ASCII ones.

    >>> normalize_email(" Bob@Mail.Example.org "), normalize_email("bob@localhost")
    ('bob@mail.example.org', None)
    """
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "@" in domain or any(ch.isspace() for ch in email):
        return None
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        return None
    return email


def normalize_phone(value: object, default_region: str = "US") -> str | None:
    """Return the number in E.164 (``"+14155552671"``), or None if it is not a valid number.

    Strings and ints are accepted (clients often send numbers as numbers); ``default_region``
    is the ISO country used for numbers written without a ``+`` country code.

    >>> normalize_phone("020 7946 0958", "GB"), normalize_phone(4155552671)
    ('+442079460958', '+14155552671')
    >>> normalize_phone("12345") is None
    True
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, int) and value < 0:  # the parser would silently drop the sign
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_PHONE_LENGTH:
        return None
    return _phone(text, default_region.strip().upper())


@lru_cache(maxsize=PHONE_CACHE_SIZE)
def _phone(text: str, region: str) -> str | None:
    """Parse once per (text, region); phone parsing is slow and the same numbers recur."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


class JunkFilter:
    """Recognizes placeholder identifiers that must never link or merge profiles.

    Values are compared after stripping and lower-casing. ``None``, empty or blank strings and
    anything that is neither a string nor an int (bools included) are always junk.

    >>> junk = JunkFilter(["null", "anonymous", "0"])
    >>> junk.is_junk(" NULL "), junk.is_junk(0), junk.clean(" user-42 "), junk.clean(42)
    (True, True, 'user-42', '42')
    """

    def __init__(self, values: Iterable[str]) -> None:
        self._values = frozenset(v.strip().lower() for v in values)

    def clean(self, value: object) -> str | None:
        """Return the stripped string form of ``value`` (ints as digits), or None if junk.

        >>> JunkFilter(["none"]).clean("  abc "), JunkFilter(["none"]).clean("None")
        ('abc', None)
        """
        if isinstance(value, str):
            text = value.strip()
        elif isinstance(value, int) and not isinstance(value, bool):
            text = str(value).strip()
        else:
            return None
        if not text or text.lower() in self._values:
            return None
        return text

    def is_junk(self, value: object) -> bool:
        """True when ``value`` is not usable as an identifier.

        >>> JunkFilter(["undefined"]).is_junk("Undefined"), JunkFilter([]).is_junk("u1")
        (True, False)
        """
        return self.clean(value) is None
