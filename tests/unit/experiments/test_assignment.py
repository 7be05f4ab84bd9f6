"""GrowthBook-compatible assignment: hashing details, validation, targeting and stickiness."""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy import stats

from personify.errors import InvalidInput
from personify.experiments.assignment import (
    AssignmentContext,
    ExperimentSpec,
    query_string_override,
    run,
)
from personify.experiments.hashing import bucket_ranges, fnv1a32, gb_hash, seed_state
from personify.experiments.sticky import MemoryStickyStore, SqliteStickyStore


def _utf16_reference(text: str) -> int:
    """FNV-1a over UTF-16 code units, written the slow, obvious way."""
    h = 0x811C9DC5
    raw = text.encode("utf-16-le")
    for i in range(0, len(raw), 2):
        h ^= raw[i] | (raw[i + 1] << 8)
        h = (h * 0x01000193) % 2**32
    return h


@pytest.mark.parametrize("text", ["", "a", "user_42", "Zoë", "日本語", "emoji 😀 pair", "\u0100x"])
def test_fnv_hashes_utf16_code_units_not_utf8_bytes(text: str) -> None:
    assert fnv1a32(text) == _utf16_reference(text)


def test_a_non_latin_value_hashes_differently_from_its_utf8_bytes() -> None:
    utf8_as_latin = "日本".encode().decode("latin-1")
    assert fnv1a32("日本") != fnv1a32(utf8_as_latin)


def test_hashing_from_a_cached_seed_state_equals_hashing_the_concatenation() -> None:
    assert fnv1a32("u1", seed_state("exp")) == fnv1a32("expu1")


def test_unknown_hash_version_gives_none() -> None:
    assert gb_hash("s", "v", 3) is None


def test_assignment_splits_traffic_by_weight() -> None:
    spec = ExperimentSpec.from_growthbook(
        {"key": "split", "variations": [0, 1, 2], "weights": [0.2, 0.3, 0.5], "hashVersion": 2}
    )
    counts = [0, 0, 0]
    for i in range(30_000):
        counts[run(spec, AssignmentContext(attributes={"id": f"u{i}"})).variation_id] += 1
    assert stats.chisquare(counts, [6000, 9000, 15000]).pvalue > 0.001


def test_coverage_keeps_the_same_users_when_it_grows() -> None:
    """Raising coverage only adds users: nobody already in switches variation."""
    small = ExperimentSpec.from_growthbook({"key": "grow", "variations": [0, 1], "coverage": 0.2})
    large = ExperimentSpec.from_growthbook({"key": "grow", "variations": [0, 1], "coverage": 0.8})
    for i in range(2000):
        ctx = AssignmentContext(attributes={"id": f"u{i}"})
        before = run(small, ctx)
        if before.in_experiment:
            assert run(large, ctx).variation_id == before.variation_id


def test_namespaces_make_experiments_mutually_exclusive() -> None:
    first = ExperimentSpec.from_growthbook(
        {"key": "a", "variations": [0, 1], "namespace": ["hero", 0, 0.5]}
    )
    second = ExperimentSpec.from_growthbook(
        {"key": "b", "variations": [0, 1], "namespace": ["hero", 0.5, 1]}
    )
    both = 0
    either = 0
    for i in range(2000):
        ctx = AssignmentContext(attributes={"id": f"u{i}"})
        in_a, in_b = run(first, ctx).in_experiment, run(second, ctx).in_experiment
        both += in_a and in_b
        either += in_a or in_b
    assert both == 0
    assert either == 2000


def test_hash_attribute_can_be_any_trait() -> None:
    spec = ExperimentSpec.from_growthbook(
        {"key": "company", "variations": [0, 1], "hashAttribute": "company"}
    )
    one = run(spec, AssignmentContext(attributes={"id": "u1", "company": "acme"}))
    two = run(spec, AssignmentContext(attributes={"id": "u2", "company": "acme"}))
    assert one.hash_value == "acme"
    assert one.variation_id == two.variation_id


def test_fallback_attribute_is_used_for_anonymous_visitors() -> None:
    spec = ExperimentSpec.from_growthbook(
        {
            "key": "f",
            "variations": [0, 1],
            "hashAttribute": "user_id",
            "fallbackAttribute": "anonymous_id",
        }
    )
    result = run(spec, AssignmentContext(attributes={"anonymous_id": "a-1"}))
    assert result.in_experiment
    assert (result.hash_attribute, result.hash_value) == ("anonymous_id", "a-1")


def test_targeting_uses_the_segment_condition_language() -> None:
    spec = ExperimentSpec.from_growthbook(
        {"key": "t", "variations": [0, 1], "condition": {"traits.plan": {"$in": ["pro", "team"]}}}
    )
    assert run(
        spec, AssignmentContext(attributes={"id": "1", "traits": {"plan": "pro"}})
    ).in_experiment
    assert not run(
        spec, AssignmentContext(attributes={"id": "1", "traits": {"plan": "free"}})
    ).in_experiment


def test_forced_variation_is_not_a_hashed_assignment() -> None:
    spec = ExperimentSpec.from_growthbook({"key": "qa", "variations": ["a", "b"]})
    result = run(spec, AssignmentContext(attributes={"id": "1"}, forced_variations={"qa": 1}))
    assert (result.value, result.in_experiment, result.hash_used) == ("b", True, False)


def test_query_string_override_reads_only_valid_indexes() -> None:
    assert query_string_override("exp", "https://x.test/?exp=1&y=2", 2) == 1
    assert query_string_override("exp", "https://x.test/?exp=5", 2) is None
    assert query_string_override("exp", "https://x.test/?exp=abc", 2) is None
    assert query_string_override("exp", "https://x.test/?other=1", 2) is None


def test_bad_experiment_definitions_are_refused_with_every_problem() -> None:
    with pytest.raises(InvalidInput) as caught:
        ExperimentSpec.from_growthbook(
            {
                "key": "",
                "variations": "ab",
                "weights": ["x"],
                "namespace": ["n", 0],
                "coverage": True,
            }
        )
    fields = {p.field for p in caught.value.problems}
    assert {"key", "variations", "weights", "namespace", "coverage"} <= fields
    assert caught.value.hint


def test_bad_weights_fall_back_to_an_equal_split_like_growthbook() -> None:
    assert bucket_ranges(2, 1.0, [0.9, 0.9]) == [(0.0, 0.5), (0.5, 1.0)]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_sticky_assignment_survives_an_anonymous_visitor_logging_in(
    backend: str, tmp_path: Path
) -> None:
    store = (
        MemoryStickyStore()
        if backend == "memory"
        else SqliteStickyStore(tmp_path / "sticky.sqlite")
    )
    spec = ExperimentSpec.from_growthbook(
        {
            "key": "login",
            "variations": [0, 1],
            "hashAttribute": "user_id",
            "fallbackAttribute": "anonymous_id",
        }
    )
    sticky = ("user_id", "anonymous_id")
    # find a visitor whose anonymous and user ids hash to different variations
    for i in range(200):
        anon, user = f"anon-{i}", f"user-{i}"
        plain_anon = run(spec, AssignmentContext(attributes={"anonymous_id": anon}))
        plain_user = run(spec, AssignmentContext(attributes={"user_id": user}))
        if plain_anon.variation_id != plain_user.variation_id:
            break
    before = run(
        spec,
        AssignmentContext({"anonymous_id": anon}, sticky_store=store, sticky_attributes=sticky),
    )
    after = run(
        spec,
        AssignmentContext(
            {"anonymous_id": anon, "user_id": user}, sticky_store=store, sticky_attributes=sticky
        ),
    )
    later = run(
        spec, AssignmentContext({"user_id": user}, sticky_store=store, sticky_attributes=sticky)
    )

    assert before.variation_id == plain_anon.variation_id
    assert after.variation_id == before.variation_id and after.sticky_used
    assert later.variation_id == before.variation_id  # the user id now carries it
    if isinstance(store, SqliteStickyStore):
        store.close()


def test_sticky_store_keeps_the_first_assignment() -> None:
    store = MemoryStickyStore()
    store.remember([("id", "1")], "e__0", 1)
    store.remember([("id", "1")], "e__0", 0)
    assert store.lookup([("id", "1")], "e__0") == 1
    assert store.lookup([("id", "2")], "e__0") is None


def test_a_dotted_hash_attribute_reads_a_nested_trait() -> None:
    spec = ExperimentSpec.from_growthbook(
        {"key": "b2b", "variations": [0, 1], "hashAttribute": "traits.company"}
    )
    one = run(spec, AssignmentContext(attributes={"id": "u1", "traits": {"company": "acme"}}))
    two = run(spec, AssignmentContext(attributes={"id": "u2", "traits": {"company": "acme"}}))
    assert one.in_experiment and (one.hash_attribute, one.hash_value) == ("traits.company", "acme")
    assert one.variation_id == two.variation_id
    assert not run(spec, AssignmentContext(attributes={"id": "u3", "traits": {}})).in_experiment
