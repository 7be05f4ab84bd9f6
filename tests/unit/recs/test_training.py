"""Training the hybrid from event rows: tuning on the end of the data, then the full fit."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.unit.recs import storefront, tiny

from personify.errors import InvalidInput
from personify.recs import publish
from personify.recs.sources import product_events
from personify.recs.training import train_hybrid, truth_matrix


def test_product_events_read_views_carts_and_order_lines() -> None:
    rows = [
        {
            "profile_id": "p1",
            "event": "Product Viewed",
            "timestamp": "2024-01-01T00:00:00Z",
            "message_id": "m1",
            "payload": '{"properties": {"sku": "s1", "name": "Mug"}}',
        },
        {
            "profile_id": "p1",
            "event": "Product Added",
            "timestamp": "2024-01-01T00:01:00Z",
            "properties": {"product_id": "s2", "price": 3},
        },
        {
            "profile_id": "p1",
            "event": "Order Completed",
            "timestamp": "2024-01-01T00:02:00Z",
            "properties": {"order_id": "o1", "products": [{"product_id": "s1"}, {"sku": "s2"}, {}]},
        },
        {"profile_id": "p1", "event": "Signed Up", "timestamp": "2024-01-01T00:03:00Z"},
    ]
    frame, items = product_events(rows)
    assert frame[["item_id", "kind", "order_id"]].values.tolist() == [
        ["s1", "view", "m1"],
        ["s2", "add_to_cart", "row-1"],
        ["s1", "purchase", "o1"],
        ["s2", "purchase", "o1"],
    ]
    assert items.set_index("item_id").loc["s1", "title"] == "Mug"
    assert items.set_index("item_id").loc["s2", "price"] == 3.0


def test_truth_matrix_keeps_known_users_and_items_only() -> None:
    data = tiny.interactions()
    later = pd.DataFrame(
        {
            "user_id": ["u1", "u9", "u2", "u2"],
            "item_id": ["d", "a", "zz", "b"],
            "kind": ["purchase", "purchase", "purchase", "view"],
            "timestamp": pd.Timestamp("2024-04-01"),
        }
    )
    truth = truth_matrix(data, later)
    assert truth.toarray().tolist() == [[0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_hybrid_is_tuned_on_the_end_of_the_data_and_refitted_on_all() -> None:
    data = publish.from_rows(storefront.rows())
    trained = train_hybrid(
        data.events, catalogue=data.catalogue, weights=data.weights, validation_days=30
    )
    assert trained.tuning is not None and trained.tuning.validation_users > 0
    # the validation lists beat chance by far: every user re-buys a favourite item
    assert trained.tuning.validation_ndcg > 0.3
    assert trained.model.weights == trained.tuning.weights
    model_data = trained.model.data_
    assert model_data.n_users == 60 and model_data.n_items == 20
    assert model_data.as_of == pd.Timestamp(data.events["timestamp"].max()).tz_localize(None)


def test_without_purchases_to_validate_the_default_weights_are_used() -> None:
    events = tiny.events()
    events["timestamp"] = pd.Timestamp("2024-01-01")  # nothing before the validation cut
    trained = train_hybrid(events, validation_days=30)
    assert trained.tuning is None and trained.model.weights["bought_count"] > 0


def test_bad_validation_window_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        train_hybrid(tiny.events(), validation_days=0)
    assert err.value.problems[0].field == "validation_days"


def test_event_rows_without_products_are_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        publish.from_rows([{"profile_id": "p", "event": "Signed Up", "timestamp": "2024-01-01"}])
    assert "--online-retail" in (err.value.hint or "")
