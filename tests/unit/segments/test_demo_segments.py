"""On the demo storefront, the cart-abandoner template agrees with a pandas computation, now
and after a day passes with no new event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd

from personify.clock import FixedClock
from personify.config import Settings
from personify.demo.storefront import StorefrontSpec, generate
from personify.facade import Personify
from personify.platform import build
from personify.segments.service import Segments
from personify.segments.templates import template

SPEC = StorefrontSpec(customers=300, days=30, seed=5)


def _expected(p: Personify, messages: list[dict[str, Any]], now: pd.Timestamp) -> set[str]:
    """Latest add-to-cart at least 24 h and less than 7 days old, with no order after it."""
    rows = []
    for m in messages:
        if m.get("type") == "track" and m["event"] in ("Product Added", "Order Completed"):
            kind, value = (
                ("user_id", m["userId"]) if m.get("userId") else ("anonymous_id", m["anonymousId"])
            )
            rows.append(
                {
                    "profile": p.lookup(kind, value),
                    "event": m["event"],
                    "at": pd.Timestamp(m["timestamp"]),
                }
            )
    frame = pd.DataFrame(rows)
    last = frame.pivot_table(index="profile", columns="event", values="at", aggfunc="max")
    added, ordered = last["Product Added"], last["Order Completed"]
    abandoned = (
        added.notna()
        & (ordered.isna() | (ordered < added))
        & (added + pd.Timedelta(hours=24) <= now)
        & (added + pd.Timedelta(days=7) > now)
    )
    return set(last.index[abandoned])


def test_cart_abandoners_on_the_demo_match_pandas_and_follow_time() -> None:
    clock = FixedClock(SPEC.end)
    settings = Settings(
        state_backend="memory",
        event_store_backend="memory",
        bus_backend="memory",
        write_keys="wk=web",
    )
    p = build(settings, clock)
    messages = list(generate(SPEC))
    p.ingest(messages, "demo")
    p.drain()
    Segments(p).save(template("cart_abandoner"), "test")
    members = {m["profile_id"] for m in p.stores.segments.members("cart_abandoner", None)}
    expected = _expected(p, messages, pd.Timestamp(SPEC.end))
    assert len(expected) >= 5  # the demo has real abandoners
    assert members == expected

    # A day later, with no new event: recent carts have turned into abandoners and old ones
    # have been forgotten; the scheduler finds them by their due times.
    clock.advance(days=1)
    assert p.segment_engine is not None
    p.segment_engine.tick()
    later = {m["profile_id"] for m in p.stores.segments.members("cart_abandoner", None)}
    assert later == _expected(p, messages, pd.Timestamp(SPEC.end + timedelta(days=1)))
    assert later != members
    p.close()
