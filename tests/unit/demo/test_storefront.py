"""The demo storefront: seeded, ordered, spec-shaped messages whose personas are distinguishable."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from itertools import islice, pairwise
from typing import Any

import orjson
import pytest

from personify.demo import (
    Product,
    StorefrontSpec,
    build_catalogue,
    estimate_events,
    generate,
    personas,
)
from personify.events.schema import validate_message

Message = dict[str, Any]
SPEC = StorefrontSpec(customers=400, days=90, seed=11)
DOCUMENTATION_NET = ipaddress.ip_network("203.0.113.0/24")


@pytest.fixture(scope="module")
def messages() -> list[Message]:
    return list(generate(SPEC))


@pytest.fixture(scope="module")
def answer_key() -> dict[str, str]:
    return personas(SPEC)


@pytest.fixture(scope="module")
def by_customer(messages: list[Message], answer_key: dict[str, str]) -> dict[str, list[Message]]:
    """Messages grouped per customer, linking anonymousIds to userIds through identify calls."""
    user_of = {m["anonymousId"]: m["userId"] for m in messages if m["type"] == "identify"}
    groups: dict[str, list[Message]] = defaultdict(list)
    for m in messages:
        anonymous = m.get("anonymousId", "")
        groups[m.get("userId") or user_of.get(anonymous) or anonymous].append(m)
    assert set(groups) == set(answer_key), "every message belongs to exactly one known customer"
    return groups


def _of(persona: str, key: dict[str, str], groups: dict[str, list[Message]]) -> list[list[Message]]:
    customers = [groups[who] for who, p in key.items() if p == persona]
    assert customers, f"the spec has {persona} customers"
    return customers


def _events(msgs: list[Message], event: str) -> list[Message]:
    return [m for m in msgs if m["type"] == "track" and m["event"] == event]


def _when(message: Message) -> datetime:
    return datetime.fromisoformat(message["timestamp"])


def test_same_seed_yields_identical_messages() -> None:
    spec = StorefrontSpec(customers=60, days=30, seed=3)
    assert list(generate(spec)) == list(generate(spec))


def test_different_seeds_yield_different_messages() -> None:
    first = list(generate(StorefrontSpec(customers=60, days=30, seed=3)))
    second = list(generate(StorefrontSpec(customers=60, days=30, seed=4)))
    assert [m["timestamp"] for m in first] != [m["timestamp"] for m in second]


def test_messages_come_in_non_decreasing_timestamp_order_within_the_period(
    messages: list[Message],
) -> None:
    stamps = [m["timestamp"] for m in messages]
    assert all(s.endswith("Z") for s in stamps)
    assert all(a <= b for a, b in pairwise(stamps))
    assert SPEC.start <= _when(messages[0])
    assert _when(messages[-1]) < SPEC.end


def test_message_ids_are_unique_and_numbered_from_the_seed(messages: list[Message]) -> None:
    ids = [m["messageId"] for m in messages]
    assert len(set(ids)) == len(ids)
    assert ids[:2] == ["demo-11-0", "demo-11-1"]


def test_every_message_has_the_fields_its_type_requires(messages: list[Message]) -> None:
    for m in messages:
        assert m.get("userId") or m.get("anonymousId"), m
        if m["type"] == "track":
            assert m["event"]
            assert isinstance(m["properties"], dict)
        elif m["type"] == "identify":
            assert m["userId"]
            assert {"email", "first_name", "last_name", "plan"} <= m["traits"].keys()
        elif m["type"] == "page":
            assert m["name"]
            assert m["properties"]["url"].endswith(m["properties"]["path"])
        else:
            assert m["type"] == "alias"
            assert m["previousId"] == m["anonymousId"]
            assert m["userId"]


def test_every_message_passes_the_collector_schema(messages: list[Message]) -> None:
    for m in islice(messages, 0, None, 7):
        validate_message(m)


def test_messages_are_plain_json_that_round_trips(messages: list[Message]) -> None:
    sample = messages[:500]
    assert orjson.loads(orjson.dumps(sample)) == sample


def test_browser_context_looks_like_analytics_js(messages: list[Message]) -> None:
    from_browsers = [m for m in messages if "userAgent" in m["context"]]
    assert len(from_browsers) > 0.95 * len(messages)
    for m in from_browsers:
        assert ipaddress.ip_address(m["context"]["ip"]) in DOCUMENTATION_NET
        assert "/" in m["context"]["timezone"]
        assert m["context"]["page"]["url"]
    agents = " ".join({m["context"]["userAgent"] for m in from_browsers})
    for family in ("iPhone", "Android", "Windows NT", "Macintosh"):
        assert family in agents


def test_some_identifies_carry_an_e164_phone(messages: list[Message]) -> None:
    phones = [m["traits"]["phone"] for m in messages if "phone" in m.get("traits", {})]
    assert phones
    assert all(re.fullmatch(r"\+1\d{10}", p) for p in phones)


def test_product_events_carry_the_ecommerce_properties(messages: list[Message]) -> None:
    wanted = {"product_id", "sku", "name", "category", "price", "quantity", "brand"}
    for m in _events(messages, "Product Viewed") + _events(messages, "Product Added"):
        assert wanted <= m["properties"].keys()
    for m in _events(messages, "Order Completed"):
        p = m["properties"]
        assert p["currency"] == "USD"
        assert p["order_id"]
        assert p["products"]
        assert p["revenue"] == pytest.approx(
            sum(x["price"] * x["quantity"] for x in p["products"]), abs=0.01
        )
    assert _events(messages, "Product List Viewed")


def test_refunds_repay_an_earlier_order_in_full(messages: list[Message]) -> None:
    orders = {m["properties"]["order_id"]: m for m in _events(messages, "Order Completed")}
    refunds = _events(messages, "Order Refunded")
    assert refunds
    for refund in refunds:
        order = orders[refund["properties"]["order_id"]]
        assert refund["properties"]["revenue"] == order["properties"]["revenue"]
        assert refund["userId"] == order["userId"]
        assert _when(order) < _when(refund)


def test_browsers_never_identify(
    answer_key: dict[str, str], by_customer: dict[str, list[Message]]
) -> None:
    for msgs in _of("browser", answer_key, by_customer):
        assert {m["type"] for m in msgs} <= {"page", "track"}
        assert not any("userId" in m for m in msgs)
        assert {m["event"] for m in msgs if m["type"] == "track"} <= {
            "Product List Viewed",
            "Product Viewed",
        }


def test_loyal_buyers_order_several_items_every_few_weeks(
    answer_key: dict[str, str], by_customer: dict[str, list[Message]]
) -> None:
    for msgs in _of("loyal_buyer", answer_key, by_customer):
        orders = _events(msgs, "Order Completed")
        assert len(orders) >= 3
        gaps = sorted((_when(b) - _when(a)).days for a, b in pairwise(orders))
        assert 5 <= gaps[len(gaps) // 2] <= 22
        assert sum(len(o["properties"]["products"]) for o in orders) >= 2 * len(orders) - 1
        first_identify = next(m for m in msgs if m["type"] == "identify")
        assert _when(first_identify) < SPEC.start + timedelta(days=10)


def test_cart_abandoners_start_checkout_but_never_order(
    answer_key: dict[str, str], by_customer: dict[str, list[Message]]
) -> None:
    for msgs in _of("cart_abandoner", answer_key, by_customer):
        assert any(m["type"] == "identify" for m in msgs)
        assert _events(msgs, "Product Added")
        assert _events(msgs, "Checkout Started")
        assert not _events(msgs, "Order Completed")


def test_lapsing_customers_buy_in_the_first_half_then_go_quiet(
    answer_key: dict[str, str], by_customer: dict[str, list[Message]]
) -> None:
    midpoint = SPEC.start + timedelta(days=SPEC.days / 2)
    for msgs in _of("lapsing_customer", answer_key, by_customer):
        assert len(_events(msgs, "Order Completed")) >= 2
        assert all(_when(m) < midpoint for m in msgs)


def test_new_signups_are_first_seen_in_the_last_week_and_sign_up(
    answer_key: dict[str, str], by_customer: dict[str, list[Message]]
) -> None:
    last_week = SPEC.end - timedelta(days=7)
    for msgs in _of("new_signup", answer_key, by_customer):
        assert _when(msgs[0]) >= last_week
        assert len(_events(msgs, "Signed Up")) == 1


def test_only_new_signups_sign_up(messages: list[Message], answer_key: dict[str, str]) -> None:
    assert {answer_key[m["userId"]] for m in _events(messages, "Signed Up")} == {"new_signup"}


def test_known_customers_browse_anonymously_before_identifying(
    answer_key: dict[str, str], by_customer: dict[str, list[Message]]
) -> None:
    devices = Counter[int]()
    for who, msgs in by_customer.items():
        if answer_key[who] == "browser":
            continue
        anonymous_ids = {m["anonymousId"] for m in msgs if "anonymousId" in m}
        devices[len(anonymous_ids)] += 1
        for anonymous in anonymous_ids:
            on_device = [m for m in msgs if m.get("anonymousId") == anonymous]
            assert "userId" not in on_device[0], "a device starts out anonymous"
            link = next(i for i, m in enumerate(on_device) if m["type"] in ("identify", "alias"))
            assert link > 0
            assert all("userId" in m for m in on_device[link:])
    assert devices[1], "some customers use one device"
    assert devices[2], "some customers use two"


def test_personas_cover_every_customer_in_the_designed_shares(
    answer_key: dict[str, str],
) -> None:
    counts = Counter(answer_key.values())
    assert sum(counts.values()) == SPEC.customers
    assert counts == {
        "browser": 140,
        "loyal_buyer": 60,
        "cart_abandoner": 60,
        "lapsing_customer": 60,
        "new_signup": 80,
    }


def test_personas_never_leak_into_messages(messages: list[Message]) -> None:
    text = orjson.dumps(messages).decode()
    assert "persona" not in text
    assert "loyal_buyer" not in text


def test_default_spec_yields_tens_of_thousands_of_messages() -> None:
    assert 20_000 <= estimate_events(StorefrontSpec()) <= 60_000


@pytest.mark.parametrize(
    "spec",
    [
        StorefrontSpec(customers=400, days=90, seed=11),
        StorefrontSpec(customers=150, days=30, seed=5),
        StorefrontSpec(customers=50, days=365, seed=1),
    ],
)
def test_estimate_is_within_30_percent_of_the_actual_count(spec: StorefrontSpec) -> None:
    actual = sum(1 for _ in generate(spec))
    assert abs(estimate_events(spec) - actual) <= 0.3 * actual


def test_spec_rejects_a_naive_end_and_too_short_a_period() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        StorefrontSpec(end=datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="days"):
        StorefrontSpec(days=3)
    with pytest.raises(ValueError, match="customers"):
        StorefrontSpec(customers=0)


def test_a_non_utc_end_still_yields_utc_timestamps_before_it() -> None:
    end = datetime(2026, 11, 1, 4, 30, tzinfo=timezone(timedelta(hours=-5)))
    spec = StorefrontSpec(customers=30, days=20, end=end)
    stamps = [m["timestamp"] for m in generate(spec)]
    assert stamps
    assert all(s.endswith("Z") for s in stamps)
    assert datetime.fromisoformat(stamps[-1]) < end


def test_catalogue_is_seeded_sized_and_spread_over_categories() -> None:
    products = build_catalogue(seed=2, size=60)
    assert products == build_catalogue(seed=2, size=60)
    assert products != build_catalogue(seed=3, size=60)
    assert len({p.product_id for p in products}) == 60
    assert all(isinstance(p, Product) and p.price > 0 for p in products)
    assert len(Counter(p.category for p in products)) == 6
    with pytest.raises(ValueError, match="size"):
        build_catalogue(seed=2, size=0)
