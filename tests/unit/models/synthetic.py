"""Seeded synthetic event rows (event-store shape) with a known churn signal, for unit tests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01", tz="UTC")
CATEGORIES = ("Shoes", "Bags", "Hats")


def events(customers: int = 300, days: int = 360, seed: int = 0) -> pd.DataFrame:
    """Each customer buys at their own rate until their own (random) last day, and browses.

    Loyal customers (high rate, no drop-out) and fading ones (drop out early) make recency and
    frequency predictive of future orders, as in real shops.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        pid = f"p{c:04d}"
        first = rng.uniform(0, days * 0.4)
        last = first + rng.exponential(days * 0.6)
        rate = rng.gamma(2.0, 1 / 40)  # orders per day
        favourite = CATEGORIES[c % len(CATEGORIES)]
        t = first
        while t < min(last, days):
            when = START + pd.Timedelta(days=t)
            session = f"s{c}-{int(t * 10)}"
            amount = round(float(rng.gamma(3.0, 15.0)), 2)
            rows.append(
                _row(pid, "track", "Product Viewed", when, session, {"category": favourite})
            )
            rows.append(
                _row(
                    pid,
                    "track",
                    "Order Completed",
                    when + pd.Timedelta(minutes=5),
                    session,
                    {"revenue": amount, "products": [{"price": amount, "category": favourite}]},
                )
            )
            t += rng.exponential(1 / rate)
        rows.append(_row(pid, "page", None, START + pd.Timedelta(days=first), f"s{c}-0", {}))
    return pd.DataFrame(rows)


def _row(
    pid: str, kind: str, event: str | None, when: pd.Timestamp, session: str, props: dict
) -> dict[str, object]:
    return {
        "profile_id": pid,
        "type": kind,
        "event": event,
        "timestamp": when,
        "session_id": session,
        "payload": json.dumps({"type": kind, "event": event, "properties": props}),
    }
