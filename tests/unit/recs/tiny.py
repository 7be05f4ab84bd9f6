"""Hand-made interaction data whose expected rankings are worked out in the tests.

Purchases (order ids in brackets)::

         a      b      c      d
    u1   2 [o1,o2] 1 [o1]  .      .
    u2   1 [o3]    .      1 [o3]  .
    u3   .      1 [o4] 1 [o4] 1 [o5]
    u4   .      .      1 [o6]  .

Distinct buyers: a 2, b 2, c 3, d 1. u3's order o5 is the latest (day 9 of 10).
"""

from __future__ import annotations

import pandas as pd

from personify.recs.data import Catalogue, Interactions, InteractionWeights, build_interactions

DAY = pd.Timestamp("2024-03-01")
ROWS = [
    ("u1", "a", "o1", 0),
    ("u1", "b", "o1", 0),
    ("u1", "a", "o2", 5),
    ("u2", "a", "o3", 1),
    ("u2", "c", "o3", 1),
    ("u3", "b", "o4", 2),
    ("u3", "c", "o4", 2),
    ("u3", "d", "o5", 9),
    ("u4", "c", "o6", 3),
]


def events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in ROWS],
            "item_id": [r[1] for r in ROWS],
            "kind": "purchase",
            "order_id": [r[2] for r in ROWS],
            "timestamp": [DAY + pd.Timedelta(days=r[3]) for r in ROWS],
        }
    )


def catalogue() -> Catalogue:
    return Catalogue.from_frame(
        pd.DataFrame(
            {
                "item_id": ["a", "b", "c", "d"],
                "title": ["red heart mug", "red heart cup", "garden chair", "garden table"],
                "category": ["kitchen", "kitchen", "garden", "garden"],
                "price": [5.0, 4.0, 40.0, 90.0],
            }
        )
    )


def interactions(**kwargs: object) -> Interactions:
    options = {"weights": InteractionWeights(binary=True), "as_of": DAY + pd.Timedelta(days=10)}
    options.update(kwargs)
    return build_interactions(events(), **options)  # type: ignore[arg-type]
