"""Item-kNN (cosine, co-occurrence, pruning) and EASE's closed form on hand-sized data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.unit.recs import tiny

from personify.errors import InvalidInput
from personify.recs.data import InteractionWeights, build_interactions
from personify.recs.neighbours import EASE, ItemKNN


def test_cosine_knn_scores_are_cosines_of_item_columns() -> None:
    model = ItemKNN(neighbours=10).fit(tiny.interactions())
    scores = model.score(model.data_.query([3]))[0]  # u4 bought only c
    # cos(c, a) = 1/sqrt(3*2), cos(c, b) = 1/sqrt(6), cos(c, d) = 1/sqrt(3*1)
    assert scores.tolist() == pytest.approx([1 / np.sqrt(6), 1 / np.sqrt(6), 0, 1 / np.sqrt(3)])
    assert [s.item for s in model.recommend("u4", k=3)] == ["d", "a", "b"]


def test_knn_keeps_only_the_nearest_neighbours_of_each_item() -> None:
    model = ItemKNN(neighbours=1).fit(tiny.interactions())
    # nearest neighbour of a: b (0.5); of b: d (0.71); of c: d (0.58); of d: b (0.71).
    # An item scores only through its kept neighbour: for u1 (a, b), a gets cos(a, b)
    # and d gets cos(d, b); b and c keep d, which u1 never bought.
    scores = model.score(model.data_.query([0]))[0]
    assert scores.tolist() == pytest.approx([0.5, 0, 0, 1 / np.sqrt(2)])


def test_cooccurrence_knn_counts_shared_users() -> None:
    model = ItemKNN(similarity="cooccurrence").fit(tiny.interactions())
    scores = model.score(model.data_.query([0]))[0]  # u1: a, b
    # c shares u2 with a and u3 with b; d shares u3 with b
    assert scores.tolist() == pytest.approx([1, 1, 2, 1])


def test_knn_similar_items() -> None:
    model = ItemKNN().fit(tiny.interactions())
    found = model.similar_items("b", k=2)
    assert [s.item for s in found] == ["d", "a"]
    assert found[0].score == pytest.approx(1 / np.sqrt(2))


def test_bad_knn_parameters_are_named() -> None:
    with pytest.raises(InvalidInput) as err:
        ItemKNN(neighbours=0, similarity="jaccard").fit(tiny.interactions())  # type: ignore[arg-type]
    assert {p.field for p in err.value.problems} == {"neighbours", "similarity"}


def two_item_data() -> object:
    # a bought by u1, u2, u3; b by u1 only: G = [[3, 1], [1, 1]]
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u3"],
            "item_id": ["a", "b", "a", "a"],
            "kind": "purchase",
            "timestamp": pd.Timestamp("2024-01-01"),
        }
    )
    return build_interactions(frame, weights=InteractionWeights(binary=True))


def test_ease_matches_the_two_item_closed_form() -> None:
    model = EASE(l2=1.0).fit(two_item_data())  # type: ignore[arg-type]
    # B_ab = g_ab / (g_aa + l2) = 1/4, B_ba = g_ab / (g_bb + l2) = 1/2, zero diagonal
    np.testing.assert_allclose(model.weights_, [[0, 0.25], [0.5, 0]], rtol=1e-6)
    assert model.score(model.data_.query([1]))[0].tolist() == pytest.approx([0, 0.25])  # u2: a
    assert [s.item for s in model.similar_items("b", 1)] == ["a"]


def test_ease_needs_positive_l2() -> None:
    with pytest.raises(InvalidInput):
        EASE(l2=0).fit(tiny.interactions())
