"""Planning who visits the demo storefront on which day, and what each visit is for.

Each persona has its own schedule (see :mod:`personify.demo.storefront` for the behaviours).
The plan is a compact tuple per visit, bucketed by day, so that rendering can stream one day at
a time; all randomness comes from one seeded RNG drawn in a fixed order, for determinism.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from itertools import accumulate
from typing import Final

from personify.demo.shoppers import (
    BROWSER,
    CART_ABANDONER,
    LAPSING_CUSTOMER,
    LOYAL_BUYER,
    NEW_SIGNUP,
    Customer,
)
from personify.demo.visits import (
    ABANDON,
    BROWSE,
    BUY,
    LOGIN_ABANDON,
    LOGIN_BROWSE,
    REFUND,
    SIGNUP,
    Visit,
)

DAY_MS: Final = 86_400_000
_HOUR_MS = 3_600_000
# Visits last well under an hour, so starting by 23:00 keeps each visit inside its day.
_LATEST_START_MS = DAY_MS - _HOUR_MS
_LOCAL_HOURS = tuple(range(7, 24))  # shoppers' local hours, evening-heavy
_HOUR_CUMULATIVE = tuple(accumulate((2, 3, 3, 3, 4, 5, 4, 3, 3, 3, 4, 5, 7, 8, 7, 4, 2)))
_REFUND_SHARE = 0.08


class Planner:
    """Schedules every customer's visits into per-day buckets, drawing from one seeded RNG.

    A customer has at most one browser visit per day, so the visit that identifies a device
    always precedes the visits that device makes as a known customer.
    """

    def __init__(self, days: int, start_ms: int, rng: random.Random) -> None:
        """Plan ``days`` days from ``start_ms`` (epoch milliseconds) on."""
        self.buckets: list[list[Visit]] = [[] for _ in range(days)]
        self._days, self._rng = days, rng
        self._scale = days / 90  # the personas' rhythms are tuned for a 90-day period
        self._start_of_day_ms = start_ms % DAY_MS
        self._who: Customer | None = None
        self._used: set[int] = set()

    def plan(self, who: Customer) -> None:
        """Add the customer's visits to the buckets."""
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
        into_day = (utc_ms - self._start_of_day_ms) % DAY_MS
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

    def _second_device(self, low: int, high: int) -> int | None:
        """Log in on the customer's second device, if any, on a free day in ``[low, high)``.

        Returns that day: the second device is used as a known customer's only after it.
        """
        assert self._who is not None
        day = self._free_day(low, high) if len(self._who.anonymous_ids) > 1 else None
        if day is not None:
            self._add(day, LOGIN_BROWSE, 1, False)
        return day

    def _device(self, day: int, second_login: int | None) -> int:
        if second_login is None or day <= second_login:
            return 0
        return 1 if self._rng.random() < 0.5 else 0

    def _browse_known(self, low: int, high: int, visits: int, second_login: int | None) -> None:
        for _ in range(visits):
            day = self._free_day(low, high)
            if day is not None:
                self._add(day, BROWSE, self._device(day, second_login), True)

    def _order(self, day: int, order: int, second_login: int | None, refund_by: int) -> None:
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
                    self._order(day, order, None, self._days)
                    order += 1
                else:
                    self._add(day, BROWSE, 0, True)
