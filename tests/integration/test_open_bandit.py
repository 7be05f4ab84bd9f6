"""Off-policy evaluation on the Open Bandit Dataset sample reproduces the published figure.

The IPW estimate of the logged Bernoulli-TS policy, evaluated on the uniform-random log
(published Beta priors, ``default_rng(12345)``, 100,000 simulated rankings, top 3), is
0.004553 (relative error 0.084 against BTS's own on-policy CTR 0.0042). SNIPW and DR must
land in the same neighbourhood: they estimate the same quantity from the same rounds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personify.experiments.ope.open_bandit import (
    OpenBanditReport,
    bts_action_distribution,
    evaluate_bts_on_random,
    load_log,
)

pytestmark = [pytest.mark.datasets]


@pytest.fixture(scope="module")
def folder(datasets_dir: Path) -> Path:
    return datasets_dir / "open_bandit"


@pytest.fixture(scope="module")
def report(folder: Path) -> OpenBanditReport:
    return evaluate_bts_on_random(folder)


def test_logs_have_the_documented_click_rates(folder: Path) -> None:
    random_log, bts_log = load_log(folder, "random"), load_log(folder, "bts")
    assert random_log.clicks.size == bts_log.clicks.size == 10_000
    assert round(random_log.ctr, 4) == 0.0038
    assert round(bts_log.ctr, 4) == 0.0042
    assert set(np.unique(random_log.positions)) == {0, 1, 2}


def test_bts_distribution_is_a_distribution_per_position() -> None:
    dist = bts_action_distribution(simulations=20_000)
    assert dist.shape == (80, 3)
    assert np.allclose(dist.sum(axis=0), 1.0)
    # each simulated ranking shows an item at most once
    assert (dist.sum(axis=1) <= 1.0 + 1e-12).all()


def test_ipw_of_bts_on_the_random_log_reproduces_the_published_figure(
    report: OpenBanditReport,
) -> None:
    assert f"{report.ipw.value:.4g}" == "0.004553"
    assert round(report.relative_error(report.ipw), 3) == 0.084


def test_snipw_and_dr_agree_with_ipw_within_their_intervals(report: OpenBanditReport) -> None:
    for estimate in (report.snipw, report.dr):
        low, high = estimate.ci
        assert report.on_policy_ctr is not None
        assert low < report.on_policy_ctr < high
        assert abs(estimate.value - report.ipw.value) < report.ipw.se
