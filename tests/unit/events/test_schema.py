"""The fast validation path must agree with the pydantic models on every input.

``validate_message`` checks common, well-formed messages directly and sends everything else
through the pydantic models (which alone word the errors). These tests feed both paths the
same messages: whatever the fast path accepts, the models accept with the same result (same
keys in the same order, same values, same instants), and whatever the models refuse, the
fast path leaves to them.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from personify.errors import InvalidInput
from personify.events.schema import _fast, _validate_slowly, validate_message

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"

# Values a field may take in the random messages: well-formed ones and every kind of wrong.
_IDS: list[Any] = ["u-1", " spaced ", "x" * 1024, "x" * 1025, "", 42, 4.5, True, None, [], {}]
_TIMES: list[Any] = [
    "2026-11-01T10:00:00.000Z",
    "2026-11-01T10:00:00Z",
    "2026-11-01T10:00:00.123456+05:30",
    "2026-11-01T10:00:00.1-00:00",
    "2026-11-01T10:00:00.1234567Z",
    "2026-11-01 10:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-11-01T10:00:00+25:00",
    "2026-11-01",
    "yesterday",
    1_700_000_000,
    None,
    {},
]
_OBJECTS: list[Any] = [{}, {"a": 1, "b": {"c": [1, 2]}}, {"userAgent": UA}, [], "x", 3, None]
_TEXTS: list[Any] = ["Home", "", "x" * 512, "x" * 513, None, 7, ["a"]]
_FIELDS: dict[str, list[Any]] = {
    "messageId": _IDS,
    "userId": _IDS,
    "anonymousId": _IDS,
    "previousId": _IDS,
    "groupId": _IDS,
    "timestamp": _TIMES,
    "originalTimestamp": _TIMES,
    "sentAt": _TIMES,
    "context": _OBJECTS,
    "integrations": _OBJECTS,
    "properties": _OBJECTS,
    "traits": _OBJECTS,
    "event": _TEXTS,
    "name": _TEXTS,
    "category": _TEXTS,
    "extra": ["kept", None, 1, {"nested": True}],
}
_TYPES = ["track", "identify", "page", "screen", "group", "alias", "Track", "other", None, 1]


def _random_message(rng: random.Random) -> dict[str, Any]:
    message: dict[str, Any] = {}
    if rng.random() < 0.97:
        message["type"] = rng.choice(_TYPES) if rng.random() < 0.3 else rng.choice(_TYPES[:6])
    for name, values in _FIELDS.items():
        if rng.random() < 0.5:
            # Mostly well-formed values (the first ones), so that many messages are valid.
            message[name] = values[0] if rng.random() < 0.6 else rng.choice(values)
    keys = list(message)
    rng.shuffle(keys)
    return {k: message[k] for k in keys}


def _slow(raw: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return _validate_slowly(raw, "")
    except InvalidInput:
        return None


def test_fast_and_pydantic_paths_agree_on_random_messages() -> None:
    rng = random.Random(20261124)
    fast_hits = 0
    for _ in range(4000):
        raw = _random_message(rng)
        fast, slow = _fast(raw), _slow(raw)
        if fast is None:
            continue  # the models decide (and word any error)
        fast_hits += 1
        assert slow is not None, f"fast path accepted what the models refuse: {raw}"
        assert list(fast) == list(slow), raw
        assert fast == slow, raw
    assert fast_hits > 300  # the generator does exercise the fast path


@pytest.mark.parametrize(
    "raw",
    [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": "a-1",
            "messageId": "m-1",
            "timestamp": "2026-11-01T10:00:00.000Z",
            "sentAt": "2026-11-01T10:00:01.000Z",
            "context": {"userAgent": UA, "timezone": "Europe/Paris"},
            "properties": {"price": 19.99},
        },
        {"type": "identify", "userId": "u-1", "traits": {"email": "a@b.co"}, "version": 2},
        {"type": "page", "anonymousId": "a-1", "name": None, "category": "Docs"},
        {"type": "screen", "userId": "u-1", "name": "Home"},
        {"type": "group", "userId": "u-1", "groupId": "g-1", "traits": {}},
        {"type": "alias", "userId": "u-2", "previousId": "u-1"},
    ],
)
def test_common_messages_take_the_fast_path_with_the_models_result(raw: dict[str, Any]) -> None:
    fast = _fast(raw)
    assert fast is not None
    assert fast == _validate_slowly(raw, "")
    assert list(fast) == list(_validate_slowly(raw, ""))


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ({"type": "track", "event": "E", "userId": 42}, "numeric ids are coerced by the models"),
        ({"type": "page", "userId": "u", "timestamp": 1_700_000_000}, "epoch timestamps"),
        ({"type": "page", "userId": "u", "timestamp": "2026-11-01 10:00:00Z"}, "space form"),
        ({"type": "track", "userId": "u"}, "missing event: an error the models word"),
        ({"type": "track", "event": "", "userId": "u"}, "empty event"),
        ({"type": "nope", "userId": "u"}, "unknown type"),
        ({"type": "page", "userId": "u", "context": "x"}, "context not an object"),
        ({"type": "page", "messageId": None, "userId": "u"}, "null messageId"),
    ],
)
def test_unusual_or_invalid_messages_are_left_to_the_models(raw: dict[str, Any], why: str) -> None:
    assert _fast(raw) is None, why


def test_errors_still_name_the_field_after_the_fast_path_declines() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_message({"type": "track", "userId": "u"}, prefix="batch[3].")
    assert [(p.field, p.message) for p in info.value.problems] == [
        ("batch[3].event", "is required for this message type")
    ]


def test_a_message_without_any_identity_is_refused_on_the_fast_path_too() -> None:
    raw = {"type": "page", "name": "Home", "userId": None}
    assert _fast(raw) is not None
    with pytest.raises(InvalidInput) as info:
        validate_message(raw)
    assert info.value.problems[0].field == "userId"
