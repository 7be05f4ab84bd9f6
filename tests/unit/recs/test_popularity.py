"""Popularity (global, windowed, per segment), buy-again signals and the baseline rule."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.recs import tiny

from personify.errors import InvalidInput, NotFound
from personify.recs.popularity import BuyAgain, BuyAgainThenPopular, Popularity


def items(found: list) -> list[str]:  # type: ignore[type-arg]
    return [s.item for s in found]


def test_global_popularity_ranks_by_distinct_users_ties_by_id() -> None:
    model = Popularity().fit(tiny.interactions())
    # buyers: c 3, a 2, b 2, d 1
    assert items(model.recommend("u1", k=4)) == ["c", "a", "b", "d"]
    assert items(model.recommend(None, k=2)) == ["c", "a"]


def test_recent_window_counts_only_recent_users() -> None:
    # as_of day 10; a 2-day window keeps only u3's order of d on day 9
    model = Popularity(window_days=2).fit(tiny.interactions())
    assert items(model.recommend(None, k=1)) == ["d"]
    assert model.recommend(None, k=1)[0].reason == "popular recently"


def test_segment_popularity_applies_to_big_enough_segments() -> None:
    data = tiny.interactions(segments={"u1": "FR", "u2": "FR", "u3": "UK", "u4": "UK"})
    model = Popularity(by_segment=True, min_segment_users=2).fit(data)
    # FR bought a twice, b and c once: a first; ties b, c broken by global popularity (c)
    assert items(model.recommend("u1", k=3)) == ["a", "c", "b"]
    assert model.recommend("u1", k=1)[0].reason == "popular in FR"
    assert items(Popularity(by_segment=True, min_segment_users=3).fit(data).recommend("u1", 1)) == [
        "c"
    ]


def test_exclusions_are_never_recommended() -> None:
    model = Popularity().fit(tiny.interactions())
    assert items(model.recommend(None, k=4, exclude=["c", "unknown"])) == ["a", "b", "d"]


def test_bad_window_and_k_are_refused() -> None:
    with pytest.raises(InvalidInput):
        Popularity(window_days=0).fit(tiny.interactions())
    with pytest.raises(InvalidInput) as err:
        Popularity().fit(tiny.interactions()).recommend(None, k=0)
    assert err.value.problems[0].field == "k"


def test_popularity_has_no_item_similarity() -> None:
    model = Popularity().fit(tiny.interactions())
    with pytest.raises(InvalidInput):
        model.similar_items("a")
    with pytest.raises(NotFound):
        model.similar_items("zz")


def test_buy_again_count_is_log_of_orders() -> None:
    model = BuyAgain("count").fit(tiny.interactions())
    scores = model.score(model.data_.query([0]))[0]
    assert scores.tolist() == pytest.approx([np.log(3), np.log(2), 0, 0])


def test_buy_again_recency_is_inverse_days() -> None:
    model = BuyAgain("recency").fit(tiny.interactions())
    scores = model.score(model.data_.query([2]))[0]
    # u3: b and c on day 2 (9 days), d on day 9 (2 days)
    assert scores.tolist() == pytest.approx([0, 1 / 9, 1 / 9, 1 / 2])


def test_buy_again_repeat_rate_is_smoothed_share_of_repeat_buyers() -> None:
    model = BuyAgain("repeat_rate", prior_buyers=10).fit(tiny.interactions())
    # overall: 1 repeat (u1, a) over 8 buyer-item pairs = 0.125
    assert model.repeat_rate_[0] == pytest.approx((1 + 10 * 0.125) / (2 + 10))
    assert model.repeat_rate_[1] == pytest.approx((0 + 10 * 0.125) / (2 + 10))
    scores = model.score(model.data_.query([0]))[0]
    assert scores[2] == 0 and scores[0] > scores[1] > 0


def test_unknown_buy_again_signal_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        BuyAgain("often").fit(tiny.interactions())  # type: ignore[arg-type]
    assert err.value.problems[0].field == "signal"


def test_buy_again_then_popular_orders_by_orders_then_popularity() -> None:
    model = BuyAgainThenPopular().fit(tiny.interactions())
    found = model.recommend("u1", k=4)
    assert items(found) == ["a", "b", "c", "d"]  # a (2 orders), b (1), then c, d by buyers
    assert [s.reason for s in found] == ["bought before", "bought before", "popular", "popular"]
    # u3 bought b, c, d once each: popularity orders them (c 3, b 2, d 1)
    assert items(model.recommend("u3", k=4)) == ["c", "b", "d", "a"]
