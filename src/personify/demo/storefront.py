"""A seeded synthetic storefront: a stream of raw Segment messages from shoppers with personas.

Each customer is given a hidden persona whose behaviour a profile or segment engine should be
able to tell apart later:

* ``browser`` - anonymous visitor who looks at pages and products and never logs in;
* ``loyal_buyer`` - logs in early and orders several items every one to three weeks;
* ``cart_abandoner`` - logs in, adds to cart and starts checkout, but never orders;
* ``lapsing_customer`` - orders several times in the first half of the period, then goes quiet;
* ``new_signup`` - first seen in the last week, when they sign up.

Known customers browse anonymously before logging in, so the ``identify`` that links their
``anonymousId`` to a ``userId`` exercises identity merging; some use a second device.

Generation is streaming: visits are planned up front (a small tuple each), then rendered in order
of their start and merged, so messages come out in timestamp order without being held.

>>> spec = StorefrontSpec(customers=20, days=30)
>>> first = next(generate(spec))
>>> first["messageId"], first["timestamp"] >= "2026-10-02"
('demo-7-0', True)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from heapq import heappop, heappush
from typing import Any, Final

from personify.demo.catalogue import Shelf, build_catalogue
from personify.demo.planner import DAY_MS, Planner
from personify.demo.shoppers import Customer, make_customers
from personify.demo.visits import Visit, VisitWriter, expected_messages

MIN_DAYS: Final = 14  # the personas need about two weeks to show their behaviour
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class StorefrontSpec:
    """How much traffic to make: how many customers, over how many days, ending when, which seed."""

    customers: int = 1000
    days: int = 90
    seed: int = 7
    end: datetime = datetime(2026, 11, 1, tzinfo=UTC)

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError(f"customers must be at least 1, got {self.customers}")
        if self.days < MIN_DAYS:
            raise ValueError(f"days must be at least {MIN_DAYS} for the personas to show")
        if self.end.utcoffset() is None:
            raise ValueError("end must be timezone-aware (UTC)")

    @property
    def start(self) -> datetime:
        """Beginning of the period; messages fall in ``[start, end)``."""
        return self.end - timedelta(days=self.days)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _plan(spec: StorefrontSpec) -> tuple[list[Customer], list[list[Visit]]]:
    rng = random.Random(spec.seed)
    customers = make_customers(spec.customers, rng)
    planner = Planner(spec.days, _epoch_ms(spec.start), rng)
    for who in customers:
        planner.plan(who)
    return customers, planner.buckets


@cache
def _clock_texts() -> tuple[tuple[str, ...], tuple[str, ...]]:
    # "THH:MM:" per minute of the day and "SS.mmmZ" per millisecond of a minute: formatting a
    # timestamp is then two lookups, which matters at a hundred thousand messages a second.
    minutes = tuple(f"T{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
    seconds = [f"{s:02d}." for s in range(60)]
    millis = [f"{ms:03d}Z" for ms in range(1000)]
    return minutes, tuple(s + ms for s in seconds for ms in millis)


class _IsoClock:
    """Formats epoch milliseconds as ISO-8601 UTC ending in ``Z``, caching each date's text."""

    def __init__(self) -> None:
        self._dates: dict[int, str] = {}
        self._minutes, self._within_minute = _clock_texts()

    def format(self, epoch_ms: int) -> str:
        day, into_day = divmod(epoch_ms, DAY_MS)
        text = self._dates.get(day)
        if text is None:
            text = self._dates[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
        minute, into_minute = divmod(into_day, 60_000)
        return text + self._minutes[minute] + self._within_minute[into_minute]


def generate(spec: StorefrontSpec) -> Iterator[dict[str, Any]]:
    """Yield the storefront's raw Segment messages in non-decreasing timestamp order.

    The same spec always yields the same messages; ``messageId`` is ``demo-{seed}-{n}``.
    Visits are rendered in order of their start and merged through a heap, so only the
    messages of visits still in progress are held at any moment.
    """
    customers, buckets = _plan(spec)
    rng = random.Random(f"render/{spec.seed}")
    writer = VisitWriter(spec.seed, Shelf(build_catalogue(spec.seed), spec.seed), customers, rng)
    clock = _IsoClock()
    start_ms = _epoch_ms(spec.start)
    prefix = f"demo-{spec.seed}-"
    number = written = 0
    pending: list[tuple[int, int, dict[str, Any]]] = []  # (ms into the day, tie-break, message)
    for day, visits in enumerate(buckets):
        buckets[day] = []  # release the plan as we go
        visits.sort()
        day_ms = start_ms + day * DAY_MS
        for visit in [*visits, None]:
            # A visit's messages all come after its start, so whatever is due by then is final.
            due = DAY_MS if visit is None else visit[0]
            while pending and pending[0][0] <= due:
                offset, _, message = heappop(pending)
                message["messageId"] = prefix + str(number)
                message["timestamp"] = clock.format(day_ms + offset)
                number += 1
                yield message
            if visit is not None:
                for offset, message in writer.write(visit):
                    heappush(pending, (offset, written, message))
                    written += 1


def estimate_events(spec: StorefrontSpec) -> int:
    """Roughly how many messages :func:`generate` yields for ``spec`` (for a progress bar).

    Plans the visits (cheap) and adds up each visit kind's average size, without rendering.
    """
    customers, buckets = _plan(spec)
    return round(
        sum(
            expected_messages(kind, customers[index].persona)
            for visits in buckets
            for _, index, kind, *_ in visits
        )
    )


def personas(spec: StorefrontSpec) -> dict[str, str]:
    """The hidden persona of every customer, keyed by userId (anonymousId for browsers).

    Personas never appear in the messages; this is the answer key for tests and demos.
    """
    customers = make_customers(spec.customers, random.Random(spec.seed))
    return {who.user_id or who.anonymous_ids[0]: who.persona for who in customers}
