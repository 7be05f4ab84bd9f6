"""A small seeded storefront as event-store rows: mug lovers, gardeners and toys for all.

* 8 mugs (kitchen), 8 garden items, 4 toys that nearly everyone buys (the popular items);
* 30 mug lovers and 30 gardeners (user ids ``mug-<n>``, ``garden-<n>``) place 4 orders
  each between January and April 2024: two items of their taste, a toy now and then,
  and their favourite item (``m<n % 8>`` / ``g<n % 8>``) every time; they also view items
  of their taste.

Every event is before :data:`END`, so anything sent at the test clock (2024-05-01 12:00)
is newer than the training window.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 4, 30, tzinfo=UTC)
ITEMS = {
    **{f"m{i}": ("kitchen", f"stoneware mug style {i}", 8.0 + i) for i in range(8)},
    **{f"g{i}": ("garden", f"garden planter pot model {i}", 20.0 + i) for i in range(8)},
    **{f"t{i}": ("toys", f"wooden toy number {i}", 12.0) for i in range(4)},
}


def product(item: str) -> dict[str, Any]:
    category, name, price = ITEMS[item]
    return {"product_id": item, "name": name, "category": category, "price": price}


def _row(user: str, event: str, when: datetime, props: dict[str, Any], mid: str) -> dict[str, Any]:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    payload = {"type": "track", "event": event, "userId": user, "properties": props}
    return {
        "profile_id": user,
        "event": event,
        "timestamp": stamp,
        "message_id": mid,
        "payload": orjson.dumps(payload).decode(),
    }


def rows(seed: int = 7, per_taste: int = 30) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for taste, prefix in (("mug", "m"), ("garden", "g")):
        for n in range(per_taste):
            user = f"{taste}-{n}"
            favourite = f"{prefix}{n % 8}"
            for order in range(4):
                when = START + timedelta(days=rng.uniform(0, (END - START).days - 1))
                picks = {favourite, *rng.sample([f"{prefix}{i}" for i in range(8)], 2)}
                if rng.random() < 0.9:
                    picks.add(f"t{rng.randrange(4)}")
                for i, item in enumerate(sorted(picks)):
                    out.append(
                        _row(
                            user,
                            "Product Viewed",
                            when - timedelta(minutes=5 + i),
                            product(item),
                            f"{user}-{order}-v{i}",
                        )
                    )
                out.append(
                    _row(
                        user,
                        "Order Completed",
                        when,
                        {
                            "order_id": f"{user}-{order}",
                            "products": [product(i) for i in sorted(picks)],
                        },
                        f"{user}-{order}",
                    )
                )
    return out
