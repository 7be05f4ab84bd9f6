"""Inputs that used to change or lose a message silently, or to crash a batch.

Each is refused (a single call) or quarantined (in a batch) with a problem that names the
field as it was sent and says what to send instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.helpers import T0, memory_engine

from personify.clock import FixedClock
from personify.config import Settings
from personify.errors import InvalidInput
from personify.events.schema import validate_message
from personify.platform import build


def _problems(exc: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in exc.value.problems]


@pytest.mark.parametrize("message_id", ["", "   ", "\t"])
def test_an_empty_message_id_is_refused_not_taken_as_a_duplicate(message_id: str) -> None:
    p = memory_engine()[0]
    first = {"type": "track", "event": "A", "userId": "u1", "messageId": message_id}
    second = {"type": "track", "event": "B", "userId": "u2", "messageId": message_id}
    result = p.collector.accept_batch([first, second], "web")
    assert (result.accepted, result.duplicates) == (0, 0)
    assert [q["problems"] for q in result.quarantined] == [
        [
            {
                "field": f"batch[{i}].messageId",
                "message": "must not be empty; omit it to let the server derive one",
            }
        ]
        for i in (0, 1)
    ]
    with pytest.raises(InvalidInput) as info:
        p.send("track", {"event": "A", "userId": "u1", "messageId": message_id})
    assert info.value.status == 400
    assert _problems(info)[0][0] == "messageId"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (42, "42"),
        (4.2e1, "42"),
        (-7.0, "-7"),
        (2.0**53 - 1, "9007199254740991"),
        (10**30, str(10**30)),
    ],
)
def test_numeric_ids_become_the_integer_text(sent: Any, stored: str) -> None:
    for name in ("userId", "anonymousId"):
        assert validate_message({"type": "page", name: sent})[name] == stored


@pytest.mark.parametrize(
    ("sent", "why"),
    [
        (4.5, "is not a whole number"),
        (1.2345678901234568e29, "is too large to be exact"),  # what JSON makes of 10**29 + ...
        (2.0**53, "is too large to be exact"),
        (float("nan"), "is not a whole number"),
    ],
)
def test_other_numeric_ids_are_refused_on_the_field_sent(sent: float, why: str) -> None:
    for name in ("userId", "anonymousId"):
        with pytest.raises(InvalidInput) as info:
            validate_message({"type": "page", name: sent}, prefix="batch[2].")
        [(field, message)] = _problems(info)
        assert field == f"batch[2].{name}"
        assert why in message and message.endswith("send identifiers as strings")


def test_a_float_id_and_the_integer_id_name_the_same_profile() -> None:
    p = memory_engine()[0]
    p.send("identify", {"userId": 42, "traits": {"a": 1}})
    p.send("identify", {"userId": 4.2e1, "traits": {"b": 2}})
    p.drain()
    assert p.stores.profiles.count() == 1


@pytest.mark.parametrize(
    ("ids", "fields"),
    [
        ({"anonymousId": "null"}, ["anonymousId"]),
        ({"userId": "undefined"}, ["userId"]),
        ({"userId": "null", "anonymousId": "none"}, ["userId", "anonymousId"]),
    ],
)
def test_a_junk_identifier_is_reported_on_the_field_that_was_sent(
    ids: dict[str, str], fields: list[str]
) -> None:
    p = memory_engine()[0]
    result = p.collector.accept_batch([{"event": "A", "type": "track", **ids}], "web")
    assert [q["field"] for q in result.quarantined[0]["problems"]] == [
        f"batch[0].{f}" for f in fields
    ]


def test_an_integer_beyond_64_bits_is_quarantined_without_losing_the_batch(
    tmp_path: Path,
) -> None:
    # SQLite quarantine: it stores payloads as JSON, so the payload must be storable too.
    settings = Settings(data_dir=tmp_path, write_keys="wk=web", event_store_backend="memory")
    p = build(settings, FixedClock(T0))
    try:
        good = {"type": "identify", "userId": "u1", "messageId": "m1", "traits": {"n": 1}}
        huge = {"type": "identify", "userId": "u2", "messageId": "m2", "traits": {"n": 10**30}}
        unnamed = {"type": "identify", "userId": "u3", "traits": {"n": 10**30}}
        for check_size in (False, True):  # (importers skip the size check, the API does not)
            result = p.collector.accept_batch(
                [good, huge, unnamed], "import", check_size=check_size
            )
            assert [q["index"] for q in result.quarantined] == [1, 2]
            problem = result.quarantined[0]["problems"][0]
            assert problem["field"] == "batch[1]"
            assert "not storable as JSON" in problem["message"]
            assert "64" in result.quarantined[0]["reason"]
        stored = p.quarantined(limit=10)
        assert {q["payload"]["traits"]["n"] for q in stored} == {str(10**30)}
        assert p.stores.log.count() == 1
    finally:
        p.close()


def test_the_python_api_refuses_an_integer_beyond_64_bits_clearly() -> None:
    p = memory_engine()[0]
    with pytest.raises(InvalidInput) as info:
        p.identify(user_id="u1", traits={"big": 10**30})
    assert "cannot be stored as JSON" in info.value.message
    assert info.value.hint is not None and "64 bits" in info.value.hint
    assert p.stores.log.count() == 0


@pytest.mark.parametrize(
    "stamp", ["yesterday", "2026-11-24T10:00:00+25:00", "2026-02-30T10:00:00Z", []]
)
def test_a_bad_timestamp_says_what_is_expected_with_an_example(stamp: Any) -> None:
    for name in ("timestamp", "originalTimestamp", "sentAt"):
        with pytest.raises(InvalidInput) as info:
            validate_message({"type": "page", "userId": "u", name: stamp})
        [(field, message)] = _problems(info)
        assert field == name
        assert message.startswith("must be an ISO-8601 datetime such as 2026-11-24T10:00:00Z")
        assert "+01:00" in message and repr(stamp) in message
        assert "Input should be" not in message


@pytest.mark.parametrize(
    ("fields", "named", "placed"),
    [
        ({"timestamp": "0001-01-01T00:00:00Z"}, ["timestamp"], "at 0001-01-01"),
        ({"timestamp": "1969-12-31T23:59:59Z"}, ["timestamp"], "at 1969-12-31"),
        ({"timestamp": "9999-12-31T23:59:59Z"}, ["timestamp"], "at 9999-12-31"),
        ({"timestamp": "2024-05-02T12:00:01Z"}, ["timestamp"], "at 2024-05-02"),  # > 1 day ahead
        # offsets that push the instant past what a UTC datetime holds
        ({"timestamp": "0001-01-01T00:00:00+14:00"}, ["timestamp"], "outside the representable"),
        ({"timestamp": "9999-12-31T23:59:59-12:00"}, ["timestamp"], "outside the representable"),
        # the time comes from originalTimestamp when both are sent
        (
            {"timestamp": "2024-05-01T12:00:00Z", "originalTimestamp": "1900-01-01T00:00:00Z"},
            ["originalTimestamp"],
            "at 1900-01-01",
        ),
        # sentAt and timestamp centuries apart: the correction moves the time out of range
        (
            {"timestamp": "2024-05-01T12:00:00Z", "sentAt": "2999-01-01T00:00:00Z"},
            ["timestamp", "sentAt"],
            "with the sentAt correction places the event at 1049-",
        ),
        (
            {"timestamp": "9999-12-31T23:59:59Z", "sentAt": "0001-01-01T00:00:00Z"},
            ["timestamp", "sentAt"],
            "outside the representable dates",
        ),
        (
            {"originalTimestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59:59Z"},
            ["originalTimestamp", "sentAt"],
            "outside the representable dates",
        ),
    ],
)
def test_an_event_time_out_of_range_is_set_aside_and_the_rest_of_the_batch_kept(
    fields: dict[str, str], named: list[str], placed: str
) -> None:
    p = memory_engine()[0]  # received at T0 = 2024-05-01T12:00:00Z
    bad = {"type": "track", "event": "A", "userId": "u1", **fields}
    good = {"type": "track", "event": "B", "userId": "u2"}
    result = p.collector.accept_batch([good, bad, good | {"event": "C"}], "web")
    assert result.accepted == 2
    [item] = result.quarantined
    problems = item["problems"]
    assert [q["field"] for q in problems] == [f"batch[1].{name}" for name in named]
    assert placed in problems[0]["message"]
    assert "accepted times run from 1970-01-01 to one day after receipt" in problems[0]["message"]
    assert "e.g. 2024-05-01T12:00:00Z" in problems[0]["message"]  # an example in range
    assert p.stores.quarantine.get(item["id"]) is not None  # kept, replayable once fixed
    with pytest.raises(InvalidInput) as info:
        p.send("track", {k: v for k, v in bad.items() if k != "type"})
    assert info.value.status == 400 and [f for f, _ in _problems(info)] == named


def test_an_out_of_range_time_can_be_replayed_once_corrected() -> None:
    p = memory_engine()[0]
    bad = {"type": "track", "event": "A", "userId": "u1", "timestamp": "1900-01-01T00:00:00Z"}
    [item] = p.collector.accept_batch([bad], "web").quarantined
    fixed = bad | {"timestamp": "2024-04-30T09:00:00Z"}
    assert p.replay(item["id"], fixed)["status"] == "replayed"
    p.drain()
    assert p.lookup("user_id", "u1") is not None


@pytest.mark.parametrize(
    "fields",
    [
        {"timestamp": "1970-01-01T00:00:00Z"},  # the first accepted instant
        {"timestamp": "1997-01-01T00:00:00Z"},  # CDNOW-era history imports
        {"timestamp": "2024-05-02T12:00:00Z"},  # exactly one day after receipt
        # a client clock three years ahead, corrected by its sentAt
        {"timestamp": "2027-05-01T11:59:00Z", "sentAt": "2027-05-01T12:00:00Z"},
    ],
)
def test_event_times_inside_the_range_are_accepted(fields: dict[str, str]) -> None:
    p = memory_engine()[0]  # received at T0 = 2024-05-01T12:00:00Z
    result = p.collector.accept_batch(
        [{"type": "track", "event": "A", "userId": "u", **fields}], "web"
    )
    assert (result.accepted, result.quarantined) == (1, [])
