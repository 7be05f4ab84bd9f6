"""The profile document and the event row, and the pure functions that update them.

A profile is a JSON-ready dict::

    {"profile_id", "created_at", "updated_at", "merged_into", "merged_from",
     "identities": {"user_id": [...], "anonymous_id": [...], "email": [...], "phone": [...]},
     "traits": {name: {"value", "source", "at"}},
     "computed": {"first_seen", "last_seen", "event_counts", "sessions", "orders",
                  "revenue", "refunds", "refunded", "first_order_at", "last_order_at",
                  "average_order_value", "lifecycle_stage"},
     "session": {"id", "start", "last"}, "groups": [...]}

Timestamps are ISO-8601 UTC strings with microseconds and ``Z``; they sort as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from personify.errors import InvalidInput, Problem

IDENTITY_KINDS = ("user_id", "email", "phone", "anonymous_id")
EVENT_COLUMNS = (
    "message_id",
    "profile_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "timestamp",
    "received_at",
    "session_id",
    "device_type",
    "os",
    "browser",
    "local_hour",
    "local_weekday",
    "source",
    "payload",
)
# ``payload`` is the whole normalized Segment message as JSON (properties, traits, context...).
ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"


def iso(ts: datetime) -> str:
    """Uniform ISO text for a timestamp: UTC, microseconds, ``Z``.

    >>> iso(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)), iso(datetime(2026, 1, 2, 3, 4, 5, 6, UTC))
    ('2026-01-02T03:04:05.000000Z', '2026-01-02T03:04:05.000006Z')
    """
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    # Called twice per collected message: slicing the default form is about twice as fast
    # as replace() + isoformat(timespec=...). In UTC it ends in "+00:00" and omits the
    # fraction when the microseconds are zero.
    text = ts.isoformat()
    return (text[:26] if len(text) == 32 else text[:19] + ".000000") + "Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def instant(name: str, text: str) -> str:
    """A timestamp given as a parameter (``name``), as stored text: UTC when no offset is
    given, converted when one is (stored times compare as text), or a 400 naming it."""
    try:
        moment = datetime.fromisoformat(text)
        return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    except (ValueError, OverflowError):  # (overflow: an offset moves year 1 before year 1)
        raise InvalidInput(
            f"{name} {text!r} is not an ISO-8601 timestamp",
            hint=f"e.g. {name}=2026-11-24T10:00:00Z, or with an offset 2026-11-24T10:00:00+01:00 "
            "(write + as %2B in a URL)",
            problems=[Problem(name, "must be an ISO-8601 timestamp such as 2026-11-24T10:00:00Z")],
        ) from None


def new_profile(profile_id: str, at: str) -> dict[str, Any]:
    return {
        "profile_id": profile_id,
        "created_at": at,
        "updated_at": at,
        "merged_into": None,
        "merged_from": [],
        "identities": {kind: [] for kind in IDENTITY_KINDS},
        "traits": {},
        "computed": {
            "first_seen": None,
            "last_seen": None,
            "event_counts": {},
            "sessions": 0,
            "orders": 0,
            "revenue": 0.0,
            "refunds": 0,
            "refunded": 0.0,
            "first_order_at": None,
            "last_order_at": None,
            "average_order_value": None,
            "lifecycle_stage": "anonymous",
        },
        "session": None,
        "groups": [],
    }


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def order_amount(properties: Mapping[str, Any]) -> float:
    """Order value per the Segment e-commerce spec: revenue, else total, else the products."""
    for key in ("revenue", "total"):
        amount = _number(properties.get(key))
        if amount is not None:
            return amount
    total = 0.0
    products = properties.get("products")
    if isinstance(products, list):
        for item in products:
            if isinstance(item, dict):
                price = _number(item.get("price")) or 0.0
                quantity = _number(item.get("quantity"))
                total += price * (1.0 if quantity is None else quantity)
    return total


def event_key(message: Mapping[str, Any]) -> str:
    """The name events are counted under: the track event name, else the message type."""
    if message["type"] == "track":
        return str(message["event"])
    return str(message["type"])


def set_trait(
    doc: dict[str, Any],
    name: str,
    value: Any,
    source: str,
    at: str,
    priority: Mapping[str, list[str]],
) -> bool:
    """Apply one trait value under the conflict policy; return True if it changed.

    Newest wins by default; a per-trait source priority list overrides it: a value from a
    higher-priority source is never replaced by one from a lower-priority source.
    """
    traits = doc["traits"]
    current = traits.get(name)
    if current is not None:
        order = priority.get(name)
        if order:
            rank_new = order.index(source) if source in order else len(order)
            rank_old = order.index(current["source"]) if current["source"] in order else len(order)
            if rank_new > rank_old:
                return False
            if rank_new == rank_old and at < current["at"]:
                return False
        elif at < current["at"]:
            return False
        if current["value"] == value and current["source"] == source:
            current["at"] = max(at, current["at"])
            return False
    traits[name] = {"value": value, "source": source, "at": at}
    return True


def apply_event(doc: dict[str, Any], message: Mapping[str, Any], at: str) -> None:
    """Update computed traits with one event (``at`` is its corrected timestamp)."""
    c = doc["computed"]
    if c["first_seen"] is None or at < c["first_seen"]:
        c["first_seen"] = at
    if c["last_seen"] is None or at > c["last_seen"]:
        c["last_seen"] = at
    key = event_key(message)
    c["event_counts"][key] = c["event_counts"].get(key, 0) + 1
    if message["type"] == "track" and key in (ORDER_COMPLETED, ORDER_REFUNDED):
        props = message.get("properties") or {}
        if key == ORDER_COMPLETED:
            c["orders"] += 1
            c["revenue"] = round(c["revenue"] + order_amount(props), 6)
            if c["first_order_at"] is None or at < c["first_order_at"]:
                c["first_order_at"] = at
            if c["last_order_at"] is None or at > c["last_order_at"]:
                c["last_order_at"] = at
        else:
            amount = abs(order_amount(props))
            c["refunds"] += 1
            c["refunded"] = round(c["refunded"] + amount, 6)
            c["revenue"] = round(c["revenue"] - amount, 6)
        # Only orders and refunds move revenue or the order count.
        c["average_order_value"] = round(c["revenue"] / c["orders"], 6) if c["orders"] else None
    if at > doc["updated_at"]:
        doc["updated_at"] = at


def combine_computed(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Fold the computed traits of a merged-away profile into the survivor's."""
    for key in ("first_seen", "first_order_at"):
        if other[key] is not None and (into[key] is None or other[key] < into[key]):
            into[key] = other[key]
    for key in ("last_seen", "last_order_at"):
        if other[key] is not None and (into[key] is None or other[key] > into[key]):
            into[key] = other[key]
    for name, n in other["event_counts"].items():
        into["event_counts"][name] = into["event_counts"].get(name, 0) + n
    for key in ("sessions", "orders", "refunds"):
        into[key] += other[key]
    for key in ("revenue", "refunded"):
        into[key] = round(into[key] + other[key], 6)
    into["average_order_value"] = (
        round(into["revenue"] / into["orders"], 6) if into["orders"] else None
    )


def lifecycle_stage(
    doc: Mapping[str, Any], now: datetime, lapsing_days: int, churned_days: int
) -> str:
    """anonymous → lead → first_time_buyer → repeat_buyer, or lapsing / churned by recency."""
    c = doc["computed"]
    ids = doc["identities"]
    if c["orders"] == 0:
        return "lead" if ids["user_id"] or ids["email"] or ids["phone"] else "anonymous"
    last = parse_iso(c["last_order_at"])
    idle = now - last
    if idle > timedelta(days=churned_days):
        return "churned"
    if idle > timedelta(days=lapsing_days):
        return "lapsing"
    return "repeat_buyer" if c["orders"] > 1 else "first_time_buyer"
