"""Session fold-in and the recent-event filter behind served recommendations (recs/session.py)."""

from __future__ import annotations

import pytest
from tests.unit.recs import tiny

from personify.recs.data import InteractionWeights
from personify.recs.session import fold_in, recent_events


def test_fold_in_adds_session_events_to_a_known_history() -> None:
    data = tiny.interactions()
    recent = [
        ("c", "view", "m1"),
        ("a", "purchase", "o9"),
        ("a", "purchase", "o9"),  # two lines of one order count once
        ("zz", "view", "m2"),  # unknown to the model: skipped
    ]
    query = fold_in(data, 0, recent, InteractionWeights(binary=True), segment="FR")
    assert query.history.toarray().tolist() == [[1, 1, 1, 0]]
    assert query.purchases.toarray().tolist() == [[3, 1, 0, 0]]
    assert query.recency[0, 0] == 1 and query.recency[0, 2] == 1
    assert query.recency[0, 1] == pytest.approx(11.0)  # untouched: still 10 days + 1
    assert query.folded.tolist() == [True] and query.segments == ["FR"]


def test_fold_in_weights_events_by_kind_for_weighted_models() -> None:
    data = tiny.interactions()
    weights = InteractionWeights(view=1, add_to_cart=4, purchase=10)
    query = fold_in(data, -1, [("d", "view", "x"), ("d", "add_to_cart", "y")], weights)
    assert query.history.toarray().tolist() == [[0, 0, 0, 5]]
    assert query.users.tolist() == [-1] and query.purchases.nnz == 0


def test_without_recent_events_the_training_row_is_used_unchanged() -> None:
    data = tiny.interactions()
    query = fold_in(data, 2, [], InteractionWeights(binary=True))
    assert query.history.toarray().tolist() == [[0, 1, 1, 1]]
    assert not query.folded.any()


def test_recent_events_keeps_what_came_after_the_training_window() -> None:
    rows = [
        {
            "profile_id": "p",
            "event": "Product Viewed",
            "timestamp": "2024-05-01T12:00:00.000000Z",
            "properties": {"product_id": "a"},
        },
        {
            "profile_id": "p",
            "event": "Order Completed",
            "timestamp": "2024-05-01T12:05:00Z",
            "properties": {"order_id": "o1", "products": [{"sku": "b"}]},
        },
        {
            "profile_id": "p",
            "event": "Product Viewed",
            "timestamp": "2024-04-01T00:00:00Z",
            "properties": {"product_id": "old"},
        },
        {"profile_id": "p", "event": "Signed Up", "timestamp": "2024-05-01T12:06:00Z"},
    ]
    found = recent_events(rows, "2024-04-30T00:00:00.000000Z")
    # the view has no message id, so it is its own "order" (named by its row)
    assert found == [("a", "view", "row-0"), ("b", "purchase", "o1")]
