"""Business rules: stock, purchases, placements, price and category filters, boosts, diversity."""

from __future__ import annotations

import pytest

from personify.errors import InvalidInput
from personify.recs.base import Scored
from personify.recs.rules import BusinessRules, Placement

CANDIDATES = [Scored(i, s, "model") for i, s in [("a", 5), ("b", 4), ("c", 3), ("d", 2), ("e", 1)]]
CATS = {"a": "mug", "b": "mug", "c": "mug", "d": "bag", "e": "toy"}
PRICES: dict[str, float | None] = {"a": 5.0, "b": 50.0, "c": 8.0, "d": 20.0, "e": None}


def ids(found: list[Scored]) -> list[str]:
    return [s.item for s in found]


def test_out_of_stock_is_removed_unless_allowed() -> None:
    assert ids(BusinessRules().apply(CANDIDATES, 3, out_of_stock=["a"])) == ["b", "c", "d"]
    keep = BusinessRules(exclude_out_of_stock=False)
    assert ids(keep.apply(CANDIDATES, 2, out_of_stock=["a"])) == ["a", "b"]


def test_purchased_items_are_removed_in_the_email_placement_only() -> None:
    rules = BusinessRules()
    assert ids(rules.apply(CANDIDATES, 2, purchased=["a"])) == ["a", "b"]
    email = rules.apply(CANDIDATES, 2, placement="email", purchased=["a"], categories=CATS)
    assert ids(email) == ["b", "c"]


def test_product_placement_drops_recent_views() -> None:
    found = BusinessRules().apply(
        CANDIDATES, 2, placement="product", recently_viewed=["a", "b"], categories=CATS
    )
    assert ids(found) == ["c", "d"]


def test_placement_categories_and_price_range() -> None:
    rules = BusinessRules(
        placements={
            "gifts": Placement(include_categories=("mug", "toy"), max_price=10.0),
            "no-mugs": Placement(exclude_categories=("mug",)),
        }
    )
    gifts = rules.apply(CANDIDATES, 5, placement="gifts", categories=CATS, prices=PRICES)
    assert ids(gifts) == ["a", "c", "e"]  # b costs 50, d is a bag; e has no price
    assert ids(rules.apply(CANDIDATES, 5, placement="no-mugs", categories=CATS)) == ["d", "e"]


def test_boosts_multiply_scores_and_say_so() -> None:
    rules = BusinessRules(boosts={"category:toy": 6.0, "item:d": 0.1})
    found = rules.apply(CANDIDATES, 5, categories=CATS)
    assert ids(found) == ["e", "a", "b", "c", "d"]  # e: 1 x 6 = 6; d: 2 x 0.1
    assert found[0].reason == "model (promoted)" and found[0].score == pytest.approx(6.0)


def test_diversity_caps_each_category_and_fills_when_short() -> None:
    rules = BusinessRules(max_per_category=1)
    assert ids(rules.apply(CANDIDATES, 3, categories=CATS)) == ["a", "d", "e"]
    # only three categories: the fourth slot is filled by the best capped item
    assert ids(rules.apply(CANDIDATES, 4, categories=CATS)) == ["a", "d", "e", "b"]


def test_unknown_placement_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        BusinessRules().apply(CANDIDATES, 2, placement="sidebar")
    assert "home" in (err.value.hint or "") and err.value.problems[0].field == "placement"


def test_invalid_rules_are_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        BusinessRules(boosts={"mug": 2.0, "item:a": 0.0}, max_per_category=0)
    assert {p.field for p in err.value.problems} == {
        "boosts.mug",
        "boosts.item:a",
        "max_per_category",
    }
