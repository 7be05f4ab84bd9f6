"""Built-in segment templates a workspace can use at once (and adjust by parameters).

>>> body = template("lapsing_customer", inactive_for="60d")
>>> body["condition"]["$and"][1]
{'computed.last_order_at': {'$olderThan': '60d'}}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from personify.errors import InvalidInput, NotFound, Problem


def high_value(
    min_orders: int = 5, min_revenue: float = 1000.0, active_within: str = "90d"
) -> dict[str, Any]:
    return {
        "key": "high_value",
        "name": "High-value customers",
        "description": (
            f"Top of RFM: at least {min_orders} orders and {min_revenue:g} in revenue, "
            f"with an order in the last {active_within}"
        ),
        "condition": {
            "$and": [
                {"computed.orders": {"$gte": min_orders}},
                {"computed.revenue": {"$gte": min_revenue}},
                {"computed.last_order_at": {"$newerThan": active_within}},
            ]
        },
    }


def cart_abandoner(within: str = "24h", forget_after: str = "7d") -> dict[str, Any]:
    return {
        "key": "cart_abandoner",
        "name": "Cart abandoners",
        "description": (
            f"Added a product to the cart and no order within {within} "
            f"(the add is less than {forget_after} old)"
        ),
        "condition": {
            "$and": [
                {
                    "$sequence": {
                        "first": {"name": "Product Added"},
                        "notFollowedBy": {"name": "Order Completed"},
                        "within": within,
                    }
                },
                {"$event": {"name": "Product Added", "last": {"$newerThan": forget_after}}},
            ]
        },
    }


def new_visitor(first_seen_within: str = "7d") -> dict[str, Any]:
    return {
        "key": "new_visitor",
        "name": "New visitors",
        "description": f"First seen in the last {first_seen_within}, no order yet",
        "condition": {
            "$and": [
                {"computed.first_seen": {"$newerThan": first_seen_within}},
                {"computed.orders": 0},
            ]
        },
    }


def lapsing_customer(inactive_for: str = "90d") -> dict[str, Any]:
    return {
        "key": "lapsing_customer",
        "name": "Lapsing customers",
        "description": f"Bought before, nothing in the last {inactive_for}",
        "condition": {
            "$and": [
                {"computed.orders": {"$gte": 1}},
                {"computed.last_order_at": {"$olderThan": inactive_for}},
            ]
        },
    }


def frequent_browser(views: int = 10, within: str = "7d") -> dict[str, Any]:
    return {
        "key": "frequent_browser",
        "name": "Frequent browsers",
        "description": f"At least {views} product views in {within}",
        "condition": {
            "$event": {"name": "Product Viewed", "within": within, "count": {"$gte": views}}
        },
    }


TEMPLATES: dict[str, Callable[..., dict[str, Any]]] = {
    "high_value": high_value,
    "cart_abandoner": cart_abandoner,
    "new_visitor": new_visitor,
    "lapsing_customer": lapsing_customer,
    "frequent_browser": frequent_browser,
}


def template(name: str, key: str | None = None, **params: Any) -> dict[str, Any]:
    """A template's segment body with ``params`` applied (and an optional other key)."""
    if name not in TEMPLATES:
        raise NotFound(
            f"no segment template {name!r}", hint="templates are " + ", ".join(TEMPLATES)
        )
    try:
        body = TEMPLATES[name](**params)
    except TypeError as exc:
        raise InvalidInput(
            f"template {name!r} does not take these parameters: {exc}",
            problems=[Problem("params", str(exc))],
            hint="list templates and their parameters with GET /v1/segments/templates",
        ) from exc
    if key is not None:
        body["key"] = key
    return body


def describe_templates() -> list[dict[str, Any]]:
    """Each template with its default body and parameters (for the API and CLI)."""
    import inspect

    out = []
    for name, fn in TEMPLATES.items():
        params = {p.name: p.default for p in inspect.signature(fn).parameters.values()}
        out.append({"name": name, "params": params, "segment": fn()})
    return out
