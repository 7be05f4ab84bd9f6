"""Content-based recommendations from catalogue text."""

from __future__ import annotations

import pytest
from tests.unit.recs import tiny

from personify.errors import InvalidInput
from personify.recs.content import ContentBased


def test_similar_items_share_words() -> None:
    model = ContentBased(min_df=1).fit(tiny.interactions(catalogue=tiny.catalogue()))
    # a "red heart mug" (kitchen) is closest to b "red heart cup" (kitchen)
    assert [s.item for s in model.similar_items("a", k=1)] == ["b"]
    assert [s.item for s in model.similar_items("c", k=1)] == ["d"]


def test_user_profile_is_the_sum_of_their_items() -> None:
    model = ContentBased(min_df=1).fit(tiny.interactions(catalogue=tiny.catalogue()))
    scores = model.score(model.data_.query([3]))[0]  # u4 bought c, a garden chair
    order = scores.argsort()[::-1].tolist()
    assert [model.data_.items[i] for i in order[:2]] == ["c", "d"]
    assert scores[0] == pytest.approx(0.0)  # nothing in common with the red heart mug


def test_content_needs_a_catalogue() -> None:
    with pytest.raises(InvalidInput) as err:
        ContentBased().fit(tiny.interactions())
    assert "catalogue" in err.value.message and err.value.hint
