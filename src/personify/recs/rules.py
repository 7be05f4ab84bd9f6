"""Business rules on top of a ranking: what may be shown where, and in what mix.

Models rank by predicted interest; a shop also needs to say "never show what is out of
stock", "this e-mail only shows things the customer has not bought", "no more than three
mugs in one carousel" or "push the new collection". :class:`BusinessRules` applies those
to a longer candidate list, in this order: hard filters (stock, already bought, placement
categories and price range), boosts (multiply the score), then category diversity.

Diversity is soft: when too few items remain after capping each category, the best of
the capped items fill the list, so a placement is never left short for the sake of variety.

>>> from personify.recs.base import Scored
>>> rules = BusinessRules(max_per_category=1)
>>> picked = rules.apply([Scored("a", 3, ""), Scored("b", 2, ""), Scored("c", 1, "")], 2,
...                      categories={"a": "mug", "b": "mug", "c": "bag"})
>>> [s.item for s in picked]
['a', 'c']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from personify.errors import InvalidInput, Problem
from personify.recs.base import Scored


@dataclass(frozen=True)
class Placement:
    """Rules for one place recommendations appear (home page, product page, cart, e-mail)."""

    exclude_purchased: bool = False
    exclude_recently_viewed: bool = False
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    max_per_category: int | None = None


DEFAULT_PLACEMENTS: dict[str, Placement] = {
    "home": Placement(max_per_category=3),
    "product": Placement(max_per_category=4, exclude_recently_viewed=True),
    "cart": Placement(max_per_category=2, exclude_recently_viewed=True),
    "email": Placement(exclude_purchased=True, max_per_category=2),
}


@dataclass(frozen=True)
class BusinessRules:
    """Filters, boosts and diversity applied after ranking.

    ``boosts`` multiplies the score of items (``"item:<id>"``) or whole categories
    (``"category:<name>"``); values above 1 push up, below 1 push down.
    """

    exclude_out_of_stock: bool = True
    exclude_purchased: bool = False
    max_per_category: int | None = None
    boosts: Mapping[str, float] = field(default_factory=dict)
    placements: Mapping[str, Placement] = field(default_factory=lambda: dict(DEFAULT_PLACEMENTS))

    def __post_init__(self) -> None:
        problems = [
            Problem(f"boosts.{key}", "must be a number > 0")
            for key, value in self.boosts.items()
            if not value > 0
        ]
        problems += [
            Problem(f"boosts.{key}", "must start with 'item:' or 'category:'")
            for key in self.boosts
            if not key.startswith(("item:", "category:"))
        ]
        if self.max_per_category is not None and self.max_per_category < 1:
            problems.append(Problem("max_per_category", "must be >= 1"))
        if problems:
            raise InvalidInput(
                "invalid recommendation rules",
                hint="e.g. boosts={'category:MUG': 1.5}, max_per_category=3",
                problems=problems,
            )

    def placement(self, name: str | None) -> Placement:
        """The rules of a named placement (``None``: no placement-specific rules)."""
        if name is None:
            return Placement(max_per_category=self.max_per_category)
        if name not in self.placements:
            raise InvalidInput(
                f"unknown placement {name!r}",
                hint=f"use one of {', '.join(sorted(self.placements))} (or leave it out)",
                problems=[Problem("placement", f"must be one of {sorted(self.placements)}")],
            )
        return self.placements[name]

    def apply(
        self,
        candidates: Iterable[Scored],
        k: int,
        *,
        placement: str | None = None,
        categories: Mapping[str, str | None] | None = None,
        prices: Mapping[str, float | None] | None = None,
        out_of_stock: Iterable[str] = (),
        purchased: Iterable[str] = (),
        recently_viewed: Iterable[str] = (),
    ) -> list[Scored]:
        """The best ``k`` candidates that pass the rules, best first."""
        rules = self.placement(placement)
        cats = categories or {}
        blocked = set(out_of_stock) if self.exclude_out_of_stock else set()
        if self.exclude_purchased or rules.exclude_purchased:
            blocked |= set(purchased)
        if rules.exclude_recently_viewed:
            blocked |= set(recently_viewed)
        kept = [
            c
            for c in candidates
            if c.item not in blocked and _fits(rules, cats.get(c.item), (prices or {}).get(c.item))
        ]
        boosted = sorted((self._boost(c, cats.get(c.item)) for c in kept), key=lambda c: -c.score)
        cap = rules.max_per_category or self.max_per_category
        return _diversify(boosted, k, cap, cats)

    def _boost(self, item: Scored, category: str | None) -> Scored:
        factor = self.boosts.get(f"item:{item.item}", 1.0)
        if category is not None:
            factor *= self.boosts.get(f"category:{category}", 1.0)
        if factor == 1.0 or item.score <= 0:
            return item
        return replace(item, score=item.score * factor, reason=f"{item.reason} (promoted)")


def _fits(rules: Placement, category: str | None, price: float | None) -> bool:
    if rules.include_categories and category not in rules.include_categories:
        return False
    if category is not None and category in rules.exclude_categories:
        return False
    if price is not None and rules.min_price is not None and price < rules.min_price:
        return False
    return not (price is not None and rules.max_price is not None and price > rules.max_price)


def _diversify(
    ranked: list[Scored], k: int, cap: int | None, categories: Mapping[str, str | None]
) -> list[Scored]:
    if cap is None:
        return ranked[:k]
    picked: list[Scored] = []
    held: list[Scored] = []
    per: dict[str, int] = {}
    for item in ranked:
        category = categories.get(item.item)
        if category is not None and per.get(category, 0) >= cap:
            held.append(item)
            continue
        picked.append(item)
        if category is not None:
            per[category] = per.get(category, 0) + 1
        if len(picked) == k:
            return picked
    return picked + held[: k - len(picked)]
