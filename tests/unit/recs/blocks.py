"""Two tastes that never mix: whoever buys x-items never buys y-items, and vice versa."""

from __future__ import annotations

import pandas as pd

from personify.recs.data import Interactions, InteractionWeights, build_interactions


def block_events(users_per_group: int = 12) -> pd.DataFrame:
    rows = []
    for group in ("x", "y"):
        for u in range(users_per_group):
            for j in range(3):
                rows.append((f"{group}-user{u}", f"{group}{(u + j) % 5}", f"{group}{u}"))
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "order_id": [r[2] for r in rows],
            "kind": "purchase",
            "timestamp": pd.Timestamp("2024-01-01"),
        }
    )


def block_data() -> Interactions:
    return build_interactions(block_events(), weights=InteractionWeights(binary=True))
