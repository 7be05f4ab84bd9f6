"""Rendering one planned storefront visit as the Segment messages a shopper's browser sends.

The planner in :mod:`personify.demo.planner` decides who visits on which day and why; this
module turns each visit into ``page`` views, e-commerce ``track`` events and ``identify`` /
``alias`` calls carrying the context analytics.js attaches (user agent, time zone, IP, page).
Messages get their ``messageId`` and ``timestamp`` later, when the generator merges the visits
that overlap in time into one ordered stream.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Final

from personify.demo.catalogue import CATEGORIES, Product, Shelf
from personify.demo.shoppers import LOYAL_BUYER, Customer, traits

SITE: Final = "https://shop.example.com"
CURRENCY: Final = "USD"
# The kinds of visit the planner schedules; LOGIN_* visits end anonymous browsing with a login.
BROWSE, LOGIN_BROWSE, BUY, ABANDON, LOGIN_ABANDON, SIGNUP, REFUND = range(7)

Message = dict[str, Any]
# (start in ms after its day begins, customer index, kind, device, already known, order number)
Visit = tuple[int, int, int, int, bool, int]

_LIBRARY_VERSION: Final = "4.1.0"  # of analytics.js, which browsers load
_SERVER_LIBRARY_VERSION: Final = "2.3.3"  # of analytics-python, which the back office uses
_BROWSE_VIEWS = (1, 3)  # product pages seen while browsing, inclusive range
_ABANDON_VIEWS = (0, 2)  # extra product pages seen before filling a cart that is abandoned
_ABANDON_ADDS = (1, 2)
_LOYAL_BASKET = (2, 4)
_BASKET = (1, 3)


def basket(seed: int, customer: Customer, order: int, shelf: Shelf) -> list[tuple[Product, int]]:
    """The (product, quantity) lines of a customer's n-th order.

    Seeded by the order itself, so a later refund can recompute the exact same revenue
    without the generator having to remember every order.
    """
    rng = random.Random(f"basket/{seed}/{customer.index}/{order}")
    low, high = _LOYAL_BASKET if customer.persona == LOYAL_BUYER else _BASKET
    wanted = rng.randint(low, high)
    lines: dict[str, tuple[Product, int]] = {}
    for _ in range(wanted * 3):  # a few retries, as popular products get picked twice
        product = shelf.pick(rng, rng.choice(customer.favourites))
        lines.setdefault(product.product_id, (product, 2 if rng.random() < 0.15 else 1))
        if len(lines) == wanted:
            break
    return list(lines.values())


def _mean(bounds: tuple[int, int]) -> float:
    return (bounds[0] + bounds[1]) / 2


def expected_messages(kind: int, persona: str) -> float:
    """Average number of messages a visit of ``kind`` produces (drives the size estimate)."""
    browse = 3 + 2 * _mean(_BROWSE_VIEWS)
    lines = _mean(_LOYAL_BASKET if persona == LOYAL_BUYER else _BASKET)
    abandon = 6 + 2 * _mean(_ABANDON_VIEWS) + 3 * _mean(_ABANDON_ADDS)
    means = {
        BROWSE: browse,
        LOGIN_BROWSE: browse + 2,
        BUY: 8 + 3 * lines,
        ABANDON: abandon,
        LOGIN_ABANDON: abandon + 2,
        SIGNUP: browse + 3.5,
        REFUND: 1.0,
    }
    return means[kind]


class VisitWriter:
    """Renders a visit as (ms after its day begins, message) pairs, in time order.

    One writer serves a whole generation run, so its per-product cache is built only once.
    """

    def __init__(
        self, seed: int, shelf: Shelf, customers: Sequence[Customer], rng: random.Random
    ) -> None:
        self._messages: list[tuple[int, Message]] = []
        self._seed, self._shelf, self._customers, self._rng = seed, shelf, customers, rng
        self._lines: dict[str, dict[str, Any]] = {}
        # State of the visit being written.
        self._who = customers[0]
        self._t = 0
        self._anonymous_id = self._ip = self._agent = ""
        self._user_id: str | None = None
        self._page: dict[str, str] = {}
        self._referrer = ""

    def write(self, visit: Visit) -> list[tuple[int, Message]]:
        """The messages of one visit, each with its time in ms after the visit's day begins."""
        start, index, kind, device, known, order = visit
        who = self._who = self._customers[index]
        self._t, self._messages = start, []
        self._anonymous_id, self._ip, self._agent = (
            who.anonymous_ids[device],
            who.ips[device],
            who.agents[device],
        )
        self._user_id = who.user_id if known else None
        self._referrer = "https://www.google.com/" if self._rng.random() < 0.4 else ""
        if kind == BROWSE:
            self._browse()
        elif kind == LOGIN_BROWSE:
            self._browse()
            self._login()
        elif kind == BUY:
            self._buy(order)
        elif kind in (ABANDON, LOGIN_ABANDON):
            self._abandon(login=kind == LOGIN_ABANDON)
        elif kind == SIGNUP:
            self._signup()
        elif kind == REFUND:
            self._refund(order)
        else:
            raise ValueError(f"unknown visit kind {kind}")
        return self._messages

    # -- message builders --------------------------------------------------------------

    def _line(self, product: Product, quantity: int) -> dict[str, Any]:
        """Segment's product properties; a fresh dict each time, from a cached template."""
        template = self._lines.get(product.product_id)
        if template is None:
            template = self._lines[product.product_id] = {
                "product_id": product.product_id,
                "sku": product.sku,
                "name": product.name,
                "category": product.category,
                "price": product.price,
                "quantity": 1,
                "brand": product.brand,
                "url": SITE + product.path,
            }
        line = template.copy()
        line["quantity"] = quantity
        return line

    def _push(self, message: Message, min_gap_ms: int, max_gap_ms: int) -> None:
        self._t += min_gap_ms + int(self._rng.random() * (max_gap_ms - min_gap_ms))
        self._messages.append((self._t, message))

    def _message(self, kind: str) -> Message:
        """A message of ``kind`` from the current visitor, with the context analytics.js adds."""
        message: Message = {"type": kind, "anonymousId": self._anonymous_id}
        if self._user_id is not None:
            message["userId"] = self._user_id
        message["context"] = {
            "ip": self._ip,
            "userAgent": self._agent,
            "timezone": self._who.timezone,
            "locale": "en-US",
            "library": {"name": "analytics.js", "version": _LIBRARY_VERSION},
            "page": self._page.copy(),
        }
        return message

    def _page_view(self, name: str, path: str, title: str, category: str | None = None) -> None:
        url = SITE + path
        self._page = {"path": path, "referrer": self._referrer, "title": title, "url": url}
        message = self._message("page")
        message["name"] = name
        if category is not None:
            message["category"] = category
        message["properties"] = self._page.copy()
        self._referrer = url
        self._push(message, 3_000, 60_000)

    def _track(self, event: str, properties: dict[str, Any]) -> None:
        message = self._message("track")
        message["event"] = event
        message["properties"] = properties
        self._push(message, 300, 4_000)

    def _identify(self) -> None:
        who = self._who
        assert who.user_id is not None, "only customers with a userId log in"
        self._user_id = who.user_id
        message = self._message("identify")
        message["traits"] = traits(self._seed, who)
        self._push(message, 500, 3_000)

    # -- visit flows ---------------------------------------------------------------------

    def _category(self) -> str:
        if self._rng.random() < 0.8:
            return self._rng.choice(self._who.favourites)
        return self._rng.choice(CATEGORIES)

    def _product_list(self, category: str) -> None:
        slug = category.lower()
        self._page_view(category, f"/collections/{slug}", f"{category} | Shop", "Collection")
        products = [
            {**self._line(p, 1), "position": n + 1}
            for n, p in enumerate(self._shelf.top(category, 4))
        ]
        self._track(
            "Product List Viewed", {"list_id": slug, "category": category, "products": products}
        )

    def _view(self, product: Product) -> None:
        self._page_view("Product", product.path, f"{product.name} | Shop", product.category)
        self._track("Product Viewed", self._line(product, 1))

    def _browse(self, views: tuple[int, int] = _BROWSE_VIEWS) -> str:
        category = self._category()
        self._page_view("Home", "/", "Shop")
        self._product_list(category)
        for _ in range(self._rng.randint(*views)):
            shown = category if self._rng.random() < 0.7 else self._category()
            self._view(self._shelf.pick(self._rng, shown))
        return category

    def _login(self) -> None:
        self._page_view("Log In", "/account/login", "Log in | Shop")
        self._identify()

    def _cart_id(self) -> str:
        return f"cart_{self._rng.getrandbits(48):012x}"

    def _fill_cart(self, lines: list[tuple[Product, int]], cart_id: str) -> None:
        for product, quantity in lines:
            self._view(product)
            self._track("Product Added", {**self._line(product, quantity), "cart_id": cart_id})
        self._page_view("Cart", "/cart", "Your cart | Shop")

    def _start_checkout(self, lines: list[tuple[Product, int]], cart_id: str) -> float:
        value = round(sum(p.price * q for p, q in lines), 2)
        self._page_view("Checkout", "/checkout", "Checkout | Shop")
        products = [self._line(p, q) for p, q in lines]
        self._track(
            "Checkout Started",
            {"cart_id": cart_id, "value": value, "currency": CURRENCY, "products": products},
        )
        return value

    def _abandon(self, *, login: bool) -> None:
        category = self._browse(_ABANDON_VIEWS)
        count = self._rng.randint(*_ABANDON_ADDS)
        lines = [(self._shelf.pick(self._rng, category), 1) for _ in range(count)]
        cart_id = self._cart_id()
        self._fill_cart(lines, cart_id)
        if login:  # shoppers are asked to log in between the cart and the checkout
            self._login()
        self._start_checkout(lines, cart_id)

    def _buy(self, order: int) -> None:
        lines = basket(self._seed, self._who, order, self._shelf)
        cart_id = self._cart_id()
        self._page_view("Home", "/", "Shop")
        self._product_list(lines[0][0].category)
        self._fill_cart(lines, cart_id)
        revenue = self._start_checkout(lines, cart_id)
        shipping = 0.0 if revenue >= 50 else 4.99
        tax = round(revenue * 0.08, 2)
        self._track(
            "Order Completed",
            {
                "order_id": self._order_id(order),
                "total": round(revenue + shipping + tax, 2),
                "revenue": revenue,
                "shipping": shipping,
                "tax": tax,
                "currency": CURRENCY,
                "products": [self._line(p, q) for p, q in lines],
            },
        )
        self._page_view("Order Confirmation", "/checkout/complete", "Thank you | Shop")

    def _signup(self) -> None:
        self._browse()
        self._page_view("Sign Up", "/account/register", "Create an account | Shop")
        who = self._who
        if self._rng.random() < 0.5:  # some sites alias the visitor to the new account first
            assert who.user_id is not None
            alias = self._message("alias")
            alias["userId"] = who.user_id
            alias["previousId"] = self._anonymous_id
            self._push(alias, 200, 1_000)
        self._identify()
        self._track("Signed Up", {"method": "email", "plan": traits(self._seed, who)["plan"]})

    def _order_id(self, order: int) -> str:
        return f"ord_{self._seed}_{self._who.index}_{order}"

    def _refund(self, order: int) -> None:
        # Refunds come from the shop's back office, so the message is server-side: no page,
        # no browser, only the userId.
        who = self._who
        lines = basket(self._seed, who, order, self._shelf)
        properties = {
            "order_id": self._order_id(order),
            "revenue": round(sum(p.price * q for p, q in lines), 2),
            "currency": CURRENCY,
        }
        message: Message = {"type": "track", "userId": who.user_id, "event": "Order Refunded"}
        message["properties"] = properties
        message["context"] = {
            "library": {"name": "analytics-python", "version": _SERVER_LIBRARY_VERSION}
        }
        self._push(message, 0, 1_000)
