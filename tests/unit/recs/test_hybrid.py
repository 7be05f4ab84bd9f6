"""The hybrid's blend, fallbacks and weight tuning, with hand-computed scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from tests.unit.recs import tiny

from personify.errors import InvalidInput
from personify.recs.base import empty_query
from personify.recs.content import ContentBased
from personify.recs.hybrid import Hybrid, tune_weights
from personify.recs.neighbours import ItemKNN
from personify.recs.popularity import BuyAgain, Popularity

# Popularity scores on the tiny data: buyers (2, 2, 3, 1) plus half their share as a
# tie-breaker, over the maximum: (2 + 1/3, 2 + 1/3, 3 + 1/2, 1 + 1/6) / 3.5
POP = np.array([7 / 3, 7 / 3, 3.5, 7 / 6]) / 3.5


def blend(**weights: float) -> Hybrid:
    sources = {"bought_count": BuyAgain("count"), "popular": Popularity(), "knn": ItemKNN()}
    return Hybrid(sources, weights)


def test_absolute_sources_are_blended_as_they_are() -> None:
    model = blend(bought_count=1.0, popular=0.5).fit(tiny.interactions())
    scores = model.score(model.data_.query([0]))[0]  # u1: a twice, b once
    expected = np.array([np.log(3), np.log(2), 0, 0]) + 0.5 * POP
    assert scores.tolist() == pytest.approx(expected.tolist())
    assert [s.item for s in model.recommend("u1", 4)] == ["a", "b", "c", "d"]


def test_relative_sources_are_scaled_per_user() -> None:
    model = blend(knn=1.0).fit(tiny.interactions())
    scores = model.score(model.data_.query([3]))[0]  # u4: c; cosines a, b 1/sqrt6, d 1/sqrt3
    assert scores.max() == pytest.approx(1.0)
    assert scores[3] == pytest.approx(1.0) and scores[0] == pytest.approx(np.sqrt(3 / 6))


def test_reasons_name_the_strongest_source() -> None:
    model = blend(bought_count=1.0, popular=0.5).fit(tiny.interactions())
    found = model.recommend("u1", 3)
    assert [s.reason for s in found] == ["bought before", "bought before", "popular"]


def test_cold_users_get_the_fallback() -> None:
    data = tiny.interactions(segments={"u1": "FR", "u2": "FR"})
    model = Hybrid(
        {"bought_count": BuyAgain()},
        {"bought_count": 1.0},
        fallback=Popularity(by_segment=True, min_segment_users=2),
    ).fit(data)
    assert [s.item for s in model.recommend(None, 4)] == ["c", "a", "b", "d"]
    query = empty_query(data.n_items)
    query.segments = ["FR"]
    found = model.recommend(None, 1, query=query)
    assert found[0].item == "a" and found[0].reason == "popular in FR"


def test_similar_items_use_content_for_cold_items() -> None:
    cat = tiny.catalogue()
    extra = pd.DataFrame({"item_id": ["e"], "title": ["garden chair cushion"]})
    catalogue = type(cat).from_frame(pd.concat([cat.frame.reset_index(), extra]))
    data = tiny.interactions(catalogue=catalogue)
    model = Hybrid({"knn": ItemKNN(), "content": ContentBased(min_df=1)}, {"knn": 1.0}).fit(data)
    cold = model.similar_items("e", 1)
    assert cold[0].item == "c" and cold[0].reason == "similar description"
    warm = model.similar_items("b", 1)
    assert warm[0].item == "d" and warm[0].reason == "bought together"


def test_invalid_weights_are_named() -> None:
    with pytest.raises(InvalidInput) as err:
        blend(nope=1.0, popular=-1.0).fit(tiny.interactions())
    assert {p.field for p in err.value.problems} == {"weights.nope", "weights.popular"}
    with pytest.raises(InvalidInput):
        blend(popular=0.0).fit(tiny.interactions())


def test_tuning_finds_buy_again_for_repeat_buyers() -> None:
    train = tiny.interactions()
    # after the cut u1 buys a again, u3 buys d again
    truth = sp.csr_matrix((np.ones(2), ([0, 2], [0, 3])), shape=(train.n_users, train.n_items))
    hybrid = Hybrid({"bought_count": BuyAgain(), "popular": Popularity()}, {"popular": 1.0})
    found = tune_weights(hybrid, train, truth, k=4, grid=(0.0, 1.0))
    # popularity alone: a at rank 2 for u1 (1/log2 3), d at rank 4 for u3 (1/log2 5);
    # with buy-again: a first for u1 (1), d third among u3's own items (1/log2 4 = 0.5)
    assert found.weights.get("bought_count", 0) > 0
    assert found.validation_ndcg == pytest.approx(0.75)
    assert found.validation_users == 2


def test_tuning_without_validation_users_is_refused() -> None:
    train = tiny.interactions()
    empty = sp.csr_matrix((train.n_users, train.n_items))
    with pytest.raises(InvalidInput):
        tune_weights(blend(popular=1.0), train, empty)
