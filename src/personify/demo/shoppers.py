"""The synthetic shoppers of the demo storefront: personas, identities, devices and traits.

A customer's persona decides how they behave (see :mod:`personify.demo.storefront`); it lives
only here, in the generator's bookkeeping, and never in the messages.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any, Final

from personify.demo.catalogue import CATEGORIES

BROWSER, LOYAL_BUYER, CART_ABANDONER, LAPSING_CUSTOMER, NEW_SIGNUP = (
    "browser",
    "loyal_buyer",
    "cart_abandoner",
    "lapsing_customer",
    "new_signup",
)
PERSONA_SHARES: Final = {
    BROWSER: 0.35,
    LOYAL_BUYER: 0.15,
    CART_ABANDONER: 0.15,
    LAPSING_CUSTOMER: 0.15,
    NEW_SIGNUP: 0.20,
}
_TWO_DEVICE_SHARE = 0.3
USER_AGENTS: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
)
# (IANA zone, its UTC offset in hours around the default demo period, share of shoppers)
TIMEZONES: Final = (
    ("America/New_York", -5, 0.35),
    ("America/Chicago", -6, 0.15),
    ("America/Denver", -7, 0.05),
    ("America/Los_Angeles", -8, 0.25),
    ("Europe/London", 0, 0.12),
    ("Europe/Berlin", 1, 0.08),
)
_FIRST_NAMES = ("Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Priya", "Lucas", "Sofia", "Omar")
_LAST_NAMES = ("Garcia", "Nguyen", "Smith", "Patel", "Kim", "Johnson", "Rossi", "Okafor", "Chen")
_AREA_CODES = ("415", "212", "312", "206", "617", "512", "303")
_PLANS = ("free", "free", "plus", "premium")
_ZONE_WEIGHTS = tuple(share for _, _, share in TIMEZONES)


@dataclass(frozen=True, slots=True)
class Customer:
    """A synthetic shopper: who they are per device, and their hidden persona."""

    index: int
    persona: str
    user_id: str | None
    anonymous_ids: tuple[str, ...]
    agents: tuple[str, ...]
    ips: tuple[str, ...]
    timezone: str
    utc_offset: int
    favourites: tuple[str, ...]


def traits(seed: int, customer: Customer) -> dict[str, Any]:
    """Identify traits for a customer, the same every time they log in."""
    rng = random.Random(seed * 1_000_003 + customer.index)
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    out: dict[str, Any] = {
        "email": f"{first}.{last}{customer.index}@example.com".lower(),
        "first_name": first,
        "last_name": last,
        "plan": rng.choice(_PLANS),
    }
    if rng.random() < 0.6:  # 555-01xx numbers are reserved for fiction
        out["phone"] = f"+1{rng.choice(_AREA_CODES)}55501{rng.randrange(100):02d}"
    return out


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


def make_customers(count: int, rng: random.Random) -> list[Customer]:
    """``count`` customers with shuffled personas, ids, devices, time zones and tastes."""
    out: list[Customer] = []
    for index, persona in enumerate(_persona_labels(count, rng)):
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
