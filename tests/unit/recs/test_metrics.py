"""Ranking metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from personify.errors import InvalidInput
from personify.recs.metrics import coverage, novelty, per_user, ranking_metrics


def truth(rows: list[list[int]], n_items: int = 5) -> sp.csr_matrix:
    out = np.zeros((len(rows), n_items))
    for r, items in enumerate(rows):
        out[r, items] = 1
    return sp.csr_matrix(out)


def test_one_hit_at_rank_two_of_two_relevant() -> None:
    found = per_user(np.array([[0, 1, 2]]), truth([[1, 3]]), k=3)
    g2 = 1 / np.log2(3)
    assert found["precision"][0] == pytest.approx(1 / 3)
    assert found["recall"][0] == pytest.approx(1 / 2)
    assert found["ndcg"][0] == pytest.approx(g2 / (1 + g2))
    assert found["map"][0] == pytest.approx((1 / 2) / 2)
    assert found["hit_rate"][0] == 1


def test_perfect_and_empty_lists_average() -> None:
    found = ranking_metrics(np.array([[3, 2, 1], [0, 1, 2]]), truth([[3], [4]]), k=3)
    assert found["ndcg"] == pytest.approx(0.5)
    assert found["map"] == pytest.approx(0.5)
    assert found["hit_rate"] == pytest.approx(0.5)
    assert found["recall"] == pytest.approx(0.5)


def test_ideal_dcg_is_capped_at_k() -> None:
    # five relevant items, k = 2, both slots hit: NDCG and MAP are 1
    found = per_user(np.array([[0, 1]]), truth([[0, 1, 2, 3, 4]]), k=2)
    assert found["ndcg"][0] == pytest.approx(1.0)
    assert found["map"][0] == pytest.approx(1.0)
    assert found["recall"][0] == pytest.approx(2 / 5)


def test_users_without_relevant_items_are_refused() -> None:
    with pytest.raises(InvalidInput):
        per_user(np.array([[0]]), truth([[]]), k=1)


def test_coverage_and_novelty() -> None:
    top = np.array([[0, 1], [0, 2]])
    assert coverage(top, 8) == pytest.approx(3 / 8)
    # shares of 4 users: item 0 -> 4/4, 1 -> 2/4, 2 -> never (counts as 1/4)
    expected = np.mean([0, 1, 0, 2])
    assert novelty(top, np.array([4.0, 2.0, 0.0]), 4) == pytest.approx(expected)
