"""A seeded product catalogue for the demo storefront, and a shelf that picks from it.

The catalogue is small and synthetic but shaped like a real one: a handful of categories with
their own brands and price ranges. The :class:`Shelf` skews picks towards a few best sellers
(popularity falls off like Zipf's law, as in real stores) so that trending and recommendation
features have a signal to find.

>>> products = build_catalogue(seed=1, size=12)
>>> len(products), products[0].product_id, products[0].sku
(12, 'p00001', 'SKU-P00001')
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

# category -> (brands, product nouns, (lowest price, highest price))
_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[float, float]]] = {
    "Shoes": (
        ("Stride", "Northpeak", "Velo"),
        ("Runner", "Trail Shoe", "Sneaker", "Boot", "Loafer"),
        (39.0, 189.0),
    ),
    "Apparel": (
        ("Loom & Co", "Northpeak", "Basic Theory"),
        ("T-Shirt", "Hoodie", "Jacket", "Chinos", "Sweater"),
        (14.0, 149.0),
    ),
    "Electronics": (
        ("Voltix", "Auralis", "Pixelon"),
        ("Headphones", "Speaker", "Smartwatch", "Charger", "Earbuds"),
        (19.0, 399.0),
    ),
    "Home": (
        ("Hearth", "Casa Nova", "Linden"),
        ("Mug Set", "Throw Blanket", "Desk Lamp", "Cushion", "Vase"),
        (9.0, 129.0),
    ),
    "Beauty": (
        ("Lumi", "Verdant", "Aurelle"),
        ("Face Serum", "Moisturizer", "Lip Balm", "Shampoo", "Eau de Parfum"),
        (6.0, 89.0),
    ),
    "Sports": (
        ("Velo", "Summit", "Kinetic"),
        ("Yoga Mat", "Water Bottle", "Dumbbell Set", "Daypack", "Cycling Gloves"),
        (12.0, 159.0),
    ),
}
_ADJECTIVES = (
    "Classic",
    "Essential",
    "Pro",
    "Everyday",
    "Premium",
    "Lite",
    "Urban",
    "Organic",
    "Compact",
    "Deluxe",
)
_POPULARITY_SKEW = 0.9  # exponent of the Zipf-like fall-off: 1 / rank**skew

CATEGORIES: tuple[str, ...] = tuple(_CATEGORIES)


@dataclass(frozen=True)
class Product:
    """One item for sale, with the fields Segment's e-commerce spec puts on product events."""

    product_id: str
    name: str
    category: str
    price: float
    brand: str

    @property
    def sku(self) -> str:
        """Stock-keeping unit; derived from the id so it never disagrees with it."""
        return f"SKU-{self.product_id.upper()}"

    @property
    def path(self) -> str:
        """Where the product's detail page lives on the storefront."""
        return f"/products/{self.product_id}"


def _price(rng: random.Random, low: float, high: float) -> float:
    # Log-uniform so cheap items are as common as expensive ones relative to their range,
    # rounded to the familiar ".99" shop price.
    raw = math.exp(rng.uniform(math.log(low), math.log(high)))
    return round(max(1.0, round(raw)) - 0.01, 2)


def build_catalogue(seed: int, size: int = 200) -> list[Product]:
    """Build ``size`` products, spread evenly over the categories; same seed, same catalogue.

    Ids (``p00001`` …) and categories depend only on position, so catalogues built with
    different seeds line up; names, brands and prices depend on the seed.
    """
    if size < 1:
        raise ValueError(f"catalogue size must be at least 1, got {size}")
    rng = random.Random(seed)
    products: list[Product] = []
    for n in range(size):
        category = CATEGORIES[n % len(CATEGORIES)]
        brands, nouns, (low, high) = _CATEGORIES[category]
        products.append(
            Product(
                product_id=f"p{n + 1:05d}",
                name=f"{rng.choice(_ADJECTIVES)} {rng.choice(nouns)}",
                category=category,
                price=_price(rng, low, high),
                brand=rng.choice(brands),
            )
        )
    return products


class Shelf:
    """Picks products at random, favouring a seed-chosen set of best sellers.

    Picking is a binary search over cumulative weights, so it stays cheap for the millions of
    picks a large demo data set makes.
    """

    def __init__(self, products: Sequence[Product], seed: int) -> None:
        if not products:
            raise ValueError("a shelf needs at least one product")
        ranked = list(products)
        random.Random(seed).shuffle(ranked)  # which products are the best sellers
        self._everything = self._weigh(ranked)
        self._by_category = {
            category: self._weigh([p for p in ranked if p.category == category])
            for category in sorted({p.category for p in ranked})
        }

    @staticmethod
    def _weigh(ranked: list[Product]) -> tuple[list[Product], list[float]]:
        weights = (1.0 / (rank + 1) ** _POPULARITY_SKEW for rank in range(len(ranked)))
        return ranked, list(accumulate(weights))

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories on the shelf, sorted."""
        return tuple(self._by_category)

    def pick(self, rng: random.Random, category: str | None = None) -> Product:
        """One product, popular ones more often; from ``category`` when it is on the shelf."""
        items, cumulative = self._by_category.get(category or "", self._everything)
        index = bisect_right(cumulative, rng.random() * cumulative[-1])
        return items[min(index, len(items) - 1)]  # guard against float rounding up to the total

    def top(self, category: str, count: int) -> list[Product]:
        """The ``count`` best sellers of ``category``, as a product list page shows them."""
        items, _ = self._by_category.get(category, self._everything)
        return items[:count]
