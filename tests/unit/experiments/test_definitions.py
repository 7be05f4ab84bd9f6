"""Experiment definitions: A/B, multivariate, bandit; every problem reported at once."""

from __future__ import annotations

import pytest

from personify.errors import InvalidInput
from personify.experiments.definitions import check_experiment, compile_experiment


def test_an_ab_test_compiles_with_equal_weights_and_the_first_variant_as_control() -> None:
    exp = compile_experiment(
        "hero",
        {
            "placement": "home_hero",
            "status": "running",
            "variants": [{"key": "control", "content": "a"}, {"key": "new", "content": "b"}],
        },
    )
    assert exp.control.key == "control"
    assert exp.weights == (0.5, 0.5)
    assert exp.spec.hash_version == 2


def test_missing_weights_share_what_is_left() -> None:
    exp = compile_experiment(
        "hero",
        {
            "placement": "p",
            "variants": [
                {"key": "a", "content": "x", "weight": 0.5},
                {"key": "b", "content": "y"},
                {"key": "c", "policy": "ranking"},
            ],
        },
    )
    assert exp.weights == pytest.approx((0.5, 0.25, 0.25))


def test_multivariate_expands_every_combination() -> None:
    exp = compile_experiment(
        "mvt",
        {
            "placement": "p",
            "type": "multivariate",
            "factors": {"headline": ["short", "long"], "image": ["red", "blue"]},
            "content": "hero_{headline}_{image}",
        },
    )
    assert [v.content for v in exp.variants] == [
        "hero_short_red",
        "hero_short_blue",
        "hero_long_red",
        "hero_long_blue",
    ]
    assert exp.variants[0].key == "headline=short|image=red"


def test_every_problem_is_reported_with_its_field() -> None:
    problems = check_experiment(
        "bad",
        {
            "type": "bandit",
            "status": "shipped",
            "algorithm": "softmax",
            "variants": [{"key": "a", "content": "x"}, {"key": "a", "policy": "rules"}],
            "coverage": 2,
            "namespace": ["n", 0.6, 0.2],
            "condition": {"age": {"$gtx": 1}},
            "colour": "red",
        },
    )
    fields = {p.field for p in problems}
    assert {
        "placement",
        "shipped",
        "algorithm",
        "coverage",
        "namespace",
        "colour",
        "variants",
    } <= fields
    assert any(f.startswith("condition") for f in fields)
    with pytest.raises(InvalidInput) as caught:
        compile_experiment("bad", {"placement": "p", "variants": [{"key": "only", "content": "x"}]})
    assert caught.value.hint


def test_a_variant_needs_exactly_one_of_content_or_policy() -> None:
    problems = check_experiment(
        "v",
        {"placement": "p", "variants": [{"key": "a"}, {"key": "b", "content": "x", "policy": "y"}]},
    )
    assert [p.field for p in problems] == ["variants[0]", "variants[1]"]
