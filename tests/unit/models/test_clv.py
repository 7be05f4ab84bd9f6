"""BG/NBD and Gamma-Gamma: parameters recovered from simulated customers; predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personify.errors import InvalidInput
from personify.models.clv import (
    BetaGeoFitter,
    GammaGammaFitter,
    bgnbd_log_likelihood,
    customer_value,
    rfm_summary,
)
from personify.models.sources import connect, register_frame


def _simulate(n: int, r: float, alpha: float, a: float, b: float, T: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x, tx = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T:
                break
            x[i] += 1
            tx[i] = t
            if rng.uniform() < p[i]:
                break
    return x, tx, np.full(n, T)


def test_bgnbd_recovers_the_parameters_of_simulated_customers() -> None:
    x, tx, T = _simulate(4000, r=0.5, alpha=5.0, a=0.8, b=3.0, T=52.0)
    bg = BetaGeoFitter().fit(x, tx, T)
    assert bg.r_ == pytest.approx(0.5, rel=0.15)
    assert bg.alpha_ == pytest.approx(5.0, rel=0.2)
    assert bg.a_ == pytest.approx(0.8, rel=0.35)
    assert bg.b_ == pytest.approx(3.0, rel=0.45)
    params = np.array([bg.r_, bg.alpha_, bg.a_, bg.b_])
    assert bgnbd_log_likelihood(params, x, tx, T).sum() == pytest.approx(bg.log_likelihood_)


def test_predictions_behave_as_the_model_says() -> None:
    x, tx, T = _simulate(2000, r=0.5, alpha=5.0, a=0.8, b=3.0, T=52.0, seed=1)
    bg = BetaGeoFitter().fit(x, tx, T)
    # No repeat purchase: certainly alive in BG/NBD (dropout happens only after a purchase).
    assert bg.p_alive([0], [0.0], [52.0])[0] == 1.0
    # Same count, but the last purchase long ago: less likely alive, fewer future purchases.
    recent, old = bg.p_alive([5, 5], [50.0, 10.0], [52.0, 52.0])
    assert recent > old
    e = bg.expected_purchases(10.0, [5, 5], [50.0, 10.0], [52.0, 52.0])
    assert e[0] > e[1] > 0
    assert bg.expected_purchases(20.0, [5], [50.0], [52.0])[0] > e[0]
    assert bg.expected_purchases_new(52.0) > 0


def test_gamma_gamma_recovers_spend_parameters() -> None:
    rng = np.random.default_rng(2)
    p, q, g = 6.0, 4.0, 15.0
    nu = rng.gamma(q, 1 / g, 3000)
    x = rng.integers(1, 8, 3000)
    m = np.array([rng.gamma(p, 1 / v, k).mean() for v, k in zip(nu, x, strict=True)])
    gg = GammaGammaFitter().fit(x, m)
    assert gg.p_ == pytest.approx(p, rel=0.15)
    assert gg.q_ == pytest.approx(q, rel=0.2)
    assert gg.gamma_ == pytest.approx(g, rel=0.3)
    # Expected spend shrinks a customer's mean toward the population mean.
    population = p * g / (q - 1)
    spend = gg.expected_spend([1, 1], [10.0, 500.0])
    assert 10.0 < spend[0] < population < spend[1] < 500.0


def test_customer_value_and_summary_from_events() -> None:
    when = pd.to_datetime(
        ["2024-01-01", "2024-01-01", "2024-01-15", "2024-02-12", "2024-01-08"], utc=True
    )
    frame = pd.DataFrame(
        {
            "profile_id": ["a", "a", "a", "a", "b"],
            "type": "track",
            "event": "Order Completed",
            "timestamp": when,
            "session_id": None,
            "payload": [f'{{"properties": {{"revenue": {v}}}}}' for v in (10, 5, 20, 30, 7)],
        }
    )
    con = connect()
    register_frame(con, frame)
    s = rfm_summary(con, "events", end="2024-02-25")
    assert s.loc["a"].tolist() == [2.0, 6.0, 55 / 7, 25.0]  # same-day orders are one purchase
    assert s.loc["b"].tolist() == [0.0, 0.0, 48 / 7, 0.0]
    x, tx, T = _simulate(1500, r=0.5, alpha=5.0, a=0.8, b=3.0, T=52.0, seed=3)
    bg = BetaGeoFitter().fit(x, tx, T)
    gg = GammaGammaFitter().fit([1, 2, 3, 4, 5], [10.0, 20.0, 15.0, 30.0, 12.0])
    value = customer_value(bg, gg, s, weeks=26)
    discounted = customer_value(bg, gg, s, weeks=26, discount_per_week=0.01)
    assert (value["clv"] > 0).all() and (discounted["clv"] < value["clv"]).all()
    assert value.loc["a", "expected_purchases"] > 0


def test_a_fit_with_nothing_to_estimate_stops_at_a_bound_and_says_so() -> None:
    # Every customer has the same mean spend: no heterogeneity, so q and gamma run off.
    rng = np.random.default_rng(4)
    x = rng.integers(1, 6, 500)
    m = np.array([rng.gamma(3.0, 5.0, k).mean() for k in x])
    gg = GammaGammaFitter().fit(x, m)
    assert not gg.converged_
    assert np.isfinite(gg.expected_spend([2], [15.0])[0])
    x2, tx, T = _simulate(500, r=0.5, alpha=5.0, a=0.8, b=3.0, T=52.0, seed=4)
    assert BetaGeoFitter().fit(x2, tx, T).converged_


def test_inconsistent_summaries_are_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        BetaGeoFitter().fit([1, 0], [5.0, 3.0], [4.0, 10.0])
    assert {p.field for p in err.value.problems} == {"t_x"}
    with pytest.raises(InvalidInput):
        BetaGeoFitter().fit([1], [1.0], [])
    with pytest.raises(InvalidInput):
        GammaGammaFitter().fit([1, 2, 3], [1.0, -2.0, 3.0])
