"""``iso``: every stored time has one text form (UTC, microseconds, ``Z``) that sorts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from personify.profiles.records import iso


def _reference(ts: datetime) -> str:
    # The plain formulation the faster implementation must match.
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def test_iso_matches_the_plain_formulation_for_any_zone_and_fraction() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        moment = datetime(1970, 1, 1) + timedelta(
            seconds=rng.randrange(0, 4_000_000_000),
            microseconds=rng.choice([0, rng.randrange(1_000_000)]),
        )
        offset = timedelta(hours=rng.randrange(-12, 15), minutes=rng.choice([0, 30, 45]))
        ts = moment.replace(tzinfo=rng.choice([UTC, timezone(offset)]))
        assert iso(ts) == _reference(ts)


def test_iso_keeps_zero_microseconds_and_converts_to_utc() -> None:
    paris_summer = timezone(timedelta(hours=2))
    assert iso(datetime(2026, 7, 1, 12, 0, tzinfo=paris_summer)) == "2026-07-01T10:00:00.000000Z"
