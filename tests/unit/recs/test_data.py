"""Event frames into interaction matrices: weights, decay, orders, recency and validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.unit.recs import tiny

from personify.errors import InvalidInput
from personify.recs.data import Catalogue, InteractionWeights, build_interactions


def test_binary_matrix_and_id_maps() -> None:
    data = tiny.interactions()
    assert data.users.tolist() == ["u1", "u2", "u3", "u4"]
    assert data.items.tolist() == ["a", "b", "c", "d"]
    assert data.matrix.toarray().tolist() == [
        [1, 1, 0, 0],
        [1, 0, 1, 0],
        [0, 1, 1, 1],
        [0, 0, 1, 0],
    ]
    assert data.user_index["u3"] == 2 and data.item_index["d"] == 3


def test_purchases_count_distinct_orders() -> None:
    data = tiny.interactions()
    assert data.purchases.toarray()[0].tolist() == [2, 1, 0, 0]  # a in o1 and o2


def test_recency_is_one_plus_days_since_the_last_event() -> None:
    data = tiny.interactions()
    # as_of is day 10: u1 last bought a on day 5, u3 bought d on day 9
    assert data.recency[0, 0] == pytest.approx(6.0)
    assert data.recency[2, 3] == pytest.approx(2.0)
    assert data.recency[0, 2] == 0  # never touched


def test_kind_weights_add_up_and_decay_halves_per_half_life() -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["u", "u", "u"],
            "item_id": ["x", "x", "y"],
            "kind": ["view", "purchase", "add_to_cart"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-11"]),
        }
    )
    plain = build_interactions(
        frame, weights=InteractionWeights(view=1, add_to_cart=4, purchase=10)
    )
    assert plain.matrix.toarray().tolist() == [[11.0, 4.0]]
    decayed = build_interactions(frame, weights=InteractionWeights(half_life_days=10))
    # the view is 10 days older than as_of (the last event): half its weight
    assert decayed.matrix.toarray()[0].tolist() == pytest.approx([10.5, 4.0])


def test_catalogue_items_without_events_become_columns() -> None:
    cat = Catalogue.from_frame(
        pd.DataFrame({"item_id": ["a", "b", "c", "d", "new"], "title": list("abcde")})
    )
    data = tiny.interactions(catalogue=cat)
    assert data.items.tolist() == ["a", "b", "c", "d", "new"]
    assert data.matrix[:, 4].nnz == 0


def test_fixed_item_universe_drops_other_items() -> None:
    data = tiny.interactions(items=["c", "a"])
    assert data.items.tolist() == ["c", "a"]
    assert data.matrix.toarray()[:, 0].tolist() == [0, 1, 1, 1]


def test_segments_follow_the_user_rows() -> None:
    data = tiny.interactions(segments={"u2": "FR"})
    assert data.segments.tolist() == [None, "FR", None, None]


def test_missing_columns_are_named() -> None:
    with pytest.raises(InvalidInput) as err:
        build_interactions(pd.DataFrame({"user_id": ["u"], "item_id": ["x"]}))
    assert {p.field for p in err.value.problems} == {"kind", "timestamp"}


def test_bad_kinds_and_empty_ids_are_reported() -> None:
    frame = tiny.events()
    frame.loc[0, "kind"] = "liked"
    frame.loc[1, "user_id"] = None
    with pytest.raises(InvalidInput) as err:
        build_interactions(frame)
    fields = {p.field for p in err.value.problems}
    assert fields == {"kind", "user_id"}
    assert err.value.hint


def test_negative_weights_are_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        build_interactions(tiny.events(), weights=InteractionWeights(view=-1, half_life_days=0))
    assert {p.field for p in err.value.problems} == {"view", "half_life_days"}


def test_catalogue_refuses_duplicate_ids_and_negative_prices() -> None:
    with pytest.raises(InvalidInput) as err:
        Catalogue.from_frame(pd.DataFrame({"item_id": ["a", "a"], "price": [1.0, -2.0]}))
    assert {p.field for p in err.value.problems} == {"item_id", "price"}


def test_catalogue_documents_include_attributes() -> None:
    cat = Catalogue.from_frame(
        pd.DataFrame({"item_id": ["a"], "title": ["mug"], "attributes": [{"colour": "red"}]})
    )
    assert cat.documents(["a", "missing"]) == ["mug colour red", ""]
    assert cat.describe("a")["title"] == "mug" and cat.describe("zz")["title"] is None


def test_query_rows_carry_history_and_segments() -> None:
    data = tiny.interactions(segments={"u3": "UK"})
    query = data.query(np.array([2]))
    assert query.history.toarray().tolist() == [[0, 1, 1, 1]]
    assert query.segments == ["UK"] and not query.folded.any()
