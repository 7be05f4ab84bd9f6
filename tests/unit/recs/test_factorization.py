"""ALS and BPR through implicit: taste blocks are recovered, seeds fix results, fold-in works.

pytest turns warnings into errors, so these tests also prove that implicit's OpenBLAS
thread warning is avoided (every build and fit runs under threadpool_limits).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from tests.unit.recs.blocks import block_data

from personify.errors import InvalidInput
from personify.recs.base import empty_query
from personify.recs.factorization import ALS, BPR


@pytest.mark.parametrize("model", [ALS(factors=4, iterations=10), BPR(factors=4, iterations=200)])
def test_known_users_get_items_of_their_own_taste(model: ALS | BPR) -> None:
    model.fit(block_data())
    for user in ("x-user0", "y-user3"):
        owned = model.data_.matrix[model.data_.user_index[user]].indices
        found = model.recommend(user, k=1, exclude=model.data_.items[owned].tolist())
        assert found[0].item[0] == user[0], (user, found)


@pytest.mark.parametrize("make", [lambda: ALS(factors=4), lambda: BPR(factors=4, iterations=50)])
def test_same_seed_same_factors(make: object) -> None:
    first = make().fit(block_data())  # type: ignore[operator]
    second = make().fit(block_data())  # type: ignore[operator]
    np.testing.assert_allclose(first.item_factors_, second.item_factors_)


@pytest.mark.parametrize("model", [ALS(factors=4, iterations=10), BPR(factors=4, iterations=200)])
def test_fold_in_places_a_new_history_in_its_taste(model: ALS | BPR) -> None:
    model.fit(block_data())
    data = model.data_
    query = empty_query(data.n_items)
    cols = [data.item_index["y0"], data.item_index["y1"]]
    query.history = sp.csr_matrix((np.ones(2), ([0, 0], cols)), shape=(1, data.n_items))
    scores = model.score(query)[0]
    y_items = [data.item_index[f"y{i}"] for i in range(2, 5)]
    x_items = [data.item_index[f"x{i}"] for i in range(5)]
    assert scores[y_items].min() > scores[x_items].max()


def test_no_history_means_no_taste_scores() -> None:
    model = ALS(factors=4).fit(block_data())
    assert not model.score(empty_query(model.data_.n_items)).any()


def test_similar_items_stay_in_the_block() -> None:
    model = ALS(factors=4, iterations=10).fit(block_data())
    assert all(s.item.startswith("x") for s in model.similar_items("x2", k=3))


def test_bad_factorization_parameters_are_named() -> None:
    with pytest.raises(InvalidInput) as err:
        ALS(factors=0, iterations=0, regularization=-1).fit(block_data())
    assert {p.field for p in err.value.problems} == {"factors", "iterations", "regularization"}
