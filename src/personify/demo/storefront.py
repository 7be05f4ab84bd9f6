"""A seeded synthetic storefront: a stream of raw Segment messages from shoppers with personas.

Each customer is given a hidden persona whose behaviour a profile or segment engine should be
able to tell apart later:

* ``browser`` – anonymous visitor who looks at pages and products and never logs in;
* ``loyal_buyer`` – logs in early and orders several items every one to three weeks;
* ``cart_abandoner`` – logs in, adds to cart and starts checkout, but never orders;
* ``lapsing_customer`` – orders several times in the first half of the period, then goes quiet;
* ``new_signup`` – first seen in the last week, when they sign up.

Known customers browse anonymously before logging in, so the ``identify`` that links their
``anonymousId`` to a ``userId`` exercises identity merging; some use a second device.

Generation is streaming: visits are planned up front (a small tuple each), then rendered one day
at a time, sorted, and yielded, so messages come out in timestamp order without being held.

>>> spec = StorefrontSpec(customers=20, days=30)
>>> first = next(generate(spec))
>>> first["messageId"], first["timestamp"] >= "2026-10-02"
('demo-7-0', True)
"""

from __future__ import annotations

import random
import uuid
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any, Final

from personify.demo.catalogue import CATEGORIES, Shelf, build_catalogue
from personify.demo.visits import (
    ABANDON,
    BROWSE,
    BROWSER,
    BUY,
    CART_ABANDONER,
    LAPSING_CUSTOMER,
    LOGIN_ABANDON,
    LOGIN_BROWSE,
    LOYAL_BUYER,
    NEW_SIGNUP,
    REFUND,
    SIGNUP,
    TIMEZONES,
    USER_AGENTS,
    Customer,
    DayWriter,
    Visit,
    expected_messages,
)

PERSONA_SHARES: Final = {
    BROWSER: 0.35,
    LOYAL_BUYER: 0.15,
    CART_ABANDONER: 0.15,
    LAPSING_CUSTOMER: 0.15,
    NEW_SIGNUP: 0.20,
}
MIN_DAYS: Final = 14  # the personas need about two weeks to show their behaviour
_TWO_DEVICE_SHARE = 0.3
_REFUND_SHARE = 0.08
_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
# Visits last well under an hour, so starting by 23:00 keeps each visit inside its day.
_LATEST_START_MS = _DAY_MS - _HOUR_MS
_LOCAL_HOURS = tuple(range(7, 24))  # shoppers' local hours, evening-heavy
_HOUR_CUMULATIVE = tuple(accumulate((2, 3, 3, 3, 4, 5, 4, 3, 3, 3, 4, 5, 7, 8, 7, 4, 2)))
_ZONE_WEIGHTS = tuple(share for _, _, share in TIMEZONES)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class StorefrontSpec:
    """How much storefront traffic to make: who, over how many days, ending when, from which seed."""

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


def _persona_labels(count: int, rng: random.Random) -> list[str]:
    # Largest-remainder rounding so the shares add up to exactly ``count`` customers.
    exact = {name: share * count for name, share in PERSONA_SHARES.items()}
    sizes = {name: int(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: sizes[name] - exact[name])
    for name in by_remainder[: count - sum(sizes.values())]:
        sizes[name] += 1
    labels = [name for name, size in sizes.items() for _ in range(size)]
    rng.shuffle(labels)
    return labels


def _customers(spec: StorefrontSpec, rng: random.Random) -> list[Customer]:
    out: list[Customer] = []
    for index, persona in enumerate(_persona_labels(spec.customers, rng)):
        devices = 1
        if persona in (LOYAL_BUYER, CART_ABANDONER, LAPSING_CUSTOMER):
            devices = 2 if rng.random() < _TWO_DEVICE_SHARE else 1
        zone, offset, _ = rng.choices(TIMEZONES, weights=_ZONE_WEIGHTS)[0]
        out.append(
            Customer(
                index=index,
                persona=persona,
                user_id=None if persona == BROWSER else f"user_{index + 1:07d}",
                anonymous_ids=tuple(
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(devices)
                ),
                agents=tuple(rng.sample(USER_AGENTS, devices)),
                ips=tuple(f"203.0.113.{rng.randint(1, 254)}" for _ in range(devices)),
                timezone=zone,
                utc_offset=offset,
                favourites=tuple(rng.sample(CATEGORIES, rng.randint(1, 2))),
            )
        )
    return out


class _Planner:
    """Schedules every customer's visits into per-day buckets, drawing from one seeded RNG.

    A customer has at most one browser visit per day, so the visit that identifies a device
    always precedes the visits that device makes as a known customer.
    """

    def __init__(self, spec: StorefrontSpec, rng: random.Random) -> None:
        self.buckets: list[list[Visit]] = [[] for _ in range(spec.days)]
        self._days, self._rng = spec.days, rng
        self._scale = spec.days / 90
        self._start_of_day_ms = int(spec.start.timestamp() * 1000) % _DAY_MS
        self._who: Customer | None = None
        self._used: set[int] = set()

    def plan(self, who: Customer) -> None:
        self._who, self._used = who, set()
        {
            BROWSER: self._browser,
            LOYAL_BUYER: self._loyal_buyer,
            CART_ABANDONER: self._cart_abandoner,
            LAPSING_CUSTOMER: self._lapsing_customer,
            NEW_SIGNUP: self._new_signup,
        }[who.persona]()

    def _start_ms(self) -> int:
        assert self._who is not None
        rng = self._rng
        local = _LOCAL_HOURS[bisect_right(_HOUR_CUMULATIVE, rng.random() * _HOUR_CUMULATIVE[-1])]
        utc_ms = ((local - self._who.utc_offset) % 24) * _HOUR_MS + int(rng.random() * _HOUR_MS)
        into_day = (utc_ms - self._start_of_day_ms) % _DAY_MS
        return into_day if into_day <= _LATEST_START_MS else into_day - _HOUR_MS

    def _add(self, day: int, kind: int, device: int, known: bool, order: int = 0) -> None:
        assert self._who is not None
        if kind != REFUND:
            self._used.add(day)
        self.buckets[day].append((self._start_ms(), self._who.index, kind, device, known, order))

    def _free_day(self, low: int, high: int) -> int | None:
        """A day in ``[low, high)`` without a visit yet, or None after a few tries."""
        for _ in range(8 if low < high else 0):
            day = self._rng.randrange(low, high)
            if day not in self._used:
                return day
        return None

    def _second_device(self, low: int, high: int) -> int:
        """Log in on the customer's second device, if any; returns that day (``high`` if none)."""
        assert self._who is not None
        day = self._free_day(low, high) if len(self._who.anonymous_ids) > 1 else None
        if day is None:
            return high
        self._add(day, LOGIN_BROWSE, 1, False)
        return day

    def _device(self, day: int, second_login: int) -> int:
        return 1 if day > second_login and self._rng.random() < 0.5 else 0

    def _browse_known(self, low: int, high: int, visits: int, second_login: int) -> None:
        for _ in range(visits):
            day = self._free_day(low, high)
            if day is not None:
                self._add(day, BROWSE, self._device(day, second_login), True)

    def _order(self, day: int, order: int, second_login: int, refund_by: int) -> None:
        self._add(day, BUY, self._device(day, second_login), True, order)
        if self._rng.random() < _REFUND_SHARE:
            refund_day = day + self._rng.randint(2, 10)
            if refund_day < refund_by:
                self._add(refund_day, REFUND, 0, True, order)

    def _browser(self) -> None:
        count = min(self._days, self._rng.randint(1, 5))
        for day in self._rng.sample(range(self._days), count):
            self._add(day, BROWSE, 0, False)

    def _loyal_buyer(self) -> None:
        days, rng = self._days, self._rng
        first = rng.randint(0, days // 10)
        self._add(first, LOGIN_BROWSE, 0, False)
        second = self._second_device(first + 1, days)
        day, order = first + rng.randint(1, 4), 0
        while day < days:
            if day in self._used:
                day += 1
                continue
            self._order(day, order, second, days)
            order += 1
            day += max(1, round(rng.randint(7, 21) * self._scale))
        self._browse_known(first + 1, days, rng.randint(1, 4), second)

    def _cart_abandoner(self) -> None:
        days, rng = self._days, self._rng
        first = rng.randint(0, 2 * days // 3)
        if first > 0 and rng.random() < 0.5:
            before = self._free_day(max(0, first - 7), first)
            if before is not None:
                self._add(before, BROWSE, 0, False)
        self._add(first, LOGIN_ABANDON, 0, False)
        second = self._second_device(first + 1, days)
        for _ in range(rng.randint(1, 3)):
            day = self._free_day(first + 1, days)
            if day is not None:
                self._add(day, ABANDON, self._device(day, second), True)
        self._browse_known(first + 1, days, rng.randint(0, 2), second)

    def _lapsing_customer(self) -> None:
        half, rng = self._days // 2, self._rng
        first = rng.randint(0, self._days // 10)
        self._add(first, LOGIN_BROWSE, 0, False)
        second = self._second_device(first + 1, half)
        free = [day for day in range(first + 1, half) if day not in self._used]
        for order, day in enumerate(sorted(rng.sample(free, min(len(free), rng.randint(3, 5))))):
            self._order(day, order, second, half)
        self._browse_known(first + 1, half, rng.randint(1, 3), second)

    def _new_signup(self) -> None:
        first = self._rng.randint(self._days - 7, self._days - 1)
        self._add(first, SIGNUP, 0, False)
        order = 0
        for day in range(first + 1, self._days):
            if self._rng.random() < 0.25:
                if self._rng.random() < 0.3:
                    self._order(day, order, self._days, self._days)
                    order += 1
                else:
                    self._add(day, BROWSE, 0, True)


def _plan(spec: StorefrontSpec) -> tuple[list[Customer], list[list[Visit]]]:
    rng = random.Random(spec.seed)
    customers = _customers(spec, rng)
    planner = _Planner(spec, rng)
    for who in customers:
        planner.plan(who)
    return customers, planner.buckets


@cache
def _clock_texts() -> tuple[tuple[str, ...], tuple[str, ...]]:
    # "THH:MM:SS" for every second of a day and ".mmmZ" for every millisecond: formatting a
    # timestamp is then two lookups, which matters at hundreds of thousands of messages a second.
    seconds = tuple(
        f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)
    )
    return seconds, tuple(f".{ms:03d}Z" for ms in range(1000))


class _IsoClock:
    """Formats epoch milliseconds as ISO-8601 UTC ending in ``Z``, caching each date's text."""

    def __init__(self) -> None:
        self._dates: dict[int, str] = {}
        self._seconds, self._millis = _clock_texts()

    def format(self, epoch_ms: int) -> str:
        seconds, millis = divmod(epoch_ms, 1000)
        day, second = divmod(seconds, 86_400)
        text = self._dates.get(day)
        if text is None:
            text = self._dates[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
        return text + self._seconds[second] + self._millis[millis]


def generate(spec: StorefrontSpec) -> Iterator[dict[str, Any]]:
    """Yield the storefront's raw Segment messages in non-decreasing timestamp order.

    The same spec always yields the same messages; ``messageId`` is ``demo-{seed}-{n}``.
    """
    customers, buckets = _plan(spec)
    rng = random.Random(f"render/{spec.seed}")
    writer = DayWriter(spec.seed, Shelf(build_catalogue(spec.seed), spec.seed), customers, rng)
    clock = _IsoClock()
    start_ms = int(spec.start.timestamp() * 1000)
    prefix = f"demo-{spec.seed}-"
    number = 0
    for day, visits in enumerate(buckets):
        for visit in visits:
            writer.write(visit)
        buckets[day] = []  # release the plan as we go
        day_ms = start_ms + day * _DAY_MS
        for offset, message in writer.take():
            message["messageId"] = prefix + str(number)
            message["timestamp"] = clock.format(day_ms + offset)
            number += 1
            yield message


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
    customers = _customers(spec, random.Random(spec.seed))
    return {who.user_id or who.anonymous_ids[0]: who.persona for who in customers}
