"""Statistics: checked against scipy on raw data, closed forms and small simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from personify.errors import InvalidInput
from personify.experiments.stats import (
    Proportion,
    RatioStatistic,
    SampleMean,
    bayesian_test,
    benjamini_hochberg,
    cuped,
    holm,
    minimum_detectable_effect,
    power_of,
    sequential_test,
    srm_check,
    two_proportion_ztest,
    users_per_arm_for_proportion,
    welch_ttest,
)


def test_welch_absolute_test_matches_scipy_on_raw_data() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 400), rng.normal(10.4, 3, 300)
    ours = welch_ttest(SampleMean.of(a), SampleMean.of(b), kind="absolute")
    theirs = sps.ttest_ind(b, a, equal_var=False)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    low, high = theirs.confidence_interval(0.95)
    assert ours.ci == pytest.approx((low, high), rel=1e-9)


def test_one_sided_p_values_split_the_two_sided_one() -> None:
    a, b = SampleMean(100.0, 1100.0, 50), SampleMean(120.0, 1400.0, 50)
    two = welch_ttest(a, b).p_value
    greater = welch_ttest(a, b, alternative="greater").p_value
    less = welch_ttest(a, b, alternative="less").p_value
    assert greater + less == pytest.approx(1.0)
    assert min(greater, less) == pytest.approx(two / 2)


def test_relative_interval_covers_the_true_lift_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    covered = 0
    runs = 400
    for _ in range(runs):
        a = rng.random(2000) < 0.10
        b = rng.random(2000) < 0.12
        low, high = welch_ttest(Proportion(a.sum(), a.size), Proportion(b.sum(), b.size)).ci
        covered += low <= 0.2 <= high
    assert 0.92 <= covered / runs <= 0.98


def test_two_proportion_z_test_matches_the_textbook_formula() -> None:
    result = two_proportion_ztest(100, 1000, 130, 1000)
    pooled = 230 / 2000
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert result.estimate == pytest.approx(0.03)
    assert result.p_value == pytest.approx(2 * sps.norm.sf(z))
    with pytest.raises(InvalidInput):
        two_proportion_ztest(10, 5, 1, 10)


def test_ratio_metric_uses_the_delta_method_variance() -> None:
    rng = np.random.default_rng(5)
    views = rng.poisson(5, 5000) + 1
    clicks = rng.binomial(views, 0.1)
    stat = RatioStatistic.of(clicks, views)
    assert stat.mean == pytest.approx(clicks.sum() / views.sum())
    # the delta-method standard error agrees with a bootstrap of units
    boot = []
    for _ in range(300):
        pick = rng.integers(0, views.size, views.size)
        boot.append(clicks[pick].sum() / views[pick].sum())
    assert math.sqrt(stat.variance / stat.n) == pytest.approx(np.std(boot), rel=0.15)


def test_bayesian_chance_to_win_and_risks_are_consistent() -> None:
    result = bayesian_test(Proportion(100, 1000), Proportion(120, 1000))
    assert 0.5 < result.chance_to_win < 1
    keep, ship = result.risk
    assert keep - ship == pytest.approx(result.expected)  # E[max(x,0)] - E[max(-x,0)] = E[x]
    assert ship < keep


def test_sequential_interval_is_wider_than_the_fixed_one_and_contains_it() -> None:
    a, b = SampleMean(1396.87, 52377.9767, 3000), SampleMean(2422.7, 134698.29, 3461)
    fixed, always = welch_ttest(a, b).ci, sequential_test(a, b).ci
    assert always[0] < fixed[0] and fixed[1] < always[1]


def test_peeking_at_a_sequential_test_keeps_false_positives_below_alpha() -> None:
    """Under no effect, stopping at the first of 20 looks that rejects: sequential stays
    near or below 5%, the fixed-horizon t-test inflates well above it."""
    rng = np.random.default_rng(2024)
    runs, looks, step = 300, 20, 200
    fixed_hits = sequential_hits = 0
    for _ in range(runs):
        a = rng.normal(1.0, 1.0, looks * step)
        b = rng.normal(1.0, 1.0, looks * step)
        fixed_stop = seq_stop = False
        for k in range(1, looks + 1):
            sa, sb = SampleMean.of(a[: k * step]), SampleMean.of(b[: k * step])
            fixed_stop |= welch_ttest(sa, sb, kind="absolute").p_value < 0.05
            seq_stop |= sequential_test(sa, sb, kind="absolute", tuning=2000).p_value < 0.05
        fixed_hits += fixed_stop
        sequential_hits += seq_stop
    assert fixed_hits / runs > 0.12
    assert sequential_hits / runs <= 0.06


def test_cuped_reduces_variance_without_moving_the_effect() -> None:
    rng = np.random.default_rng(8)
    pre_a, pre_b = rng.gamma(2, 10, 4000), rng.gamma(2, 10, 4000)
    post_a = pre_a * 0.8 + rng.normal(0, 5, 4000)
    post_b = pre_b * 0.8 + rng.normal(1.0, 5, 4000)
    adjusted = cuped([post_a, post_b], [pre_a, pre_b])
    raw = welch_ttest(SampleMean.of(post_a), SampleMean.of(post_b), kind="absolute")
    reduced = welch_ttest(*adjusted.arms, kind="absolute")
    assert adjusted.variance_reduction > 0.5
    assert reduced.se < raw.se * 0.7
    assert reduced.ci[0] <= 1.0 <= reduced.ci[1]
    with pytest.raises(InvalidInput):
        cuped([post_a], [pre_a[:10]])


def test_srm_flags_a_skewed_split_and_passes_a_fair_one() -> None:
    assert srm_check([1000, 1200]).mismatch
    assert not srm_check([1000, 1010]).mismatch
    assert not srm_check([900, 2100], [0.3, 0.7]).mismatch
    with pytest.raises(InvalidInput):
        srm_check([10])
    with pytest.raises(InvalidInput):
        srm_check([10, 10], [0.5])


def test_holm_and_bh_match_hand_computed_adjustments() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> holm 4*.005=.02, 3*.01=.03, 2*.03=.06, 1*.04 -> max .06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # bh: .005*4/1=.02, .01*4/2=.02, .03*4/3=.04, .04*4/4=.04 (then running minimum from the top)
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    with pytest.raises(InvalidInput):
        holm([0.5, 1.5])


def test_sample_size_gives_the_requested_power() -> None:
    n = users_per_arm_for_proportion(0.05, 0.10)
    assert power_of(0.05, 0.10, n) == pytest.approx(0.8, abs=0.002)
    assert minimum_detectable_effect(0.05, n) == pytest.approx(0.10, rel=0.01)
    with pytest.raises(InvalidInput):
        users_per_arm_for_proportion(0.05, 0.1, power=1.5)
    with pytest.raises(InvalidInput):
        users_per_arm_for_proportion(0.6, 1.0)


def test_arms_need_two_units_and_a_nonzero_control_for_relative_lift() -> None:
    with pytest.raises(InvalidInput):
        SampleMean(1.0, 1.0, 1)
    with pytest.raises(InvalidInput):
        Proportion(5, 3)
    with pytest.raises(InvalidInput, match="control mean is zero"):
        welch_ttest(Proportion(0, 100), Proportion(3, 100))
    with pytest.raises(InvalidInput):
        welch_ttest(Proportion(1, 100), Proportion(3, 100), alpha=1.5)
